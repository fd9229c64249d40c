"""The one training path: every notebook trains through :func:`fit`.

``fit`` wraps ``model.fit``: it builds the ``tf.data`` pipelines
(:mod:`utils.pipeline`), compiles with the runtime's choices (XLA on a GPU,
several steps per call to cut Python overhead), shows Keras' progress bar and
returns the ``keras.callbacks.History``. Pass a *builder* (a function that
returns a new model) so that the model is created inside the distribution
strategy's scope; ``history.model`` is the trained model.

**The compute ledger.** Every ``fit`` call appends the model's name, multiply-adds per image,
images, epochs, FLOP and seconds to :func:`ledger`; :func:`compute_report` prints the total.
**The dry run** (``COURSE_DRY_RUN=1``, used by ``benchmarks.compute``, or the block
:func:`dry_running`, used by the grader's trusted build of a solution): ``fit`` builds, compiles
and records but trains nothing; :func:`evaluate` and :func:`predict` return NaN metrics and
uniform probabilities without running the model.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
import time
from collections.abc import Sequence

import numpy as np

from utils import pipeline
from utils import runtime as runtime_lib
from utils.ledger import FLOP_PER_MULT_ADD, compute_report, ledger, record, reset_ledger

__all__ = ["fit", "evaluate", "predict", "report", "dry_run", "dry_running", "ledger",
           "reset_ledger", "compute_report", "FLOP_PER_MULT_ADD"]

STEPS_PER_EXECUTION = 16  # batches per compiled call: removes most per-step Python overhead
DRY_RUN_VAR = "COURSE_DRY_RUN"  # "1": fit records its ledger entry but does not train
_DRY: contextvars.ContextVar[bool] = contextvars.ContextVar("course_dry_run", default=False)


def _compile(model, runtime, optimizer, loss, metrics, learning_rate):
    import keras

    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get(optimizer)
        if learning_rate is not None:
            optimizer.learning_rate = learning_rate
    elif runtime.num_replicas > 1 and isinstance(optimizer, keras.optimizers.Optimizer):
        # An optimizer belongs to the strategy it was made under (TensorFlow refuses to mix
        # them), and notebooks make theirs outside the scope: remake it here, inside.
        try:
            optimizer = type(optimizer).from_config(optimizer.get_config())
        except Exception as error:
            raise ValueError(
                f"could not remake {type(optimizer).__name__} inside the distribution "
                f"strategy's scope ({error}); pass optimizer=a string like 'adam', or make the "
                "optimizer inside `with runtime.scope():`") from error
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics),
        jit_compile=runtime.xla,
        # Keras 3's multi-step loop fails under MirroredStrategy ("You must feed a value for
        # placeholder tensor", keras-team/keras#19246), so mirrored runs take one step per call.
        steps_per_execution=STEPS_PER_EXECUTION if runtime.num_replicas == 1 else 1,
    )


def fit(
    model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 128,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    runtime=None,
    optimizer="adam",
    learning_rate: float | None = None,
    loss="sparse_categorical_crossentropy",
    metrics: Sequence = ("accuracy",),
    callbacks: Sequence = (),
    compile: bool = True,
    data_on_device: bool | None = None,
    verbose="auto",
):
    """Train ``model`` on images ``x`` ``(N, H, W, C)`` and labels ``y`` ``(N,)``.

    Args:
        model: a ``keras.Model`` or a zero-argument builder returning one (built
            inside ``runtime.scope()``; required for a mirrored strategy).
        x, y: training images (uint8 0..255 or float32 0..1) and integer labels.
        epochs: passes over the training data.
        batch_size: global batch size.
        validation_data: ``(x_val, y_val)``, evaluated after each epoch.
        runtime: from :func:`utils.runtime.setup`; default the current one.
        optimizer, learning_rate, loss, metrics: passed to ``model.compile``. An optimizer
            object (with a learning-rate schedule, say) is remade from its config inside a
            multi-device strategy's scope, so it may be created anywhere.
        callbacks: Keras callbacks.
        compile: False keeps a model's own compile settings.
        data_on_device: copy the images to the accelerator once and send only
            indices per step (:func:`utils.pipeline.on_device`); same batches,
            same result as the host pipeline. None (default): on exactly when the
            runtime has a GPU or rehearses one (``runtime.data_on_device``), so full
            runs keep the course's small datasets in device memory and CPU runs use the
            host pipeline.
        verbose: Keras' progress display ("auto", 0, 1 or 2).

    Returns:
        ``keras.callbacks.History`` with ``history.history[metric]`` per epoch,
        ``history.model`` the trained model, ``history.seconds`` the wall-clock time
        of training (all epochs, compilation and validation included) and
        ``history.images`` the training images processed, ``len(x) * epochs``. Under a
        dry run (``COURSE_DRY_RUN=1``) nothing is trained: the callbacks see every epoch
        with NaN logs, every metric is NaN per epoch and ``history.seconds`` is 0.
    """
    import keras

    runtime = runtime or runtime_lib.current()
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} should be a positive integer.")
    with runtime.scope():
        if not isinstance(model, keras.Model):
            if not callable(model):
                raise TypeError(f"model should be a keras.Model or a builder, got {type(model)}.")
            model = model()
            if not isinstance(model, keras.Model):
                raise TypeError(f"the builder should return a keras.Model, got {type(model)}.")
        if compile or model.optimizer is None:
            _compile(model, runtime, optimizer, loss, metrics, learning_rate)
    if dry_run():
        history = _dry_fit(model, y, epochs, validation_data is not None, callbacks)
        return record(history, model, len(x), epochs, seconds=0.0)
    if data_on_device is None:
        data_on_device = runtime.data_on_device
    if data_on_device:
        trained, train, validation = _on_device(model, runtime, x, y, validation_data, batch_size)
    else:
        trained = model
        train = pipeline.make(x, y, batch_size, training=True, seed=runtime.seed)
        validation = None
        if validation_data is not None:
            validation = pipeline.make(*validation_data, batch_size=batch_size)
    start = time.perf_counter()
    # shuffle=False: the pipeline already reshuffles every epoch (seeded).
    history = trained.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        shuffle=False,
        callbacks=list(callbacks),
        verbose=verbose,
    )
    seconds = time.perf_counter() - start  # tracing and compilation included
    history.set_model(model)  # the model itself, also when a device wrapper was trained
    return record(history, model, len(x), epochs, seconds)


def dry_run() -> bool:
    """True when ``COURSE_DRY_RUN`` is on, or inside :func:`dry_running`: :func:`fit` counts
    but does not train."""
    if _DRY.get():
        return True
    return os.environ.get(DRY_RUN_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def dry_running():
    """Within the block, this thread (and only it) runs dry, whatever the environment says:
    the grader builds a solution's namespace this way, where the tests need its definitions
    and data but not its trained models, while other threads train for real."""
    token = _DRY.set(True)
    try:
        yield
    finally:
        _DRY.reset(token)


def _metric_keys(model, y) -> list[str]:
    """The names ``model.evaluate`` returns for labels like ``y``, found without running it."""
    import keras

    try:
        labels = keras.KerasTensor((None, *np.shape(y)[1:]), dtype=str(np.asarray(y).dtype))
        outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
        y_true = keras.tree.map_structure(lambda _: labels, outputs)
        for compiled in (model._compile_loss, model._compile_metrics):
            if compiled is not None and not compiled.built:
                compiled.build(y_true, outputs)
        return list(model.get_metrics_result())
    except Exception:  # Keras internals vary: fall back on the loss and the metrics asked for
        return ["loss", *(getattr(m, "name", None) or getattr(m, "__name__", str(m))
                          for m in _metric_names(model))]


def _dry_fit(model, y, epochs: int, validated: bool, callbacks):
    """A ``History`` of ``epochs`` NaN epochs, the callbacks called as in training."""
    import keras

    keys = _metric_keys(model, y)
    keys += [f"val_{key}" for key in keys] if validated else []
    history = keras.callbacks.History()
    hooks = keras.callbacks.CallbackList([*callbacks, history], model=model, epochs=epochs,
                                         steps=0, verbose=0)
    hooks.on_train_begin()
    for epoch in range(epochs):
        hooks.on_epoch_begin(epoch)
        hooks.on_epoch_end(epoch, dict.fromkeys(keys, math.nan))
    hooks.on_train_end()
    return history


def _on_device(model, runtime, x, y, validation_data, batch_size):
    """The wrapper that reads images from device memory, and its index pipelines."""
    x = np.asarray(x)
    x_all = x if validation_data is None else np.concatenate([x, validation_data[0]])
    with runtime.scope():
        wrapper = pipeline.on_device(model, x_all)
        # Same optimizer object: the wrapper's trainable weights are the model's.
        wrapper.compile(
            optimizer=model.optimizer,
            loss=model.loss,
            metrics=_metric_names(model),
            jit_compile=model.jit_compile,
            steps_per_execution=model.steps_per_execution,
        )
    train = pipeline.make_indices(
        np.arange(len(x)), y, batch_size, training=True, seed=runtime.seed
    )
    validation = None
    if validation_data is not None:
        validation = pipeline.make_indices(
            np.arange(len(x), len(x_all)), validation_data[1], batch_size
        )
    return wrapper, train, validation


def _metric_names(model) -> list:
    compiled = getattr(model, "_compile_config", None)
    config = compiled.config if compiled is not None else {}
    return list(config.get("metrics") or [])


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> dict[str, float]:
    """Loss and metrics of a compiled ``model`` on ``(x (N, H, W, C), y (N,))``, as a dict.

    Under a dry run each value is NaN and the model is not run."""
    if dry_run():
        return dict.fromkeys(_metric_keys(model, y), math.nan)
    data = pipeline.make(x, y, batch_size)
    return {k: float(v) for k, v in model.evaluate(data, verbose=0, return_dict=True).items()}


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, num_classes)`` for images ``x`` ``(N, H, W, C)``.

    Under a dry run: uniform probabilities ``1 / num_classes``; the model is not run."""
    if dry_run():
        shape = (len(x), *model.output_shape[1:])
        return np.full(shape, 1.0 / shape[-1], dtype=np.float32)
    data = pipeline.make(x, np.zeros(len(x), dtype=np.int64), batch_size)
    return np.asarray(model.predict(data.map(lambda images, _: images), verbose=0))


RESULT_LINE = re.compile(
    r"^Result: (?P<model>\S+) on (?P<dataset>\w+): test accuracy (?P<accuracy>[\d.]+), "
    r"(?P<epochs>\d+) epochs? in (?P<seconds>[\d.]+) s$", re.MULTILINE)


def report(history, accuracy: float, dataset: str) -> str:
    """Print and return the one-line result of a lab's main model.

    ``Result: lenet5 on fashion_mnist: test accuracy 0.9102, 2 epochs in 12.3 s``, from the
    ``history`` that :func:`fit` returned, the measured test ``accuracy`` and the name of the
    data actually used. ``benchmarks.lab_results`` reads this line (:data:`RESULT_LINE`).
    """
    epochs = len(history.epoch)
    line = (f"Result: {history.model.name} on {dataset}: test accuracy {accuracy:.4f}, "
            f"{epochs} epoch{'s' if epochs != 1 else ''} in {history.seconds:.1f} s")
    print(line)
    return line
