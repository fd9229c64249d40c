"""An on-disk cache of decoded datasets, written so it can never be half-written.

Arrays are stored as ``<cache dir>/<key>.npz``. Every write goes to a temporary
file in the same folder and is moved into place with :func:`os.replace` only
after it is complete, so an interrupted download or a full disk never leaves a
partial file that a later run would trust. A cache file that fails to load is
reported, deleted and rebuilt by the caller.

The cache folder is ``$COURSE_CACHE_DIR`` if set, else ``~/.cache/dl-vision-course``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ENV_VAR = "COURSE_CACHE_DIR"


def cache_dir() -> Path:
    """The folder where decoded datasets are cached (not created here)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "dl-vision-course"


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path; move it onto ``target`` only if the block succeeds.

    On any exception the temporary file is removed and ``target`` is untouched. The file
    keeps the mode of the ``target`` it replaces, or gets 0o644 (readable by all, like a
    file written normally), not the owner-only mode of a temporary file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def save_arrays(key: str, arrays: dict[str, np.ndarray]) -> Path:
    """Store ``arrays`` under ``key`` atomically and return the file's path."""
    target = cache_dir() / f"{key}.npz"
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
    return target


def load_arrays(key: str, required: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """Return the arrays cached under ``key``, or None if there are none.

    A cache file that cannot be read (truncated, not a zip) or that lacks one of
    the ``required`` arrays is deleted, with a message, and None is returned so
    that the caller rebuilds it.
    """
    path = cache_dir() / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        missing = [name for name in required if name not in arrays]
        if missing:
            raise ValueError(f"it lacks {missing}")
        return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        print(f"Cached file {path} is unreadable ({err}); deleting it and rebuilding.")
        path.unlink(missing_ok=True)
        return None
