"""Tests for utils/data.py, utils/sources.py, utils/images.py and utils/quick.py.

Every test runs offline: COURSE_OFFLINE=1 is set and socket connections are refused, so
no test can download anything even on a machine with internet access.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from utils import cache, data, idx, images, quick, sources

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    not all((DEBIAN / f"{stem}.gz").exists() for stem in idx.FILES.values()),
    reason="Debian package dataset-fashion-mnist is not installed",
)


def _no_network(*args, **kwargs):
    raise OSError("network access is disabled in the unit tests")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, an empty kit cache and an empty TFDS folder, the real Debian folder."""
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    return tmp_path


@pytest.fixture
def nothing_local(monkeypatch, tmp_path):
    """Also no Debian folder and an empty home (so no Keras cache): no source at all."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")
    return tmp_path


@pytest.fixture(scope="module")
def fashion_quick():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FASHION_MNIST_DIR", raising=False)
        mp.setenv("COURSE_OFFLINE", "1")
        return data.load("fashion_mnist", quick_mode=True, verbose=False)


# --- load: Fashion-MNIST from the Debian package -----------------------------------------------


@needs_debian
def test_load_fashion_mnist_quick(fashion_quick):
    ds = fashion_quick
    assert ds.x_train.shape == (data.QUICK_TRAIN_SIZE, 28, 28, 1) == (4096, 28, 28, 1)
    assert ds.x_test.shape == (data.QUICK_TEST_SIZE, 28, 28, 1) == (1024, 28, 28, 1)
    assert ds.y_train.shape == (4096,) and ds.y_test.shape == (1024,)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    for x in (ds.x_train, ds.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert x.max() > 0.9
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == np.int64
        assert y.min() >= 0 and y.max() <= 9
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert ds.name == "fashion_mnist" and ds.requested == "fashion_mnist"
    assert not ds.substituted
    assert ds.reduced
    assert "dataset-fashion-mnist" in ds.source and str(DEBIAN) in ds.source
    assert ds.input_shape == (28, 28, 1)
    assert ds.num_classes == 10 and ds.class_names[0] == "T-shirt/top"


@needs_debian
def test_load_prints_describe_line(capsys):
    ds = data.load("fashion_mnist", quick_mode=True, train_size=10, test_size=5)
    out = capsys.readouterr().out
    assert ds.describe() in out
    assert "10 train / 5 test" in out and "28x28x1 float32" in out
    assert "a subset, for the smoke size" in out


@needs_debian
def test_load_uint8_matches_float32(fashion_quick):
    ds = data.load("fashion_mnist", dtype="uint8", quick_mode=True, verbose=False)
    assert ds.x_train.dtype == np.uint8 and ds.x_test.dtype == np.uint8
    assert ds.x_train.shape == (4096, 28, 28, 1)
    assert ds.x_train.max() >= 250
    # the same (seeded) subset, only scaled differently
    np.testing.assert_allclose(ds.x_train / 255.0, fashion_quick.x_train, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, fashion_quick.y_test)
    assert "uint8 in [0, 255]" in ds.describe()


@needs_debian
def test_load_full_mode_with_sizes():
    ds = data.load("fashion_mnist", quick_mode=False, train_size=100, test_size=50, verbose=False)
    assert ds.x_train.shape == (100, 28, 28, 1) and ds.x_test.shape == (50, 28, 28, 1)
    assert ds.y_train.shape == (100,) and ds.y_test.shape == (50,)
    assert ds.reduced
    again = data.load("fashion_mnist", quick_mode=False, train_size=100, test_size=50,
                      verbose=False)
    np.testing.assert_array_equal(ds.x_train, again.x_train)  # subsets are deterministic


@needs_debian
def test_load_subsets_exactly_at_the_smoke_size(monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    monkeypatch.setenv("COURSE_SIZE", "smoke")
    ds = data.load("fashion_mnist", test_size=20, verbose=False)
    assert ds.x_train.shape[0] == data.QUICK_TRAIN_SIZE and ds.x_test.shape[0] == 20
    assert "for the smoke size" in ds.describe()
    monkeypatch.setenv("COURSE_SIZE", "cpu")
    ds = data.load("fashion_mnist", verbose=False)
    assert ds.x_train.shape[0] == 60_000 and ds.x_test.shape[0] == 10_000 and not ds.reduced


# --- load: digits and argument errors ----------------------------------------------------------


def test_load_digits():
    ds = data.load("digits", quick_mode=False, verbose=False)
    n, m = len(ds.x_train), len(ds.x_test)
    assert ds.x_train.shape == (n, 8, 8, 1) and ds.x_test.shape == (m, 8, 8, 1)
    assert n + m == 1797 and n > m
    assert ds.x_train.dtype == np.float32 and 0.9 < ds.x_train.max() <= 1.0
    assert ds.y_train.dtype == np.int64 and set(np.unique(ds.y_train)) == set(range(10))
    assert "scikit-learn" in ds.source
    raw = data.load("digits", dtype="uint8", quick_mode=False, verbose=False)
    assert raw.x_train.dtype == np.uint8 and raw.x_train.max() == 255


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"name": "imagenet"}, "'imagenet'"),
        ({"name": "digits", "dtype": "float64"}, "'float64'"),
        ({"name": "digits", "fallback": "svhn"}, "'svhn'"),
    ],
)
def test_load_bad_arguments(kwargs, value):
    with pytest.raises(ValueError) as info:
        data.load(**kwargs, verbose=False)
    assert value in str(info.value)


# --- load: damaged local files -----------------------------------------------------------------


@needs_debian
def test_load_truncated_file_in_env_folder(monkeypatch, tmp_path):
    folder = tmp_path / "fmnist"
    folder.mkdir()
    for stem in idx.FILES.values():
        shutil.copy(DEBIAN / f"{stem}.gz", folder)
    damaged = folder / "train-labels-idx1-ubyte.gz"
    whole = damaged.read_bytes()
    damaged.write_bytes(whole[: len(whole) // 2])
    monkeypatch.setenv("FASHION_MNIST_DIR", str(folder))
    # The env folder is tried before the (intact) Debian one, and damage is not skipped silently.
    with pytest.raises(idx.CorruptFileError) as info:
        data.load("fashion_mnist", quick_mode=True, verbose=False)
    assert str(damaged) in str(info.value)


@needs_debian
def test_load_flipped_byte_in_env_folder(monkeypatch, tmp_path):
    folder = tmp_path / "fmnist"
    folder.mkdir()
    for stem in idx.FILES.values():
        (folder / f"{stem}.gz").symlink_to(DEBIAN / f"{stem}.gz")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    content = bytearray(gzip.decompress((DEBIAN / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    content[-1] ^= 0x01
    damaged = folder / "t10k-labels-idx1-ubyte"  # an unpacked copy, found instead of the .gz
    damaged.write_bytes(bytes(content))
    monkeypatch.setenv("FASHION_MNIST_DIR", str(folder))
    with pytest.raises(idx.CorruptFileError, match="checksum") as info:
        data.load("fashion_mnist", quick_mode=True, verbose=False)
    assert str(damaged) in str(info.value)


@needs_debian
def test_load_env_folder_missing_falls_back_to_debian(monkeypatch, tmp_path):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "absent"))
    ds = data.load("fashion_mnist", quick_mode=True, train_size=8, test_size=8, verbose=False)
    assert "dataset-fashion-mnist" in ds.source


# --- load: nothing available -------------------------------------------------------------------


def test_from_keras_cache_uses_home(nothing_local):
    attempts: list[str] = []
    assert sources.from_keras_cache("mnist", attempts) is None
    assert attempts == [
        f"Keras cache ({nothing_local / '.keras' / 'datasets' / 'mnist.npz'}): not there"
    ]


def test_is_online_offline_env_and_refused_connection(monkeypatch):
    start = time.perf_counter()
    assert sources.is_online() is False  # COURSE_OFFLINE=1: no probe at all
    monkeypatch.delenv("COURSE_OFFLINE")
    assert sources.is_online(timeout=0.5) is False  # the probe fails (connections refused)
    assert time.perf_counter() - start < 5


def test_fashion_mnist_unavailable_message(nothing_local):
    start = time.perf_counter()
    with pytest.raises(data.DataUnavailableError) as info:
        data.load("fashion_mnist", verbose=False)
    assert time.perf_counter() - start < 10  # fails fast, no waiting on the network
    message = str(info.value)
    assert "No source could provide 'fashion_mnist'" in message
    assert "connect to the internet" in message
    assert "FASHION_MNIST_DIR" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "TFDS_DATA_DIR" in message
    assert str(nothing_local / "no-debian-package") in message  # what was tried, with paths
    assert str(nothing_local / "cache" / "fashion_mnist.npz") in message
    assert "skipped (COURSE_OFFLINE is set)" in message


def test_mnist_unavailable_message(nothing_local, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE")  # the probe runs, and fails: sockets are blocked
    start = time.perf_counter()
    with pytest.raises(data.DataUnavailableError) as info:
        data.load("mnist", verbose=False)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "No source could provide 'mnist'" in message
    assert "TFDS_DATA_DIR" in message
    assert str(nothing_local / "tfds") in message
    assert "fallback='fashion_mnist'" in message
    assert "connect to the internet" in message
    assert str(nothing_local / ".keras" / "datasets" / "mnist.npz") in message
    assert "no internet connection" in message


def test_unavailable_error_is_runtime_error():
    assert issubclass(data.DataUnavailableError, RuntimeError)


@needs_debian
def test_fallback_to_fashion_mnist(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    ds = data.load("mnist", fallback="fashion_mnist", quick_mode=True)
    assert ds.name == "fashion_mnist"
    assert ds.requested == "mnist"
    assert ds.substituted
    assert ds.class_names == data.CLASS_NAMES["fashion_mnist"]
    assert ds.x_train.shape == (4096, 28, 28, 1)
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "not available" in line)
    assert "mnist is not available" in line and "uses fashion_mnist instead" in line
    assert ds.notes == [line]


def test_fallback_that_is_also_unavailable(nothing_local):
    with pytest.raises(data.DataUnavailableError, match="'fashion_mnist'"):
        data.load("mnist", fallback="fashion_mnist", verbose=False)


def test_no_fallback_without_asking(nothing_local):
    with pytest.raises(data.DataUnavailableError):
        data.load("mnist", verbose=False)


@needs_debian
def test_damaged_keras_cache_offline_still_falls_back(monkeypatch, tmp_path):
    import keras
    from keras.src.backend import config as keras_config

    monkeypatch.setenv("HOME", str(tmp_path))
    # keras fixes its home folder at import; point it where Path.home() now points
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / ".keras"))
    assert keras.__version__
    keras_file = tmp_path / ".keras" / "datasets" / "mnist.npz"
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"an interrupted download" * 100)
    ds = data.load("mnist", fallback="fashion_mnist", quick_mode=True, verbose=False)
    assert ds.name == "fashion_mnist"


# --- load: TensorFlow Datasets branch (no network: tfds mock data) -----------------------------


def _tfds_metadata(data_dir: Path, name: str, train: int, test: int) -> None:
    """Write dataset_info.json for ``name`` so that tfds knows the split sizes.

    tfds.testing.mock_data without metadata files knows no split sizes, and
    ``batch_size=-1`` then batches by sys.maxsize, which aborts the process
    (std::length_error in TensorFlow). With the sizes, a batch holds everything.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=str(data_dir))
    Path(builder.data_dir).mkdir(parents=True)
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name="train", shard_lengths=[train], num_bytes=0),
        tfds.core.SplitInfo(name="test", shard_lengths=[test], num_bytes=0),
    ]))
    builder.info.write_to_directory(builder.data_dir)


def test_load_mnist_from_tfds_folder(monkeypatch, offline):
    tfds = pytest.importorskip("tensorflow_datasets")
    tfds_dir = offline / "tfds"
    _tfds_metadata(tfds_dir, "mnist", train=12, test=12)
    monkeypatch.setattr(sources, "_tfds_prepared", lambda name: True)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_FILES,
                                data_dir=str(tfds_dir)):
        ds = data.load("mnist", quick_mode=False, verbose=False)
    assert ds.name == "mnist"
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_test.shape == (12, 28, 28, 1)
    assert ds.x_train.dtype == np.float32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (12,)
    assert ds.y_train.min() >= 0 and ds.y_train.max() <= 9
    assert "TensorFlow Datasets" in ds.source and str(tfds_dir / "mnist") in ds.source
    # it wrote the kit cache, and the next load reads it (no tfds mock needed any more)
    cached = offline / "cache" / "mnist.npz"
    assert cached.is_file()
    monkeypatch.setattr(sources, "_tfds_prepared", lambda name: False)
    again = data.load("mnist", quick_mode=False, verbose=False)
    assert "kit cache" in again.source
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)


# --- availability ------------------------------------------------------------------------------


@needs_debian
def test_availability(monkeypatch, offline):
    monkeypatch.setattr(data, "_tfds_prepared_quietly", lambda name: False)
    cache.save_arrays("cifar10", {"x_train": np.zeros((1, 32, 32, 3), np.uint8)})
    report = data.availability(check_online=False)
    assert set(report) == {"mnist", "fashion_mnist", "cifar10", "digits"}
    assert "Debian package dataset-fashion-mnist" in report["fashion_mnist"]
    assert "download possible: not checked" in report["mnist"]
    assert report["mnist"].startswith("not offline")
    assert "kit cache" in report["cifar10"]
    assert report["digits"] == "bundled with scikit-learn"


def test_availability_real_tfds_check_is_offline_safe():
    report = data.availability(check_online=True)  # COURSE_OFFLINE=1: no probe
    assert "download possible: no" in report["mnist"]
    assert "TensorFlow Datasets folder" not in report["mnist"]  # empty TFDS_DATA_DIR


# --- images.adapt ------------------------------------------------------------------------------


def _dataset(x_train: np.ndarray, x_test: np.ndarray) -> data.Dataset:
    return data.Dataset(
        name="toy", x_train=x_train, y_train=np.zeros(len(x_train), np.int64), x_test=x_test,
        y_test=np.zeros(len(x_test), np.int64), class_names=["a", "b"], source="test",
        requested="toy",
    )


def test_adapt_pads_28_to_32_and_repeats_channels(capsys):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.01, 1.0, size=(3, 28, 28, 1)).astype(np.float32)
    ds = _dataset(x, x[:2])
    out = images.adapt(ds, size=(32, 32), channels=3)
    assert out.x_train.shape == (3, 32, 32, 3) and out.x_test.shape == (2, 32, 32, 3)
    assert out.x_train.dtype == np.float32
    for c in range(3):
        np.testing.assert_array_equal(out.x_train[:, 2:30, 2:30, c], x[..., 0])
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.all(out.x_train[:, border, :] == 0)
    assert out.input_shape == (32, 32, 3)
    assert out.notes and "28x28x1" in out.notes[-1] and "32x32x3" in out.notes[-1]
    assert out.notes[-1] in capsys.readouterr().out
    assert ds.x_train.shape == (3, 28, 28, 1)  # the original is not changed


def test_adapt_rgb_to_gray():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(4, 5, 5, 3), dtype=np.uint8)
    out = images.adapt(_dataset(x, x), channels=1, verbose=False)
    assert out.x_train.shape == (4, 5, 5, 1) and out.x_train.dtype == np.uint8
    expected = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.max(np.abs(out.x_train[..., 0] - expected)) <= 1.0
    grey = np.full((1, 2, 2, 3), 0.5, np.float32)
    np.testing.assert_allclose(images.adapt(_dataset(grey, grey), channels=1,
                                            verbose=False).x_train, 0.5, atol=1e-6)


def test_adapt_no_change():
    x = np.zeros((2, 8, 8, 1), np.float32)
    out = images.adapt(_dataset(x, x), size=(8, 8), channels=1, verbose=False)
    assert out.x_train.shape == (2, 8, 8, 1) and out.notes == []


def test_adapt_resize_when_padding_is_impossible():
    x = np.ones((2, 28, 28, 1), np.float32)
    out = images.adapt(_dataset(x, x), size=(14, 14), verbose=False)
    assert out.x_train.shape == (2, 14, 14, 1) and out.x_train.dtype == np.float32
    np.testing.assert_allclose(out.x_train, 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [({"size": (32,)}, "size="), ({"size": (0, 32)}, "size="), ({"size": (32, 32, 3)}, "size="),
     ({"channels": 2}, "channels=2")],
)
def test_adapt_bad_arguments(kwargs, text):
    x = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match=text):
        images.adapt(_dataset(x, x), **kwargs)


# --- images.sample_image -----------------------------------------------------------------------


def test_sample_image_camera():
    image = images.sample_image("camera")
    assert image.dtype == np.float32 and image.ndim == 2
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.5
    rgb = images.sample_image("camera", gray=False)
    assert rgb.shape == image.shape + (3,) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb[..., 0], image)
    np.testing.assert_array_equal(rgb[..., 2], image)


@pytest.mark.parametrize("name", images.SAMPLE_IMAGES)
def test_every_sample_image_is_offline(name):
    gray = images.sample_image(name)
    rgb = images.sample_image(name, gray=False)
    assert gray.dtype == np.float32 and gray.ndim == 2
    assert rgb.dtype == np.float32 and rgb.shape == gray.shape + (3,)
    assert 0.0 <= gray.min() and gray.max() <= 1.0
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0


def test_sample_image_unknown_name():
    with pytest.raises(ValueError, match="'lena'"):
        images.sample_image("lena")


# --- sizes (utils.quick) -----------------------------------------------------------------------


@pytest.fixture
def no_size(monkeypatch):
    """Neither COURSE_SIZE nor COURSE_QUICK set (the tests set COURSE_SIZE=smoke)."""
    monkeypatch.delenv("COURSE_SIZE", raising=False)
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    return monkeypatch


@pytest.mark.parametrize(("raw", "expected"), [("smoke", "smoke"), (" CPU ", "cpu"),
                                               ("full", "full")])
def test_size_from_course_size(no_size, raw, expected):
    no_size.setenv("COURSE_SIZE", raw)
    no_size.setenv("COURSE_QUICK", "0")  # COURSE_SIZE wins over the older switch
    assert quick.size() == expected
    assert quick.is_quick() is (expected == "smoke")
    assert f"Size: {expected}, because COURSE_SIZE={raw.strip()}" in quick.reason()


@pytest.mark.parametrize(("raw", "expected"),
                         [("1", "smoke"), ("true", "smoke"), (" Yes ", "smoke"), ("ON", "smoke"),
                          ("0", "full"), ("false", "full"), ("no", "full"), ("off", "full")])
def test_course_quick_still_works(no_size, raw, expected):
    no_size.setenv("COURSE_QUICK", raw)
    assert quick.size() == expected
    assert "COURSE_QUICK" in quick.reason()


@pytest.mark.parametrize(("name", "raw"), [("COURSE_SIZE", "quick"), ("COURSE_SIZE", "2"),
                                           ("COURSE_QUICK", "maybe"), ("COURSE_QUICK", "2")])
def test_bad_size_values_name_the_variable(no_size, name, raw):
    no_size.setenv(name, raw)
    with pytest.raises(ValueError) as info:
        quick.size()
    assert name in str(info.value) and repr(raw) in str(info.value)


@pytest.mark.parametrize(("gpu", "expected"), [(False, "cpu"), (True, "full")])
@pytest.mark.parametrize("raw", [None, "", "  "])
def test_unset_size_follows_the_gpu(no_size, gpu, expected, raw):
    if raw is not None:
        no_size.setenv("COURSE_SIZE", raw)
    no_size.setattr(quick, "_gpu_visible", lambda: gpu)
    assert quick.size() == expected
    assert ("no GPU was found" if not gpu else "a GPU was found") in quick.reason()


def test_pick(no_size):
    for size, expected in [("smoke", 1), ("cpu", 3), ("full", 30)]:
        no_size.setenv("COURSE_SIZE", size)
        assert quick.pick(full=30, cpu=3, smoke=1) == expected
    no_size.setenv("COURSE_SIZE", "full")
    assert quick.pick(full=[1, 2], cpu=None, smoke=None) == [1, 2]
    no_size.setenv("COURSE_SIZE", "bogus")
    with pytest.raises(ValueError, match="COURSE_SIZE"):
        quick.pick(full=30, cpu=3, smoke=1)


def test_pick_keeps_the_older_quick_keyword(no_size):
    no_size.setenv("COURSE_SIZE", "smoke")
    assert quick.pick(full=30, quick=2) == 2
    no_size.setenv("COURSE_SIZE", "cpu")
    assert quick.pick(full=30, quick=2) == 2  # quick mode used to serve the laptop too
    no_size.setenv("COURSE_SIZE", "full")
    assert quick.pick(full=30, quick=2) == 30
    with pytest.raises(TypeError, match="smoke="):
        quick.pick(full=30, cpu=3)
    with pytest.raises(TypeError, match="not both"):
        quick.pick(full=30, smoke=1, quick=2)


def test_fixed_size_holds_in_its_thread_only(no_size):
    import threading

    no_size.setenv("COURSE_SIZE", "full")
    seen = {}
    with quick.fixed("smoke"):
        assert quick.size() == "smoke" and quick.pick(full=30, cpu=3, smoke=1) == 1
        assert "the grader fixed it" in quick.reason()
        other = threading.Thread(target=lambda: seen.update(size=quick.size()))
        other.start()
        other.join()
    assert seen == {"size": "full"}  # another thread still follows the environment
    assert quick.size() == "full"
    with pytest.raises(ValueError, match="'tiny' should be one of smoke, cpu, full"):
        with quick.fixed("tiny"):
            pass


def test_cli_status_and_fetch_offline(nothing_local, capsys):
    assert data.main(["status"]) == 0
    status = capsys.readouterr().out
    assert "fashion_mnist" in status and "download possible: no" in status
    assert data.main(["fetch", "mnist"]) == 1
    out = capsys.readouterr().out
    assert "mnist: No source could provide 'mnist'" in out and "Ways to provide it" in out
    with pytest.raises(SystemExit):
        data.main(["fetch", "imagenet"])


@pytest.mark.parametrize("size", [0, -5, 2.5])
def test_bad_subset_size_is_named(size):
    with pytest.raises(ValueError, match=f"train_size={size!r}"):
        data.load("digits", train_size=size, verbose=False)
