"""Tests for utils/idx.py: parsing, gzip reading and checksum verification of IDX files."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from utils import idx

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    not all((DEBIAN / f"{stem}.gz").exists() for stem in idx.FILES.values()),
    reason="Debian package dataset-fashion-mnist is not installed",
)


def make_idx(shape: tuple[int, ...], data: bytes | None = None, type_code: int = 0x08) -> bytes:
    """Hand-made IDX bytes: magic number, one big-endian uint32 per dimension, the data."""
    if data is None:
        data = bytes(i % 256 for i in range(int(np.prod(shape))))
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data


# --- parse -------------------------------------------------------------------------------------


def test_parse_images_shape_dtype_and_values():
    content = make_idx((2, 3, 4))
    array = idx.parse(content, "images.idx")
    assert array.shape == (2, 3, 4)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


def test_parse_labels_one_dimensional():
    array = idx.parse(make_idx((5,), bytes([9, 0, 3, 3, 7])))
    assert array.shape == (5,)
    assert array.tolist() == [9, 0, 3, 3, 7]


def test_parse_empty_dimension():
    array = idx.parse(make_idx((0, 28, 28), b""))
    assert array.shape == (0, 28, 28)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "bad magic number"),
        (b"\x00\x00", "bad magic number"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number"),
        (b"\x00\x07\x08\x01\x00\x00\x00\x01\x05", "bad magic number"),
        (make_idx((2,), b"\x00" * 8, type_code=0x0D), "0x0d"),  # float32 data: not supported
        (make_idx((2, 3, 4))[:10], "truncated inside its header"),
        (make_idx((2, 3, 4))[:-1], "truncated or corrupt"),  # one data byte missing
        (make_idx((2, 3, 4)) + b"\x00", "truncated or corrupt"),  # one byte too many
    ],
    ids=["empty", "short", "magic-1", "magic-2", "type-code", "header", "data-short", "data-long"],
)
def test_parse_rejects_bad_content_naming_the_source(content, words):
    with pytest.raises(idx.CorruptFileError) as info:
        idx.parse(content, source="/data/my-file-idx3-ubyte")
    assert "/data/my-file-idx3-ubyte" in str(info.value)
    assert words in str(info.value)


def test_parse_size_message_gives_expected_and_actual_sizes():
    content = make_idx((2, 3, 4))[:-5]  # 16-byte header + 19 of 24 data bytes
    with pytest.raises(idx.CorruptFileError, match=r"should hold 40 bytes .* but holds 35"):
        idx.parse(content, "x")


def test_corrupt_file_error_is_a_value_error():
    assert issubclass(idx.CorruptFileError, ValueError)


# --- read_bytes --------------------------------------------------------------------------------


def test_read_bytes_raw_and_gzip(tmp_path):
    content = make_idx((3, 2))
    raw = tmp_path / "own-idx2-ubyte"
    raw.write_bytes(content)
    packed = tmp_path / "own-idx2-ubyte.gz"
    packed.write_bytes(gzip.compress(content))
    assert idx.read_bytes(raw) == content
    assert idx.read_bytes(packed) == content
    assert idx.read_bytes(str(packed)) == content


def test_read_bytes_of_garbage_gz_names_the_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(idx.CorruptFileError) as info:
        idx.read_bytes(path)
    assert str(path) in str(info.value)


@needs_debian
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_read_bytes_of_truncated_gz_names_the_file(tmp_path, keep):
    whole = (DEBIAN / "train-labels-idx1-ubyte.gz").read_bytes()
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(idx.CorruptFileError) as info:
        idx.read_bytes(path)
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message
    assert "dataset-fashion-mnist" in message  # says how to fix it


def test_read_bytes_of_empty_gz_raises(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"")
    with pytest.raises(idx.CorruptFileError, match="is empty"):
        idx.read_bytes(path)


def test_load_of_empty_gz_raises_with_or_without_checksum(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"")
    with pytest.raises(idx.CorruptFileError, match="train-labels-idx1-ubyte.gz is empty"):
        idx.load(path)
    with pytest.raises(idx.CorruptFileError, match="train-labels-idx1-ubyte.gz is empty"):
        idx.load(path, check=False)


# --- verify ------------------------------------------------------------------------------------


@needs_debian
@pytest.mark.parametrize("stem", list(idx.FILES.values()))
def test_verify_debian_files(stem):
    # Debian re-compresses the files, so the content digest is the check that passes.
    assert idx.verify(DEBIAN / f"{stem}.gz") == "sha256 of content"


@needs_debian
def test_verify_accepts_content_already_read():
    path = DEBIAN / "t10k-labels-idx1-ubyte.gz"
    content = gzip.decompress(path.read_bytes())
    assert idx.verify(path, content) == "sha256 of content"
    with pytest.raises(idx.CorruptFileError):
        idx.verify(path, content[:-1])


@needs_debian
def test_verify_md5_of_gz_branch(monkeypatch):
    path = DEBIAN / "t10k-labels-idx1-ubyte.gz"
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(idx.FASHION_MNIST_MD5_GZ, path.name, digest)
    assert idx.verify(path) == "md5 of .gz"


@needs_debian
def test_verify_unpacked_copy_passes(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(gzip.decompress((DEBIAN / f"{path.name}.gz").read_bytes()))
    assert idx.verify(path) == "sha256 of content"


@needs_debian
def test_verify_flipped_byte_raises_naming_path_and_fix(tmp_path):
    content = bytearray(gzip.decompress((DEBIAN / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    content[5000] ^= 0x01  # one label changes; the size and header stay valid
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(bytes(content))
    idx.parse(bytes(content), str(path))  # structurally fine: only the checksum can tell
    with pytest.raises(idx.CorruptFileError) as info:
        idx.verify(path)
    message = str(info.value)
    assert str(path) in message
    assert "checksum" in message
    assert "Delete or replace" in message
    assert "apt-get install --reinstall dataset-fashion-mnist" in message


def test_verify_unknown_name(tmp_path):
    path = tmp_path / "my-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(make_idx((1, 2, 2))))
    with pytest.raises(idx.CorruptFileError, match="not one of the Fashion-MNIST files") as info:
        idx.verify(path)
    assert str(path) in str(info.value)


# --- load / find / read_folder -----------------------------------------------------------------


def test_load_own_file_without_check(tmp_path):
    path = tmp_path / "own-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(make_idx((2, 3, 4))))
    array = idx.load(path, check=False)
    assert array.shape == (2, 3, 4)
    with pytest.raises(idx.CorruptFileError):
        idx.load(path)  # unknown name: cannot be verified


def test_find_prefers_gz_and_accepts_unpacked(tmp_path):
    stem = "t10k-labels-idx1-ubyte"
    assert idx.find(tmp_path, stem) is None
    (tmp_path / stem).write_bytes(b"x")
    assert idx.find(tmp_path, stem) == tmp_path / stem
    (tmp_path / f"{stem}.gz").write_bytes(b"x")
    assert idx.find(tmp_path, stem) == tmp_path / f"{stem}.gz"


@needs_debian
def test_read_folder_missing_file_names_it(tmp_path):
    for stem in list(idx.FILES.values())[:3]:
        (tmp_path / f"{stem}.gz").symlink_to(DEBIAN / f"{stem}.gz")
    with pytest.raises(FileNotFoundError) as info:
        idx.read_folder(tmp_path)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in str(info.value)


def test_read_folder_empty_folder_names_first_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        idx.read_folder(tmp_path)


@needs_debian
def test_read_folder_debian():
    arrays = idx.read_folder(DEBIAN)
    assert set(arrays) == {"x_train", "y_train", "x_test", "y_test"}
    assert arrays["x_train"].shape == (60000, 28, 28)
    assert arrays["y_train"].shape == (60000,)
    assert arrays["x_test"].shape == (10000, 28, 28)
    assert arrays["y_test"].shape == (10000,)
    assert all(a.dtype == np.uint8 for a in arrays.values())
    assert set(np.unique(arrays["y_train"])) == set(range(10))
    assert arrays["x_train"].max() == 255


@needs_debian
def test_read_folder_with_unpacked_copy(tmp_path):
    # A user who un-gzipped one file: the raw file is found and verified.
    for stem in idx.FILES.values():
        if stem == "t10k-labels-idx1-ubyte":
            (tmp_path / stem).write_bytes(gzip.decompress((DEBIAN / f"{stem}.gz").read_bytes()))
        else:
            shutil.copy(DEBIAN / f"{stem}.gz", tmp_path)
    arrays = idx.read_folder(tmp_path)
    assert arrays["y_test"].shape == (10000,)
