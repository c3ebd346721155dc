"""Loaders of `experiments.data` on small files the tests write (no
network, no tensorflow-datasets download)."""

import pickle
import tarfile

import numpy as np
import pytest

from keras_neural_attention.experiments import data


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


def test_cifar_npz_through_load_cifar(tmp_path):
    from tests.experiments.test_cifar10 import write_fake_cifar

    write_fake_cifar(tmp_path / data.CIFAR10_JPEG_NPZ)
    images, labels = data.load_cifar("cifar10", "train", tmp_path,
                                     source="npz", limit=10)
    assert images.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(labels, np.arange(10))


def test_class_interleaved_order():
    labels = np.array([1, 1, 0, 2, 0, 1])
    order = data.class_interleaved_order(labels)
    np.testing.assert_array_equal(labels[order], [0, 1, 2, 0, 1, 1])
