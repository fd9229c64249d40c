"""Quick mode: one switch that shrinks data and epochs.

Set ``COURSE_QUICK=1`` to force quick mode and ``COURSE_QUICK=0`` to force the
full run. When the variable is unset, quick mode is on exactly when TensorFlow
sees no GPU, so a student on a laptop gets a run that finishes in minutes and
a GPU machine gets the full run. ``pytest --nbval`` sets ``COURSE_QUICK=1``
unless you set it yourself (``COURSE_QUICK=0 pytest --nbval`` is a full run).

Notebooks choose their sizes with :func:`pick`::

    EPOCHS = quick.pick(full=30, quick=2)  # 2 epochs are enough to see the loss fall
"""

from __future__ import annotations

import os
from typing import TypeVar

ENV_VAR = "COURSE_QUICK"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

T = TypeVar("T")


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def is_quick() -> bool:
    """Return True when notebooks should run their reduced (quick) version.

    Raises:
        ValueError: if ``COURSE_QUICK`` holds something other than 1/0/true/false.
    """
    raw = os.environ.get(ENV_VAR)
    if raw is None or raw.strip() == "":
        return not _gpu_visible()
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{ENV_VAR}={raw!r} is not understood: set it to 1 (quick run) or 0 (full run), "
        "or unset it to choose automatically (quick without a GPU)."
    )


def reason() -> str:
    """One sentence saying which mode is on and why."""
    raw = os.environ.get(ENV_VAR)
    quick = is_quick()
    if raw is None or raw.strip() == "":
        why = "no GPU was found" if quick else "a GPU was found"
        how = f"set {ENV_VAR}=0 for the full run" if quick else f"set {ENV_VAR}=1 for a quick run"
        return f"{'Quick' if quick else 'Full'} mode, because {why} ({how})."
    return f"{'Quick' if quick else 'Full'} mode, because {ENV_VAR}={raw.strip()}."


def pick(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode and ``full`` otherwise.

    Args:
        full: the value for a full run (e.g. 30 epochs).
        quick: the value for a quick run (e.g. 2 epochs).
    """
    return quick if is_quick() else full
