"""Loaders of `experiments.data` on small files the tests write (no
network, no tensorflow-datasets download)."""

import pickle
import tarfile

import numpy as np
import pytest

from keras_neural_attention.experiments import data
from tests.experiments.fake_data import write_fake_cifar


def write_wikitext(folder, lines=None):
    lines = lines or [" ", " = Title = ", " ", " a b <unk> c . ", " d e ."]
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        (folder / f"wiki.{split}.tokens").write_text(
            "\n".join(lines) + "\n", encoding="utf-8")
    return lines


def test_wikitext_from_a_folder_a_subfolder_and_a_file(tmp_path):
    lines = write_wikitext(tmp_path / "wikitext-2")
    assert data.load_wikitext("wikitext-2", "valid", tmp_path) == lines
    assert data.load_wikitext(
        "wikitext-2", "test", tmp_path / "wikitext-2") == lines
    file = tmp_path / "wikitext-2" / "wiki.train.tokens"
    assert data.load_wikitext("wikitext-103", "train", file) == lines
    assert data.load_wikitext("wikitext-2", "valid", tmp_path,
                              max_lines=2) == lines[:2]


def test_wikitext_missing_or_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load_wikitext("wikitext-103", "train", tmp_path)
    with pytest.raises(ValueError, match="`split` must be one of"):
        data.load_wikitext("wikitext-2", "validation", tmp_path)
    with pytest.raises(ValueError, match="`name` must be one of"):
        data.load_wikitext("wikitext-3", "valid", tmp_path)
    with pytest.raises(ValueError, match="max_lines"):
        data.load_wikitext("wikitext-2", "valid", tmp_path, max_lines=0)


def _cifar_batch(labels, key, rng):
    images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype="uint8")
    return {b"data": images.reshape(len(labels), -1), key: list(labels)}


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_archive_folder_and_tarball(tmp_path, dataset):
    spec = data.CIFAR_ARCHIVES[dataset]
    rng = np.random.default_rng(0)
    folder = tmp_path / "src" / spec["folder"]
    folder.mkdir(parents=True)
    written = {}
    for split in ("train", "test"):
        for i, name in enumerate(spec[split]):
            labels = [(3 * j + i) % 4 for j in range(8)]
            batch = _cifar_batch(labels, spec["label_key"], rng)
            written.setdefault(split, []).append(batch)
            with open(folder / name, "wb") as handle:
                pickle.dump(batch, handle)
    images, labels = data.load_cifar(dataset, "test", tmp_path / "src",
                                     source="archive")
    batch = written["test"][0]
    expected = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    order = data.class_interleaved_order(np.asarray(batch[spec["label_key"]]))
    np.testing.assert_array_equal(images, expected[order])
    np.testing.assert_array_equal(
        labels, np.asarray(batch[spec["label_key"]])[order])
    assert images.dtype == np.uint8 and labels.dtype == np.int32
    # The same files as the official tarball, extracted on first use.
    archive_dir = tmp_path / "tar"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / spec["url"].split("/")[-1],
                      "w:gz") as tar:
        tar.add(folder, arcname=spec["folder"])
    train, train_labels = data.load_cifar(dataset, "train", archive_dir,
                                          source="archive", limit=4)
    assert train.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(train_labels, [0, 1, 2, 3])


def test_cifar_sources_and_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load_cifar("cifar100", "train", tmp_path, source="archive")
    with pytest.raises(FileNotFoundError, match="cifar10_jpeg.npz"):
        data.load_cifar("cifar10", "train", tmp_path, source="npz")
    with pytest.raises(ValueError, match="CIFAR-10 only"):
        data.load_cifar("cifar100", "train", tmp_path, source="npz")
    with pytest.raises(ValueError, match="`source` must be one of"):
        data.load_cifar("cifar10", "train", tmp_path, source="pickle")
    with pytest.raises(ValueError, match="`limit`"):
        data.load_cifar("cifar10", "train", tmp_path, limit=-1)


def test_cifar10_npz_decodes_images_and_interleaves_classes(tmp_path):
    path = write_fake_cifar(tmp_path / "cifar.npz")
    images, labels = data.load_cifar10_npz(path, "train")
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.tile(np.arange(10), 2))
    # Flat colours survive JPEG almost exactly, and match their labels.
    np.testing.assert_allclose(
        images.reshape(20, -1).mean(1), 25.0 * labels, atol=2.0
    )
    small, small_labels = data.load_cifar10_npz(path, "test", limit=4)
    assert small.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(small_labels, [0, 1, 2, 3])


def test_cifar10_npz_never_downloads_and_validates(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        data.load_cifar10_npz(tmp_path / "absent.npz")
    path = write_fake_cifar(tmp_path / "cifar.npz")
    with pytest.raises(ValueError, match="split"):
        data.load_cifar10_npz(path, "validation")
    with pytest.raises(ValueError, match="SHA-256"):
        data.load_cifar10_npz(path, verify=True)


def test_cifar_npz_through_load_cifar(tmp_path):
    write_fake_cifar(tmp_path / data.CIFAR10_JPEG_NPZ)
    images, labels = data.load_cifar("cifar10", "train", tmp_path,
                                     source="npz", limit=10)
    assert images.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(labels, np.arange(10))


def test_class_interleaved_order():
    labels = np.array([1, 1, 0, 2, 0, 1])
    order = data.class_interleaved_order(labels)
    np.testing.assert_array_equal(labels[order], [0, 1, 2, 0, 1, 1])


# The download paths, with the public URLs pointed at archives the tests
# write (`keras.utils.get_file` fetches `file://` origins the same way).


def _zip_wikitext(tmp_path, name, lines):
    import zipfile

    source = tmp_path / "zip_source"
    write_wikitext(source / name, lines)
    archive = tmp_path / f"{name}-v1.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted((source / name).iterdir()):
            handle.write(path, arcname=f"{name}/{path.name}")
    return archive


@pytest.mark.parametrize("name", ["wikitext-2", "wikitext-103"])
def test_wikitext_download_fetches_and_extracts_the_archive(
        tmp_path, monkeypatch, name):
    lines = [" ", f" = {name} = ", " x y <unk> . "]
    archive = _zip_wikitext(tmp_path, name, lines)
    monkeypatch.setitem(data.WIKITEXT_URLS, name, archive.as_uri())
    cache = tmp_path / "cache"
    assert data.load_wikitext(name, "test", cache, download=True) == lines
    # Extracted into `data_dir`: found there again without a download.
    archive.unlink()
    assert data.load_wikitext(name, "valid", cache) == lines
    assert str(data.wikitext_path(name, "train", cache)).startswith(
        str(cache))


def _cifar_tarball(tmp_path, dataset, rng):
    import hashlib

    spec = data.CIFAR_ARCHIVES[dataset]
    folder = tmp_path / "tar_source" / spec["folder"]
    folder.mkdir(parents=True)
    written = {}
    for split in ("train", "test"):
        for i, name in enumerate(spec[split]):
            batch = _cifar_batch([(j + i) % 3 for j in range(6)],
                                 spec["label_key"], rng)
            written.setdefault(split, []).append(batch)
            with open(folder / name, "wb") as handle:
                pickle.dump(batch, handle)
    archive = tmp_path / "served" / spec["url"].split("/")[-1]
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=spec["folder"])
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return archive, md5, written


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_archive_download_checks_the_md5(tmp_path, monkeypatch,
                                               dataset):
    spec = data.CIFAR_ARCHIVES[dataset]
    archive, md5, written = _cifar_tarball(tmp_path, dataset,
                                           np.random.default_rng(1))
    # A served file whose MD5 is not the recorded one is refused.
    monkeypatch.setitem(data.CIFAR_ARCHIVES, dataset,
                        dict(spec, url=archive.as_uri(), md5="0" * 32))
    with pytest.raises(ValueError, match="hash"):
        data.load_cifar(dataset, "test", tmp_path / "refused",
                        source="archive", download=True)
    monkeypatch.setitem(data.CIFAR_ARCHIVES, dataset,
                        dict(spec, url=archive.as_uri(), md5=md5))
    cache = tmp_path / "cache"
    images, labels = data.load_cifar(dataset, "test", cache,
                                     source="archive", download=True)
    batch = written["test"][0]
    expected = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    order = data.class_interleaved_order(np.asarray(batch[spec["label_key"]]))
    np.testing.assert_array_equal(images, expected[order])
    # Found in `data_dir` afterwards, with no download allowed.
    archive.unlink()
    train, _ = data.load_cifar(dataset, "train", cache, source="archive")
    assert train.shape == (6 * len(spec["train"]), 32, 32, 3)


@pytest.mark.one_backend
def test_cifar_through_tensorflow_datasets(tmp_path):
    """`source="tfds"` on tensorflow-datasets' mock data (no download, no
    prepared files): the arrays are the dataset's examples, as uint8 and
    int32, in class-interleaved order, with `data_dir` passed through."""
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=14,
                                policy=tfds.testing.MockPolicy.USE_CODE):
        images, labels = data.load_cifar("cifar100", "test", tmp_path,
                                         source="tfds", limit=9)
        examples = list(tfds.as_numpy(tfds.load(
            "cifar100", split="test", data_dir=str(tmp_path),
            as_supervised=True)))
    reference_images = np.stack([image for image, _ in examples])
    reference_labels = np.array([label for _, label in examples])
    order = data.class_interleaved_order(reference_labels)[:9]
    assert images.dtype == np.uint8 and labels.dtype == np.int32
    assert images.shape == (9, 32, 32, 3)
    np.testing.assert_array_equal(images, reference_images[order])
    np.testing.assert_array_equal(labels, reference_labels[order])
