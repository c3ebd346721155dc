"""Data of the paper's tables: WikiText-103 / WikiText-2 and CIFAR-10 /
CIFAR-100, from a local copy or their public archives.

Every loader accepts a local file or folder (so an offline machine can point
at its copy) and downloads only when asked (`download=True`):

- `load_wikitext(name, split, data_dir)`: the lines of `wiki.<split>.tokens`
  (WikiText's tokenized v1 files), found in `data_dir` (a file, a folder of
  `wiki.*.tokens`, or a folder holding `<name>/` or the extracted archive),
  else downloaded with `keras.utils.get_file` from `WIKITEXT_URLS`.
- `load_cifar(dataset, split, data_dir, source=...)`: uint8 images and int32
  labels from the JPEG `.npz` copy (`source="npz"`, CIFAR-10 only), the
  official python archive (`"archive"`: `cifar-10-python.tar.gz` or its
  extracted `cifar-10-batches-py/`; downloaded with `keras.utils.get_file`
  and checked against its MD5) or tensorflow-datasets (`"tfds"`:
  `tfds.load(..., data_dir=data_dir, download=download)`).

Nothing here imports TensorFlow unless `source="tfds"` is used.
"""

import io
import os
import pickle
from pathlib import Path

import numpy as np

WIKITEXT_NAMES = ("wikitext-2", "wikitext-103")
WIKITEXT_SPLITS = ("train", "valid", "test")
# The tokenized (v1) archives of Merity et al. (2016), CC BY-SA.
WIKITEXT_URLS = {
    "wikitext-2": "https://wikitext.smerity.com/wikitext-2-v1.zip",
    "wikitext-103": "https://wikitext.smerity.com/wikitext-103-v1.zip",
}

CIFAR_DATASETS = ("cifar10", "cifar100")
CIFAR_SPLITS = ("train", "test")
CIFAR_SOURCES = ("npz", "archive", "tfds")
# The official python-format archives (Krizhevsky, 2009) and their MD5s.
CIFAR_ARCHIVES = {
    "cifar10": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "label_key": b"labels",
    },
    "cifar100": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "label_key": b"fine_labels",
    },
}
CIFAR10_JPEG_NPZ = "cifar10_jpeg.npz"
CIFAR10_JPEG_NPZ_SHA256 = (
    "816040ca4dcf577df78fb3d83e918c2c1cbb347e5dccf966fe9507b91daaf554"
)
CIFAR_NUM_CLASSES = {"cifar10": 10, "cifar100": 100}

DATA_DIR_ENVIRONMENT_VARIABLE = "KERAS_NEURAL_ATTENTION_DATA"


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of "
            f"{', '.join(repr(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )


def keras_datasets_dir():
    """Where `keras.utils.get_file` keeps downloads by default:
    `$KERAS_HOME/datasets`, else `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def default_data_dirs():
    """Folders searched when no `data_dir` is given, in order: the one named
    by `$KERAS_NEURAL_ATTENTION_DATA`, `../shared/data` next to this
    checkout, `data/` in the working directory, and Keras' download folder
    (`keras_datasets_dir()`, where `download=True` puts the archives)."""
    dirs = []
    if os.environ.get(DATA_DIR_ENVIRONMENT_VARIABLE):
        dirs.append(Path(os.environ[DATA_DIR_ENVIRONMENT_VARIABLE]))
    checkout = Path(__file__).resolve().parents[2]
    dirs.append(checkout.parent / "shared" / "data")
    dirs.append(Path.cwd() / "data")
    dirs.append(keras_datasets_dir())
    return dirs


def _download(data_dir, **get_file_arguments):
    """`keras.utils.get_file` into `data_dir` itself (None: Keras' download
    folder), extracted beside the archive as `<stem>_extracted/`.

    The folder is created first: `get_file` silently falls back to
    `/tmp/.keras` for a `cache_dir` that does not exist yet, where the next
    offline call would not look."""
    import keras

    folder = keras_datasets_dir() if data_dir is None else Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return keras.utils.get_file(cache_dir=os.fspath(folder),
                                cache_subdir=".", extract=True,
                                **get_file_arguments)


def _candidate_dirs(data_dir):
    if data_dir is None:
        return [d for d in default_data_dirs() if d.is_dir()]
    return [Path(data_dir)]


# --------------------------------------------------------------------------
# WikiText


def _find_wikitext_file(name, split, root):
    root = Path(root)
    if root.is_file():
        return root
    file_name = f"wiki.{split}.tokens"
    for folder in (root, root / name, root / f"{name}-v1",
                   root / f"{name}-v1" / name,
                   root / f"{name}-v1_extracted" / name):
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def wikitext_path(name="wikitext-103", split="train", data_dir=None,
                  download=False):
    """The path of `wiki.<split>.tokens` of WikiText-2 or WikiText-103.

    Args:
        name: `"wikitext-2"` or `"wikitext-103"`.
        split: `"train"`, `"valid"` or `"test"`.
        data_dir: a file (used as is), a folder holding the file (directly,
            or under `<name>/` or the archive's `<name>-v1/<name>/`), or
            None for `default_data_dirs()`.
        download: fetch the public archive (`WIKITEXT_URLS`) with
            `keras.utils.get_file` into `data_dir` (or Keras' cache) when
            the file is not found.

    Raises:
        FileNotFoundError: when the file is neither found nor downloaded.
    """
    _check_choice("name", name, WIKITEXT_NAMES)
    _check_choice("split", split, WIKITEXT_SPLITS)
    searched = _candidate_dirs(data_dir)
    for root in searched:
        found = _find_wikitext_file(name, split, root)
        if found is not None:
            return found
    if not download:
        raise FileNotFoundError(
            f"No wiki.{split}.tokens of {name} in "
            f"{[str(d) for d in searched] or default_data_dirs()}. Pass "
            "`data_dir` (a folder of wiki.*.tokens or the file itself) or "
            f"download=True to fetch {WIKITEXT_URLS[name]}."
        )
    archive = _download(data_dir, fname=f"{name}-v1.zip",
                        origin=WIKITEXT_URLS[name])
    for root in (Path(archive), Path(archive).parent):
        found = _find_wikitext_file(name, split, root)
        if found is not None:
            return found
        for path in Path(root).rglob(f"wiki.{split}.tokens"):
            return path
    raise FileNotFoundError(
        f"The archive {archive} holds no wiki.{split}.tokens."
    )


def load_wikitext(name="wikitext-103", split="train", data_dir=None,
                  download=False, max_lines=None):
    """The lines of one WikiText split, line ends removed.

    Args:
        name, split, data_dir, download: see `wikitext_path`.
        max_lines: int or None. Keep only the first `max_lines` lines (the
            reduced scales; never applied silently: the record names it).

    Returns:
        A list of str, one per line of the file (empty lines kept: the
        released code turns each into a lone separator token).
    """
    if max_lines is not None and (
        not isinstance(max_lines, int) or isinstance(max_lines, bool)
        or max_lines < 1
    ):
        raise ValueError(
            "Argument `max_lines` must be a positive integer or None. "
            f"Received: max_lines={max_lines!r}"
        )
    path = wikitext_path(name, split, data_dir=data_dir, download=download)
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            lines.append(line.rstrip("\n"))
            if max_lines is not None and len(lines) >= max_lines:
                break
    return lines


# --------------------------------------------------------------------------
# CIFAR


def _decode_jpeg(data):
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype="uint8")
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(
            "Decoding the JPEG images needs Pillow (`pip install pillow`) "
            "or TensorFlow."
        ) from error
    return tf.io.decode_jpeg(data, channels=3).numpy()


def class_interleaved_order(labels):
    """Indices ordered class 0, 1, ..., 0, 1, ... (stable within a class),
    so that any prefix is as class-balanced as possible."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype="int64")
    for value in np.unique(labels):
        indices = np.flatnonzero(labels == value)
        rank[indices] = np.arange(len(indices))
    return np.lexsort((labels, rank))


def _check_limit(limit):
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
    ):
        raise ValueError(
            "Argument `limit` must be a positive integer or None. "
            f"Received: limit={limit!r}"
        )


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_cifar10_npz(path, split="train", limit=None, verify=False):
    """Loads one split of a local JPEG `.npz` copy of CIFAR-10.

    Never downloads: `path` must exist.

    Args:
        path: path of the `.npz` file (e.g. `cifar10_jpeg.npz`).
        split: `"train"` or `"test"`.
        limit: int or None. Keep the first `limit` images (after a
            class-balanced interleaving, so that a small `limit` still holds
            every class: image `i` of the result has label `i % 10` while
            every class lasts).
        verify: bool. Check the file's SHA-256 against the known copy
            (`CIFAR10_JPEG_NPZ_SHA256`) and raise `ValueError` on mismatch.

    Returns:
        `(images, labels)`: uint8 `(n, 32, 32, 3)` and int32 `(n,)`.
    """
    _check_choice("split", split, CIFAR_SPLITS)
    _check_limit(limit)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No CIFAR-10 file at {path!r}. This loader never downloads: "
            "pass the path of a local copy such as "
            "`../shared/data/cifar10_jpeg.npz`."
        )
    if verify:
        digest = _sha256(path)
        if digest != CIFAR10_JPEG_NPZ_SHA256:
            raise ValueError(
                f"{path!r} is not the known CIFAR-10 JPEG copy: SHA-256 "
                f"{digest} != {CIFAR10_JPEG_NPZ_SHA256}."
            )
    with np.load(path) as data:
        jpeg = data[f"{split}_jpeg"]
        offsets = data[f"{split}_offsets"]
        labels = data[f"{split}_labels"].astype("int32")
    order = class_interleaved_order(labels)
    if limit is not None:
        order = order[:limit]
    images = np.stack(
        [
            _decode_jpeg(jpeg[offsets[i]:offsets[i + 1]].tobytes())
            for i in order
        ]
    )
    return images, labels[order]


def _cifar_archive_folder(dataset, data_dir, download):
    spec = CIFAR_ARCHIVES[dataset]
    stem = Path(spec["url"]).name.split(".")[0]
    for root in _candidate_dirs(data_dir):
        for folder in (root / spec["folder"], root,
                       root / f"{stem}_extracted" / spec["folder"]):
            if all((folder / f).is_file()
                   for f in spec["train"] + spec["test"]):
                return folder
        archive = root / Path(spec["url"]).name
        if archive.is_file():
            import tarfile

            with tarfile.open(archive) as tar:
                tar.extractall(root, filter="data")
            return root / spec["folder"]
    if not download:
        raise FileNotFoundError(
            f"No {dataset} python archive ({Path(spec['url']).name} or "
            f"{spec['folder']}/) in "
            f"{[str(d) for d in _candidate_dirs(data_dir)]}. Pass "
            f"`data_dir` or download=True to fetch {spec['url']}."
        )
    path = _download(data_dir, fname=Path(spec["url"]).name,
                     origin=spec["url"], file_hash=spec["md5"],
                     hash_algorithm="md5")
    for folder in Path(path).rglob(spec["folder"]):
        return folder
    return Path(path)


def _load_cifar_archive(dataset, split, data_dir, download):
    spec = CIFAR_ARCHIVES[dataset]
    folder = _cifar_archive_folder(dataset, data_dir, download)
    images, labels = [], []
    for file_name in spec[split]:
        with open(folder / file_name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images.append(
            np.asarray(batch[b"data"], dtype="uint8")
            .reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        )
        labels.append(np.asarray(batch[spec["label_key"]], dtype="int32"))
    return np.concatenate(images), np.concatenate(labels)


def _load_cifar_tfds(dataset, split, data_dir, download):
    import tensorflow_datasets as tfds

    loaded = tfds.load(
        dataset,
        split=split,
        data_dir=None if data_dir is None else os.fspath(data_dir),
        download=download,
        as_supervised=True,
    )
    # Batched reads, not `batch_size=-1`: that sizes one batch from the
    # split's metadata, which a dataset prepared without it lacks.
    images, labels = [], []
    for image_batch, label_batch in tfds.as_numpy(loaded.batch(4096)):
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        raise ValueError(f"The tensorflow-datasets split {split!r} of "
                         f"{dataset!r} holds no examples.")
    return (np.concatenate(images).astype("uint8"),
            np.concatenate(labels).astype("int32"))


def load_cifar(dataset="cifar10", split="train", data_dir=None,
               source="npz", download=False, limit=None):
    """One split of CIFAR-10 or CIFAR-100 as arrays.

    Args:
        dataset: `"cifar10"` or `"cifar100"`.
        split: `"train"` or `"test"`.
        data_dir: where the data are (None: `default_data_dirs()`). For
            `"npz"` a folder holding `cifar10_jpeg.npz` or the file itself.
        source: `"npz"` (the lossy JPEG copy of CIFAR-10; never downloads),
            `"archive"` (the official python archive) or `"tfds"`
            (tensorflow-datasets).
        download: allow a download (`"archive"`, `"tfds"`).
        limit: int or None. The first `limit` images after a class-balanced
            interleaving (see `class_interleaved_order`).

    Returns:
        `(images, labels)`: uint8 `(n, 32, 32, 3)` and int32 `(n,)`.
    """
    _check_choice("dataset", dataset, CIFAR_DATASETS)
    _check_choice("split", split, CIFAR_SPLITS)
    _check_choice("source", source, CIFAR_SOURCES)
    _check_limit(limit)
    if source == "npz":
        if dataset != "cifar10":
            raise ValueError(
                "Argument `source` 'npz' holds CIFAR-10 only. Received: "
                f"dataset={dataset!r}, source={source!r}"
            )
        for root in _candidate_dirs(data_dir):
            path = root if root.is_file() else root / CIFAR10_JPEG_NPZ
            if path.is_file():
                return load_cifar10_npz(path, split, limit=limit)
        raise FileNotFoundError(
            f"No {CIFAR10_JPEG_NPZ} in "
            f"{[str(d) for d in _candidate_dirs(data_dir)]}; pass "
            "`data_dir` (its folder or the file)."
        )
    if source == "archive":
        images, labels = _load_cifar_archive(dataset, split, data_dir,
                                             download)
    else:
        images, labels = _load_cifar_tfds(dataset, split, data_dir, download)
    order = class_interleaved_order(labels)
    if limit is not None:
        order = order[:limit]
    return images[order], labels[order]


def data_note(dataset, source):
    """What a reader must know about the data behind a number."""
    if dataset == "cifar10" and source == "npz":
        return (
            "CIFAR-10 from a lossy JPEG copy (quality 75, 4:2:0); labels "
            "exact, pixels differ slightly from the original pickles."
        )
    if dataset in CIFAR_DATASETS:
        return f"{dataset} from {source} (original pixels)."
    return ""
