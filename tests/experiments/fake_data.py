"""Small data files in the formats the loaders read, written by tests."""

import io

import numpy as np


def jpeg_bytes(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return np.frombuffer(buffer.getvalue(), dtype="uint8")


def write_fake_cifar(path, counts=(("train", 20), ("test", 10))):
    """A `.npz` in the format of `cifar10_jpeg.npz`: flat-colour 32x32
    images, class c has colour 25 * c (grey)."""
    arrays = {"class_names": np.array([f"class{c}" for c in range(10)])}
    for split, count in counts:
        labels = (np.arange(count) * 7) % 10  # not in class order
        encoded = [
            jpeg_bytes(np.full((32, 32, 3), 25 * label, dtype="uint8"))
            for label in labels
        ]
        offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])])
        arrays[f"{split}_jpeg"] = np.concatenate(encoded)
        arrays[f"{split}_offsets"] = offsets.astype("int64")
        arrays[f"{split}_labels"] = labels.astype("uint8")
    np.savez(path, **arrays)
    return path
