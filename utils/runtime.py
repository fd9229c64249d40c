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
- turns on mixed precision (``mixed_float16``) and XLA only on a GPU where they
  help, never on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from utils import quick

_CURRENT: Runtime | None = None
MIN_TENSOR_CORE_CAPABILITY = (7, 0)  # Volta and newer run float16 matmuls on tensor cores


@dataclass
class Runtime:
    """What :func:`setup` decided. ``strategy`` is a ``tf.distribute.Strategy``."""

    seed: int | None
    quick: bool
    gpus: list[str]
    strategy: object
    mixed_precision: bool
    xla: bool
    deterministic: bool
    mixed_precision_pays_off: bool
    devices: list[str] = field(default_factory=list)

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
                quick.reason(),
            ]
        )


def _gpu_details(tf) -> tuple[list[str], bool]:
    names, pays = [], True
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
        capability = tuple(details.get("compute_capability", (0, 0)))
        pays = pays and capability >= MIN_TENSOR_CORE_CAPABILITY
    return names, bool(names) and pays


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


def setup(
    seed: int | None = 0,
    *,
    mixed_precision: bool | str = "auto",
    xla: bool | str = "auto",
    logical_cpus: int | None = None,
    verbose: bool = True,
) -> Runtime:
    """Seed everything, inspect the accelerator and choose strategy and precision.

    Args:
        seed: seed for Python, NumPy and TensorFlow; None leaves them unseeded.
        mixed_precision: "auto" (on only for GPUs with tensor cores), True or False.
        xla: "auto" (on only with a GPU), True or False.
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
    gpus, pays_off = _gpu_details(tf)
    use_mixed = _resolve(mixed_precision, pays_off, "mixed_precision")
    use_xla = _resolve(xla, bool(gpus), "xla")
    if use_mixed and not gpus:
        raise ValueError("mixed_precision=True needs a GPU; on a CPU float16 is emulated and slow.")
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    # Notebooks that train several models make TensorFlow warn about "retracing" into their
    # outputs; that is expected here, so TensorFlow's Python warnings are hidden (errors stay).
    tf.get_logger().setLevel("ERROR")

    if seed is not None:
        keras.utils.set_random_seed(seed)
    deterministic = not gpus
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
        quick=quick.is_quick(),
        gpus=gpus,
        strategy=strategy,
        mixed_precision=use_mixed,
        xla=use_xla,
        deterministic=deterministic,
        mixed_precision_pays_off=pays_off,
        devices=devices,
    )
    if verbose:
        print(_CURRENT.report())
    return _CURRENT


def current() -> Runtime:
    """The runtime of the last :func:`setup`, or a quiet unseeded one if none was made."""
    if _CURRENT is None:
        return setup(seed=None, verbose=False)
    return _CURRENT
