"""The one setup call: seeds, accelerator report, distribution strategy, precision, XLA.

Every notebook starts with::

    rt = runtime.setup(seed=0)

which

- seeds Python's ``random``, NumPy and TensorFlow (``keras.utils.set_random_seed``);
- on a CPU-only machine, turns on TensorFlow's deterministic ops, so two runs
  with the same seed give identical weights;
- finds the GPUs and says whether mixed precision pays off (compute capability
  7.0 or higher has tensor cores; a CPU emulates float16 and gets slower);
- picks the distribution strategy: ``MirroredStrategy`` over all local GPUs when
  there are two or more, otherwise the default strategy (one GPU or the CPU);
  ``logical_cpus=2`` splits the CPU into two logical devices and mirrors over
  them, which is how the tests exercise the multi-device path without a GPU;
- chooses the precision policy from the GPU's compute capability
  (:func:`choose_precision`): ``mixed_bfloat16`` from 8.0 (A100, L4, H100), which
  needs no loss scaling; ``mixed_float16`` on Volta and Turing (7.x: V100, T4), where
  Keras scales the loss; ``float32`` on older GPUs and on the CPU;
- turns on XLA on a GPU, never on the CPU.

**The GPU rehearsal.** ``COURSE_REHEARSE_GPU=1`` (or ``setup(rehearse=True)``) makes a
CPU run use the GPU configuration: mixed precision (``mixed_float16``;
``COURSE_REHEARSE_GPU=bfloat16`` for ``mixed_bfloat16``), XLA, and the data on the
device in :func:`utils.training.fit`. It is slow, since a CPU emulates half precision,
and exists so that the tests run the GPU path on a machine without one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from utils import quick

_CURRENT: Runtime | None = None
MIN_TENSOR_CORE_CAPABILITY = (7, 0)  # Volta and newer run float16 matmuls on tensor cores
MIN_BFLOAT16_CAPABILITY = (8, 0)  # Ampere and newer run bfloat16 on tensor cores
REHEARSE_VAR = "COURSE_REHEARSE_GPU"
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
_REHEARSALS = {"1": "mixed_float16", "true": "mixed_float16", "yes": "mixed_float16",
               "on": "mixed_float16", "float16": "mixed_float16",
               "mixed_float16": "mixed_float16", "bfloat16": "mixed_bfloat16",
               "mixed_bfloat16": "mixed_bfloat16"}
_OFF = {"", "0", "false", "no", "off"}


def choose_precision(capabilities: list[tuple[int, int]]) -> tuple[str, str]:
    """The precision policy for GPUs of these compute capabilities, and why.

    Args:
        capabilities: one ``(major, minor)`` per GPU; empty for a CPU-only machine.

    Returns:
        ``(policy, reason)``, the policy one of :data:`POLICIES`. The slowest GPU decides.
    """
    if not capabilities:
        return "float32", "no GPU: a CPU emulates half precision, which is slower"
    lowest = min(tuple(c) for c in capabilities)
    shown = f"{lowest[0]}.{lowest[1]}"
    if lowest >= MIN_BFLOAT16_CAPABILITY:
        return "mixed_bfloat16", (f"compute capability {shown} >= 8.0 runs bfloat16 on tensor "
                                  "cores, and bfloat16 needs no loss scaling")
    if lowest >= MIN_TENSOR_CORE_CAPABILITY:
        return "mixed_float16", (f"compute capability {shown} (Volta/Turing) has float16 "
                                 "tensor cores but no fast bfloat16; Keras scales the loss")
    return "float32", f"compute capability {shown} < 7.0 has no tensor cores"


def rehearsal_policy(flag=None) -> str | None:
    """The policy a GPU rehearsal uses, or None when there is none.

    Args:
        flag: ``setup``'s ``rehearse`` argument; None reads ``COURSE_REHEARSE_GPU``.

    Raises:
        ValueError: for a value that is neither on, off, nor a half-precision policy.
    """
    if flag is None:
        raw = os.environ.get(REHEARSE_VAR, "").strip().lower()
        where = f"{REHEARSE_VAR}={os.environ.get(REHEARSE_VAR)!r}"
    elif isinstance(flag, bool):
        raw, where = ("1" if flag else "0"), f"rehearse={flag!r}"
    else:
        raw, where = str(flag).strip().lower(), f"rehearse={flag!r}"
    if raw in _OFF:
        return None
    if raw in _REHEARSALS:
        return _REHEARSALS[raw]
    raise ValueError(f"{where} is not understood: use 1 (mixed_float16), bfloat16 "
                     "(mixed_bfloat16) or 0 (no rehearsal).")


@dataclass
class Runtime:
    """What :func:`setup` decided. ``strategy`` is a ``tf.distribute.Strategy``."""

    seed: int | None
    size: str
    gpus: list[str]
    strategy: object
    mixed_precision: bool
    xla: bool
    deterministic: bool
    mixed_precision_pays_off: bool
    devices: list[str] = field(default_factory=list)
    policy: str = "float32"
    precision_reason: str = ""
    rehearsal: bool = False

    @property
    def quick(self) -> bool:
        """True at the smoke size (the tests' size)."""
        return self.size == "smoke"

    @property
    def data_on_device(self) -> bool:
        """Whether :func:`utils.training.fit` keeps the data on the device by default."""
        return bool(self.gpus) or self.rehearsal

    @property
    def num_replicas(self) -> int:
        """How many devices share each batch (1 without a mirrored strategy)."""
        return int(self.strategy.num_replicas_in_sync)

    def scope(self):
        """Context in which to build and compile models so the strategy owns their variables."""
        return self.strategy.scope()

    def report(self) -> str:
        """A few lines a student can read: seed, accelerator, strategy, precision, mode."""
        if self.gpus:
            accel = f"{len(self.gpus)} GPU(s): {', '.join(self.gpus)}"
            pays = "pays off" if self.mixed_precision_pays_off else "does not pay off"
            accel += f" -- mixed precision {pays} on this GPU"
        elif self.rehearsal:
            accel = (f"none; rehearsing the GPU configuration on the CPU ({REHEARSE_VAR}): "
                     f"{self.policy}, XLA and data on the device, slowly")
        else:
            accel = "none, running on the CPU -- mixed precision would not pay off here"
        name = type(self.strategy).__name__
        strategy = (
            f"{name} over {self.num_replicas} devices ({', '.join(self.devices)})"
            if self.num_replicas > 1
            else "default (one device)"
        )
        on = {True: "on", False: "off"}
        seed = "not set" if self.seed is None else f"{self.seed} (Python, NumPy, TensorFlow)"
        return "\n".join(
            [
                f"Seed: {seed}; deterministic ops: {on[self.deterministic]}",
                f"Accelerator: {accel}",
                f"Strategy: {strategy}; mixed precision: {on[self.mixed_precision]}; "
                f"XLA: {on[self.xla]}",
                f"Precision: {self.policy} ({self.precision_reason})",
                quick.reason(),
            ]
        )


def _gpu_details(tf) -> tuple[list[str], list[tuple[int, int]]]:
    """The GPUs' names and compute capabilities."""
    names, capabilities = [], []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    return names, capabilities


def _split_cpu(tf, count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError as err:
        raise RuntimeError(
            f"logical_cpus={count} must be set before TensorFlow runs its first operation; "
            "restart the kernel (or process) and call runtime.setup() first."
        ) from err


def _resolve(flag, default: bool, what: str) -> bool:
    if flag == "auto":
        return default
    if isinstance(flag, bool):
        return flag
    raise ValueError(f"{what}={flag!r} should be 'auto', True or False.")


def _policy(mixed_precision, chosen: str, why: str, gpus: list, rehearsed: str | None):
    """The policy and its reason from ``setup``'s ``mixed_precision`` argument."""
    if rehearsed is not None and mixed_precision in ("auto", True):
        return rehearsed, f"rehearsing the GPU configuration ({REHEARSE_VAR})"
    if mixed_precision == "auto":
        return chosen, why
    if mixed_precision is False:
        return "float32", "mixed_precision=False"
    if mixed_precision is True:
        policy = chosen if chosen != "float32" else "mixed_float16"
    elif mixed_precision in POLICIES:
        policy = mixed_precision
    else:
        raise ValueError(f"mixed_precision={mixed_precision!r} should be 'auto', True, False "
                         f"or one of {', '.join(POLICIES)}.")
    if policy != "float32" and not gpus and rehearsed is None:
        raise ValueError(
            f"mixed_precision={mixed_precision!r} needs a GPU; on a CPU half precision is "
            f"emulated and slow. To rehearse the GPU configuration on the CPU anyway, set "
            f"{REHEARSE_VAR}=1 or call setup(rehearse=True).")
    return policy, f"mixed_precision={mixed_precision!r}"


def setup(
    seed: int | None = 0,
    *,
    mixed_precision: bool | str = "auto",
    xla: bool | str = "auto",
    logical_cpus: int | None = None,
    rehearse: bool | str | None = None,
    verbose: bool = True,
) -> Runtime:
    """Seed everything, inspect the accelerator and choose strategy and precision.

    Args:
        seed: seed for Python, NumPy and TensorFlow; None leaves them unseeded.
        mixed_precision: "auto" (:func:`choose_precision`), True (the GPU's half-precision
            policy), False (float32), or a policy name from :data:`POLICIES`.
        xla: "auto" (on with a GPU or in a rehearsal), True or False.
        rehearse: rehearse the GPU configuration on the CPU: True (``mixed_float16``),
            ``"bfloat16"`` or False; None (default) reads ``COURSE_REHEARSE_GPU``.
        logical_cpus: split the CPU into this many logical devices (tests); only
            before TensorFlow's first operation.
        verbose: print :meth:`Runtime.report`.

    Returns:
        The :class:`Runtime`, also kept for :func:`current`.
    """
    import keras
    import tensorflow as tf

    if logical_cpus is not None:
        if not isinstance(logical_cpus, int) or logical_cpus < 1:
            raise ValueError(f"logical_cpus={logical_cpus!r} should be a positive integer.")
        _split_cpu(tf, logical_cpus)
    gpus, capabilities = _gpu_details(tf)
    rehearsed = None if gpus else rehearsal_policy(rehearse)
    chosen, why = choose_precision(capabilities)
    policy, why = _policy(mixed_precision, chosen, why, gpus, rehearsed)
    use_xla = _resolve(xla, bool(gpus) or rehearsed is not None, "xla")
    keras.mixed_precision.set_global_policy(policy)
    # Notebooks that train several models make TensorFlow warn about "retracing" into their
    # outputs; that is expected here, so TensorFlow's Python warnings are hidden (errors stay).
    tf.get_logger().setLevel("ERROR")

    if seed is not None:
        keras.utils.set_random_seed(seed)
    # Keras turns XLA off when op determinism is on, so a rehearsal, like a GPU, goes without
    # (TensorFlow has no public way to turn it off again: rehearse in a fresh process).
    deterministic = not gpus and rehearsed is None
    if deterministic:
        tf.config.experimental.enable_op_determinism()

    if len(gpus) >= 2:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif not gpus and logical_cpus and logical_cpus >= 2:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        devices = [d.name for d in tf.config.list_logical_devices("GPU" if gpus else "CPU")][:1]
        strategy = tf.distribute.get_strategy()

    global _CURRENT
    _CURRENT = Runtime(
        seed=seed,
        size=quick.size(),
        gpus=gpus,
        strategy=strategy,
        mixed_precision=policy != "float32",
        xla=use_xla,
        deterministic=deterministic,
        mixed_precision_pays_off=chosen != "float32",
        devices=devices,
        policy=policy,
        precision_reason=why,
        rehearsal=rehearsed is not None,
    )
    if verbose:
        print(_CURRENT.report())
    return _CURRENT


def current() -> Runtime:
    """The runtime of the last :func:`setup`, or a quiet unseeded one if none was made."""
    if _CURRENT is None:
        return setup(seed=None, verbose=False)
    return _CURRENT
