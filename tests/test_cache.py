"""Tests for utils/cache.py: the atomic on-disk cache of decoded datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utils import cache


@pytest.fixture
def cache_folder(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    return tmp_path


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, size=(5, 4, 4), dtype=np.uint8),
        "y_train": np.arange(5, dtype=np.int64),
        "x_test": np.zeros((2, 4, 4), dtype=np.uint8),
        "y_test": np.array([3, 1], dtype=np.int64),
    }


def test_cache_dir_honours_env(cache_folder):
    assert cache.cache_dir() == cache_folder


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / ".cache" / "dl-vision-course"
    assert not cache.cache_dir().exists()  # not created just by asking


def test_save_and_load_round_trip(cache_folder):
    arrays = sample_arrays()
    path = cache.save_arrays("mnist", arrays)
    assert path == cache_folder / "mnist.npz"
    assert path.is_file()
    assert sorted(p.name for p in cache_folder.iterdir()) == ["mnist.npz"]  # no leftovers
    loaded = cache.load_arrays("mnist")
    assert loaded is not None
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_save_creates_missing_folder(monkeypatch, tmp_path):
    folder = tmp_path / "a" / "b"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(folder))
    cache.save_arrays("k", sample_arrays())
    assert (folder / "k.npz").is_file()


def test_save_replaces_existing(cache_folder):
    cache.save_arrays("k", {"a": np.zeros(3)})
    cache.save_arrays("k", {"b": np.ones(2)})
    loaded = cache.load_arrays("k")
    assert list(loaded) == ["b"]
    np.testing.assert_array_equal(loaded["b"], np.ones(2))


def test_load_missing_key_returns_none(cache_folder, capsys):
    assert cache.load_arrays("nothing") is None
    assert capsys.readouterr().out == ""


def test_atomic_path_success(tmp_path):
    target = tmp_path / "out.bin"
    with cache.atomic_path(target) as tmp:
        assert tmp != target
        assert tmp.parent == tmp_path  # same folder, so os.replace is atomic
        assert not target.exists()  # nothing visible until the block succeeds
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert list(tmp_path.glob("*.part")) == [] and list(tmp_path.glob(".*.part")) == []
    assert target.stat().st_mode & 0o777 == 0o644  # not the temporary file's 0o600
    target.chmod(0o664)
    with cache.atomic_path(target) as tmp:
        tmp.write_bytes(b"again")
    assert target.stat().st_mode & 0o777 == 0o664  # a replaced file keeps its mode


def test_atomic_path_exception_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError, match="boom"):
        with cache.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # neither the target nor any (hidden) *.part file


def test_atomic_path_exception_keeps_old_target(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with cache.atomic_path(target) as tmp:
            tmp.write_bytes(b"new but partial")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def _interrupted_savez(handle, **arrays):
    handle.write(b"PK\x03\x04 some bytes of a zip that never gets finished")
    raise OSError(28, "No space left on device")


def test_interrupted_save_leaves_no_file(cache_folder, monkeypatch):
    monkeypatch.setattr(cache.np, "savez", _interrupted_savez)
    with pytest.raises(OSError, match="No space left"):
        cache.save_arrays("mnist", sample_arrays())
    assert list(cache_folder.iterdir()) == []
    assert cache.load_arrays("mnist") is None


def test_interrupted_save_keeps_previous_cache(cache_folder, monkeypatch):
    arrays = sample_arrays()
    cache.save_arrays("mnist", arrays)
    monkeypatch.setattr(cache.np, "savez", _interrupted_savez)
    with pytest.raises(OSError):
        cache.save_arrays("mnist", {"x_train": np.ones(3)})
    assert [p.name for p in cache_folder.iterdir()] == ["mnist.npz"]
    loaded = cache.load_arrays("mnist")
    np.testing.assert_array_equal(loaded["x_train"], arrays["x_train"])


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_corrupt_cache_file_is_reported_and_deleted(cache_folder, capsys, kind):
    path = cache_folder / "mnist.npz"
    if kind == "garbage":
        path.write_bytes(b"\x00garbage, certainly not an npz file" * 10)
    elif kind == "truncated":
        cache.save_arrays("mnist", sample_arrays())
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    else:
        path.write_bytes(b"")
    assert cache.load_arrays("mnist") is None
    out = capsys.readouterr().out
    assert str(path) in out
    assert "deleting" in out
    assert not path.exists()
    # and a rebuild works afterwards
    cache.save_arrays("mnist", sample_arrays())
    assert cache.load_arrays("mnist") is not None
