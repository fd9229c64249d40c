"""One loader for the course's datasets: ``mnist``, ``fashion_mnist``, ``cifar10``, ``digits``.

What :func:`load` returns (a :class:`Dataset`):

=================  ==========================  =========================================
field              dtype / range               shape (channel axis last, always present)
=================  ==========================  =========================================
``x_train``        float32 in [0, 1]           ``(N, H, W, C)``: (N, 28, 28, 1) for
                   (``dtype="uint8"``: 0..255)  (fashion_)mnist, (N, 32, 32, 3) for
                                               cifar10, (N, 8, 8, 1) for digits
``y_train``        int64 in [0, num_classes)   ``(N,)``
``x_test``         as ``x_train``              ``(M, H, W, C)``
``y_test``         as ``y_train``              ``(M,)``
=================  ==========================  =========================================

Where the data comes from, first hit wins (local and cached sources come first
so that an offline machine never waits on the network):

- ``fashion_mnist``: the IDX files in ``$FASHION_MNIST_DIR``; Debian's package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``); the kit's
  cache; a prepared TensorFlow Datasets folder; a download through
  tensorflow-datasets.
- ``mnist``, ``cifar10``: the kit's cache; a prepared TensorFlow Datasets
  folder (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); Keras' own cache
  (``~/.keras/datasets``); a download through tensorflow-datasets.
- ``digits``: scikit-learn's bundled 8x8 digits (always offline).

Before downloading, a 3-second connection probe decides whether the machine is
online, so an offline machine fails at once instead of retrying for minutes
(set ``COURSE_OFFLINE=1`` to skip the probe). When nothing works,
:class:`DataUnavailableError` lists every way to provide the data.

Offline substitution is explicit: ``load("mnist", fallback="fashion_mnist")``
prints why MNIST was not available and what was loaded instead, and the
returned ``Dataset.name`` is the dataset actually used. Without ``fallback``
nothing is ever substituted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils import cache, idx, quick, sources

FASHION_MNIST_ENV = "FASHION_MNIST_DIR"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

QUICK_TRAIN_SIZE = 4096  # the smoke size's default: enough for a small CNN to learn
QUICK_TEST_SIZE = 1024  # enough for an accuracy estimate within about +-3 points

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "digits": [str(d) for d in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "cifar10": [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ],
}  # fmt: skip
NAMES = tuple(CLASS_NAMES)


class DataUnavailableError(RuntimeError):
    """No source could provide the requested dataset; the message says how to get it."""


@dataclass(frozen=True)
class Dataset:
    """Arrays of one dataset plus where they came from. Shapes: see the module docstring."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    requested: str
    reduced: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one image."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def substituted(self) -> bool:
        """True when this is a fallback for the dataset that was asked for."""
        return self.name != self.requested

    def describe(self) -> str:
        """One line: what was loaded, its sizes and dtype, and from where."""
        h, w, c = self.input_shape
        lo, hi = ("0", "1") if self.x_train.dtype == np.float32 else ("0", "255")
        text = (
            f"{self.name}: {len(self.x_train):,} train / {len(self.x_test):,} test images, "
            f"{h}x{w}x{c} {self.x_train.dtype} in [{lo}, {hi}], from {self.source}"
        )
        if self.reduced:
            text += f" (a subset, for the {quick.size()} size)"
        return text


def _fashion_mnist_dirs() -> list[tuple[str, Path]]:
    found = []
    if os.environ.get(FASHION_MNIST_ENV):
        found.append((f"${FASHION_MNIST_ENV}", Path(os.environ[FASHION_MNIST_ENV]).expanduser()))
    found.append(("Debian package dataset-fashion-mnist", DEBIAN_FASHION_MNIST))
    return found


def _from_fashion_dirs(name: str, attempts: list[str]) -> tuple[dict, str] | None:
    if name != "fashion_mnist":
        return None
    for label, folder in _fashion_mnist_dirs():
        if not folder.is_dir():
            attempts.append(f"{label} ({folder}): no such folder")
            continue
        try:
            return idx.read_folder(folder), f"{label} ({folder})"
        except FileNotFoundError as err:
            attempts.append(f"{label}: {err}")
    return None


def _from_cache(name: str, attempts: list[str]) -> tuple[dict, str] | None:
    arrays = cache.load_arrays(name, required=("x_train", "y_train", "x_test", "y_test"))
    if arrays is None:
        attempts.append(f"kit cache ({cache.cache_dir() / (name + '.npz')}): not there")
        return None
    return arrays, f"the kit cache ({cache.cache_dir() / (name + '.npz')})"


def _load_arrays(name: str) -> tuple[dict, str]:
    if name == "digits":
        return _digits()
    attempts: list[str] = []
    # (source, whether to copy what it gives into the kit cache), local and cheap first.
    steps = [
        (_from_fashion_dirs, False),  # verified IDX files are as fast to read as the cache
        (_from_cache, False),
        (sources.from_tfds_disk, True),
        (sources.from_keras_cache, True),
        (sources.from_download, True),
    ]
    for step, keep in steps:
        found = step(name, attempts)
        if found is not None:
            if keep:
                cache.save_arrays(name, found[0])
            return found
    raise DataUnavailableError(sources.unavailable_message(name, attempts))


def _digits() -> tuple[dict, str]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=0.25, random_state=0, stratify=bunch.target
    )
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return arrays, "scikit-learn's bundled digits (fixed 75/25 stratified split)"


def _subset(x: np.ndarray, y: np.ndarray, size: int | None, seed: int):
    if size is None or size >= len(x):
        return x, y
    keep = np.sort(np.random.default_rng(seed).permutation(len(x))[:size])
    return x[keep], y[keep]


def load(
    name: str,
    *,
    fallback: str | None = None,
    dtype: str = "float32",
    quick_mode: bool | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    verbose: bool = True,
) -> Dataset:
    """Load a dataset as NumPy arrays (see the module docstring for shapes and sources).

    Args:
        name: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` or ``"digits"``.
        fallback: a dataset to use, announced, when ``name`` cannot be had
            (e.g. offline). None means never substitute.
        dtype: ``"float32"`` (values in [0, 1]) or ``"uint8"`` (0..255, a quarter
            of the memory; :func:`utils.pipeline.make` converts each batch).
        quick_mode: shrink to a fixed random subset; None: exactly at the smoke size
            (:mod:`utils.quick`).
        train_size, test_size: subset sizes; default all at the cpu and full sizes and
            ``QUICK_TRAIN_SIZE`` / ``QUICK_TEST_SIZE`` at the smoke size.
        verbose: print one line saying what was loaded and from where.

    Returns:
        A :class:`Dataset`. ``x_*`` have shape ``(N, H, W, C)``, ``y_*`` shape ``(N,)``.

    Raises:
        ValueError: for an unknown name or dtype.
        DataUnavailableError: when no source works (the message lists every way).
        idx.CorruptFileError: when a local file is damaged (the message names it).
    """
    if name not in NAMES:
        raise ValueError(f"name={name!r} is not a course dataset; choose one of {NAMES}.")
    if fallback is not None and fallback not in NAMES:
        raise ValueError(f"fallback={fallback!r} is not a course dataset; choose one of {NAMES}.")
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' or 'uint8'.")
    for label, size in (("train_size", train_size), ("test_size", test_size)):
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(f"{label}={size!r} should be a positive integer or None (all).")
    notes = []
    actual = name
    try:
        arrays, where = _load_arrays(name)
    except DataUnavailableError:
        if fallback is None:
            raise
        note = (
            f"{name} is not available here (no local or cached copy, and no download), "
            f"so this run uses {fallback} instead."
        )
        notes.append(note)
        if verbose:
            print(note)
        actual = fallback
        arrays, where = _load_arrays(fallback)

    quick_on = quick.is_quick() if quick_mode is None else quick_mode
    if quick_on:
        train_size = QUICK_TRAIN_SIZE if train_size is None else train_size
        test_size = QUICK_TEST_SIZE if test_size is None else test_size
    x_train, y_train = _subset(arrays["x_train"], arrays["y_train"], train_size, seed=0)
    x_test, y_test = _subset(arrays["x_test"], arrays["y_test"], test_size, seed=1)
    reduced = len(x_train) < len(arrays["x_train"]) or len(x_test) < len(arrays["x_test"])

    def prepare(images: np.ndarray) -> np.ndarray:
        images = images if images.ndim == 4 else images[..., np.newaxis]
        images = images.astype(np.uint8, copy=False)
        return (images.astype(np.float32) / 255.0) if dtype == "float32" else images

    result = Dataset(
        name=actual,
        x_train=prepare(x_train),
        y_train=np.asarray(y_train, dtype=np.int64).reshape(-1),
        x_test=prepare(x_test),
        y_test=np.asarray(y_test, dtype=np.int64).reshape(-1),
        class_names=list(CLASS_NAMES[actual]),
        source=where,
        requested=name,
        reduced=reduced,
        notes=notes,
    )
    if verbose:
        print(result.describe())
    return result


def availability(check_online: bool = True) -> dict[str, str]:
    """Say, for each dataset, where :func:`load` would find it right now (nothing is loaded).

    Returns:
        ``{name: description}``, e.g. ``{"mnist": "not offline; online: yes", ...}``.
    """
    online = sources.is_online() if check_online else None
    report = {}
    for name in NAMES:
        places = []
        if name == "digits":
            places.append("bundled with scikit-learn")
        if name == "fashion_mnist":
            places += [
                f"{label} ({folder})"
                for label, folder in _fashion_mnist_dirs()
                if idx.find(folder, idx.FILES["x_train"]) is not None
            ]
        if (cache.cache_dir() / f"{name}.npz").exists():
            places.append("kit cache")
        if name != "digits" and _tfds_prepared_quietly(name):
            places.append("TensorFlow Datasets folder")
        offline = ", ".join(places) if places else "not offline"
        online_text = {None: "not checked", True: "yes", False: "no"}[online]
        download = f"; download possible: {online_text}"
        report[name] = offline if name == "digits" else offline + download
    return report


def _tfds_prepared_quietly(name: str) -> bool:
    try:
        return sources._tfds_prepared(name)
    except Exception:  # a broken tfds install should not break a status report
        return False


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.data status`` reports sources; ``fetch [NAMES]`` downloads and caches."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m utils.data", description=main.__doc__)
    parser.add_argument("command", choices=["status", "fetch"])
    parser.add_argument("names", nargs="*", default=[n for n in NAMES if n != "digits"])
    args = parser.parse_args(argv)
    if args.command == "status":
        for name, text in availability().items():
            print(f"{name:14s} {text}")
        return 0
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(NAMES)}")
    failed = 0
    for name in args.names:
        try:
            load(name, quick_mode=False)
        except (DataUnavailableError, idx.CorruptFileError, FileNotFoundError) as err:
            print(f"{name}: {err}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
