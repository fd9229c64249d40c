"""Sources behind :func:`utils.data.load` that involve TensorFlow Datasets, Keras or the network.

Each ``from_*`` function takes a dataset name and a list to which it appends
one line saying why it found nothing; it returns ``(arrays, description)``
or None. Arrays are ``uint8`` images ``(N, H, W[, C])`` and integer labels ``(N,)``.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np

from utils import idx

OFFLINE_ENV = "COURSE_OFFLINE"
PROBE_HOST = ("storage.googleapis.com", 443)  # where tensorflow-datasets downloads from
PROBE_TIMEOUT_S = 3.0  # long enough for a slow link, short enough not to stall a notebook
KERAS_CACHE = {
    "mnist": "mnist.npz",
    "fashion_mnist": "fashion-mnist",
    "cifar10": "cifar-10-batches-py",
}


def tfds_data_dir() -> Path:
    """The TensorFlow Datasets folder: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets")).expanduser()


def is_online(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the dataset host answers within ``timeout`` seconds.

    ``COURSE_OFFLINE=1`` answers False without trying. The probe runs in a
    thread so that a hanging name lookup cannot stall the caller either.
    """
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return False
    result = []

    def probe():
        try:
            socket.create_connection(PROBE_HOST, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _tfds_prepared(name: str) -> bool:
    import logging

    import tensorflow_datasets as tfds

    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # hide "folder has no dataset_info.json" chatter
    try:
        return tfds.builder(name, data_dir=str(tfds_data_dir())).is_prepared()
    finally:
        absl_logger.setLevel(level)


def _read_tfds(name: str, download: bool) -> dict[str, np.ndarray]:
    import tensorflow_datasets as tfds

    (x_train, y_train), (x_test, y_test) = tfds.as_numpy(
        tfds.load(
            name,
            split=["train", "test"],
            batch_size=-1,
            as_supervised=True,
            data_dir=str(tfds_data_dir()),
            download=download,
        )
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def from_tfds_disk(name: str, attempts: list[str]):
    """A dataset that tensorflow-datasets has already prepared on this machine."""
    if not _tfds_prepared(name):
        attempts.append(f"TensorFlow Datasets folder ({tfds_data_dir() / name}): not prepared")
        return None
    return _read_tfds(name, download=False), f"TensorFlow Datasets ({tfds_data_dir() / name})"


def keras_datasets_dir() -> Path:
    """Folder of ``keras.datasets`` downloads: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "datasets"


def _read_keras_files(name: str, path: Path) -> dict[str, np.ndarray]:
    if name == "mnist":
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    if name == "fashion_mnist":
        return idx.read_folder(path)
    # CIFAR-10's python version: pickled dicts of (N, 3072) uint8 rows in CHW order.
    parts = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    arrays = {}
    for split, files in parts.items():
        images, labels = [], []
        for file in files:
            with open(path / file, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"]))
        arrays[f"x_{split}"] = np.concatenate(images).transpose(0, 2, 3, 1)
        arrays[f"y_{split}"] = np.concatenate(labels)
    return arrays


def from_keras_cache(name: str, attempts: list[str]):
    """Files that ``keras.datasets`` downloaded earlier, read directly (never downloads)."""
    path = keras_datasets_dir() / KERAS_CACHE[name]
    if not path.exists():
        attempts.append(f"Keras cache ({path}): not there")
        return None
    try:
        arrays = _read_keras_files(name, path)
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        FileNotFoundError,
    ) as err:
        attempts.append(f"Keras cache ({path}): unreadable ({err}); delete it to download again")
        return None
    return arrays, f"the Keras cache ({path})"


def from_download(name: str, attempts: list[str]):
    """Download through tensorflow-datasets, after a quick check that we are online."""
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}:
        attempts.append(f"download through tensorflow-datasets: skipped ({OFFLINE_ENV} is set)")
        return None
    if not is_online():
        attempts.append(
            "download through tensorflow-datasets: no internet connection "
            f"(probe of {PROBE_HOST[0]} failed within {PROBE_TIMEOUT_S:g} s)"
        )
        return None
    try:
        import importlib_resources  # noqa: F401  (tfds 4.9.10 cannot download without it)
    except ImportError:
        attempts.append(
            "download through tensorflow-datasets: the package importlib_resources "
            "is missing (pip install -r requirements.txt)"
        )
        return None
    print(f"Downloading {name} with tensorflow-datasets into {tfds_data_dir()} (once)...")
    where = f"TensorFlow Datasets download ({tfds_data_dir() / name})"
    return _read_tfds(name, download=True), where


def unavailable_message(name: str, attempts: list[str]) -> str:
    """The error text for a dataset that no source could provide: what was tried, and every fix."""
    ways = [
        "connect to the internet and run again: the data is downloaded once through "
        f"tensorflow-datasets and cached in {tfds_data_dir()}",
        f"copy a prepared tensorflow_datasets folder (with {name}/ in it) from another machine "
        "and point TFDS_DATA_DIR at it; `python -m utils.data fetch` prepares it online",
    ]
    if name == "fashion_mnist":
        ways.append(
            "put the four Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, ...) "
            "in a folder and set FASHION_MNIST_DIR to that folder"
        )
        ways.append("on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist")
    else:
        ways.append(
            f"or run on Fashion-MNIST offline: load({name!r}, fallback='fashion_mnist'), "
            "after sudo apt-get install dataset-fashion-mnist"
        )
    lines = [f"No source could provide {name!r}."]
    lines += ["Tried:"] + [f"  - {line}" for line in attempts]
    lines += ["Ways to provide it:"] + [f"  {i}. {way}" for i, way in enumerate(ways, 1)]
    return "\n".join(lines)
