"""Run sizes: one switch chooses how big every notebook's run is.

Three sizes, for three machines:

- ``smoke``: the tests' size (``pytest --nbval``, ``utils.labs.notebooks refresh`` and the
  grader). It shows that the code runs and that the checks hold, in seconds.
- ``cpu``: a student's laptop without a GPU. Minutes per notebook, and results that
  teach (each lab's main model reaches its CPU-size floor).
- ``full``: a GPU, at the full-run targets.

``COURSE_SIZE=smoke|cpu|full`` chooses. When it is unset, the older switch
``COURSE_QUICK`` still works (``1`` is ``smoke``, ``0`` is ``full``); when both are
unset, the size is ``full`` exactly when TensorFlow sees a GPU and ``cpu`` otherwise.

Notebooks choose their constants with :func:`pick`::

    EPOCHS = quick.pick(full=30, cpu=3, smoke=1)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import TypeVar

ENV_VAR = "COURSE_SIZE"
LEGACY_VAR = "COURSE_QUICK"
SIZES = ("smoke", "cpu", "full")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_UNSET = object()
_FIXED: contextvars.ContextVar[str | None] = contextvars.ContextVar("course_size", default=None)

T = TypeVar("T")


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def fixed(name: str):
    """Within the block, this thread (and only it) runs at size ``name``, whatever the
    environment says; the grader runs a solution at its grading size this way while other
    threads go on.

    Raises:
        ValueError: if ``name`` is not one of :data:`SIZES`.
    """
    if name not in SIZES:
        raise ValueError(f"size={name!r} should be one of {', '.join(SIZES)}.")
    token = _FIXED.set(name)
    try:
        yield name
    finally:
        _FIXED.reset(token)


def _explicit() -> tuple[str, str] | None:
    """``(size, why)`` chosen by :func:`fixed` or an environment variable, or None when
    nothing chose.

    Raises:
        ValueError: if ``COURSE_SIZE`` or ``COURSE_QUICK`` holds something not understood.
    """
    if _FIXED.get() is not None:
        return _FIXED.get(), "the grader fixed it"
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        if raw.lower() in SIZES:
            return raw.lower(), f"{ENV_VAR}={raw}"
        raise ValueError(
            f"{ENV_VAR}={raw!r} is not a size: set it to smoke (the tests' size), cpu (a "
            "laptop without a GPU) or full (a GPU), or unset it to choose automatically."
        )
    legacy = os.environ.get(LEGACY_VAR, "").strip()
    if legacy:
        if legacy.lower() in _TRUE:
            return "smoke", f"{LEGACY_VAR}={legacy}"
        if legacy.lower() in _FALSE:
            return "full", f"{LEGACY_VAR}={legacy}"
        raise ValueError(
            f"{LEGACY_VAR}={legacy!r} is not understood: set it to 1 (smoke size) or 0 (full "
            f"size), or use {ENV_VAR}=smoke|cpu|full instead."
        )
    return None


def size() -> str:
    """The size this run uses: ``"smoke"``, ``"cpu"`` or ``"full"``.

    Raises:
        ValueError: if ``COURSE_SIZE`` or ``COURSE_QUICK`` holds something not understood.
    """
    chosen = _explicit()
    if chosen is not None:
        return chosen[0]
    return "full" if _gpu_visible() else "cpu"


def is_quick() -> bool:
    """True at the smoke size (what ``COURSE_QUICK=1`` used to call quick mode)."""
    return size() == "smoke"


def reason() -> str:
    """One sentence saying which size runs and why."""
    chosen = _explicit()
    if chosen is not None:
        name, why = chosen
        return f"Size: {name}, because {why}."
    if _gpu_visible():
        return (f"Size: full, because a GPU was found ({ENV_VAR}=cpu or smoke for a "
                "smaller run).")
    return (f"Size: cpu, because no GPU was found ({ENV_VAR}=smoke for the tests' size, "
            f"{ENV_VAR}=full for the full run).")


def pick(*, full: T, cpu: T = _UNSET, smoke: T = _UNSET, quick: T = _UNSET) -> T:
    """The value for this run's size.

    Args:
        full: the value for a full run on a GPU (e.g. 30 epochs).
        cpu: the value for a laptop without a GPU.
        smoke: the value for the tests.
        quick: the older name of ``smoke``; with it alone, ``cpu`` takes the same value
            (quick mode used to serve both).

    Raises:
        TypeError: if neither ``smoke`` nor ``quick`` is given, or both are.
    """
    if smoke is _UNSET and quick is _UNSET:
        raise TypeError("pick() needs smoke=... (the tests' value) as well as full= and cpu=.")
    if smoke is not _UNSET and quick is not _UNSET:
        raise TypeError("pick() takes smoke= or its older name quick=, not both.")
    smoke_value = quick if smoke is _UNSET else smoke
    cpu_value = smoke_value if cpu is _UNSET else cpu
    return {"smoke": smoke_value, "cpu": cpu_value, "full": full}[size()]
