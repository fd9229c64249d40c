"""Reading and verifying IDX files, the format of MNIST and Fashion-MNIST.

An IDX file starts with a 4-byte magic number (two zero bytes, a type code
``0x08`` for unsigned bytes, and the number of dimensions), then one big-endian
``uint32`` per dimension, then the data. Files may be gzip-compressed.

Integrity is checked in two ways, and a file must pass one of them:

1. the MD5 of the ``.gz`` file equals the digest published with Fashion-MNIST
   (the table in the dataset's README);
2. the SHA-256 of the *decompressed* bytes equals :data:`FASHION_MNIST_SHA256`.
   Debian's ``dataset-fashion-mnist`` package re-compresses the files, so its
   ``.gz`` bytes (and MD5s) differ from the published ones while the content is
   the same; these digests were computed from the decompressed files of that
   package (version 0.0~git20200523.55506a9-1), and they also cover a user
   who has un-gzipped the files.

Every failure raises :class:`CorruptFileError`, which names the file and says
how to fix it.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

# MD5 of the original .gz files, as published by Zalando Research.
FASHION_MNIST_MD5_GZ = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

# SHA-256 of the decompressed IDX bytes (see the module docstring).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

_UBYTE = 0x08
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class CorruptFileError(ValueError):
    """A data file is truncated, corrupt or not what its name says."""


def _fix_hint(path: Path) -> str:
    return (
        f"Delete or replace {path}: copy the four original files again (they are published "
        "with Fashion-MNIST), or reinstall Debian's package with "
        "`sudo apt-get install --reinstall dataset-fashion-mnist`."
    )


def read_bytes(path: str | Path) -> bytes:
    """Return the decompressed content of an IDX file (``.gz`` or raw).

    Raises:
        CorruptFileError: if a ``.gz`` file is truncated or not valid gzip.
    """
    path = Path(path)
    raw = path.read_bytes()
    if not raw:
        raise CorruptFileError(f"{path} is empty (0 bytes). " + _fix_hint(path))
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise CorruptFileError(
            f"{path} is not a complete gzip file ({err}); it is probably truncated. "
            + _fix_hint(path)
        ) from err


def verify(path: str | Path, content: bytes | None = None) -> str:
    """Check ``path`` against the published Fashion-MNIST checksums.

    Args:
        path: an IDX file, compressed (``*.gz``) or not.
        content: its decompressed bytes, if already read (saves a second read).

    Returns:
        Which check passed: ``"md5 of .gz"`` or ``"sha256 of content"``.

    Raises:
        CorruptFileError: if neither digest matches, or the name is unknown.
    """
    path = Path(path)
    stem = path.name[:-3] if path.name.endswith(".gz") else path.name
    if stem not in FASHION_MNIST_SHA256:
        raise CorruptFileError(
            f"{path} is not one of the Fashion-MNIST files "
            f"({', '.join(sorted(FASHION_MNIST_SHA256))}, optionally .gz)."
        )
    if path.name in FASHION_MNIST_MD5_GZ:
        if hashlib.md5(path.read_bytes()).hexdigest() == FASHION_MNIST_MD5_GZ[path.name]:
            return "md5 of .gz"
    if content is None:
        content = read_bytes(path)
    if hashlib.sha256(content).hexdigest() == FASHION_MNIST_SHA256[stem]:
        return "sha256 of content"
    raise CorruptFileError(
        f"{path} does not match the published Fashion-MNIST checksum "
        f"({len(content):,} bytes after decompression); the file is corrupt or truncated. "
        + _fix_hint(path)
    )


def parse(content: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array.

    Args:
        content: the decompressed IDX bytes.
        source: a name for error messages (usually the file path).

    Returns:
        A ``uint8`` array of the shape the header gives, e.g. ``(60000, 28, 28)``
        for images or ``(60000,)`` for labels.

    Raises:
        CorruptFileError: on a bad magic number or a size that disagrees with the header.
    """
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise CorruptFileError(f"{source} is not an IDX file (bad magic number).")
    if content[2] != _UBYTE:
        raise CorruptFileError(
            f"{source} holds IDX type code 0x{content[2]:02x}; only unsigned bytes (0x08) are used."
        )
    ndim = content[3]
    header = 4 + 4 * ndim
    if len(content) < header:
        raise CorruptFileError(f"{source} is truncated inside its header.")
    shape = tuple(int(d) for d in np.frombuffer(content[4:header], dtype=">u4"))
    expected = int(np.prod(shape)) + header
    if len(content) != expected:
        raise CorruptFileError(
            f"{source} should hold {expected:,} bytes for shape {shape}, "
            f"but holds {len(content):,}; the file is truncated or corrupt."
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


def load(path: str | Path, check: bool = True) -> np.ndarray:
    """Read, verify and decode one Fashion-MNIST IDX file.

    Args:
        path: the file (``.gz`` or raw).
        check: verify the checksum first (turn off only for files of your own).

    Returns:
        ``uint8`` array, ``(N, 28, 28)`` for images or ``(N,)`` for labels.
    """
    path = Path(path)
    content = read_bytes(path)
    if check:
        verify(path, content)
    return parse(content, str(path))


def find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    return None


def read_folder(folder: str | Path) -> dict[str, np.ndarray]:
    """Read and verify the four Fashion-MNIST IDX files in ``folder``.

    Returns:
        ``uint8`` arrays ``x_train (60000, 28, 28)``, ``y_train (60000,)``,
        ``x_test (10000, 28, 28)``, ``y_test (10000,)``.

    Raises:
        FileNotFoundError: if a file is missing (the message names it).
        idx.CorruptFileError: if a file is truncated or fails its checksum.
    """
    folder = Path(folder)
    arrays = {}
    for key, stem in FILES.items():
        path = find(folder, stem)
        if path is None:
            raise FileNotFoundError(f"{folder / (stem + '.gz')} is missing (or {stem} unpacked).")
        arrays[key] = load(path)
    return arrays
