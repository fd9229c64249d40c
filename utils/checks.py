"""Assertion helpers whose failures tell a student what was expected and what was found.

Each helper raises :class:`CheckError` (an ``AssertionError``) with a message
like ``"conv1 output shape: expected (None, 28, 28, 6), found (None, 32, 32, 6)"``
and returns quietly when the check passes. Bad *arguments* to a helper (as
opposed to a wrong answer) raise ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class CheckError(AssertionError):
    """A check failed; the message says what was expected and what was found."""


def _fail(what: str, expected, found, hint: str | None = None):
    message = f"{what}: expected {expected}, found {found}"
    raise CheckError(message + (f". {hint}" if hint else ""))


def _shape(shape) -> tuple:
    return tuple(None if d is None else int(d) for d in shape)


def assert_shape(actual, expected, what: str = "shape") -> None:
    """``actual`` (array, tensor or shape tuple) has shape ``expected``; None matches any size."""
    found = _shape(actual if isinstance(actual, (tuple, list)) else np.shape(actual))
    expected = _shape(expected)
    if len(found) != len(expected) or any(
        e is not None and f != e for f, e in zip(found, expected, strict=False)
    ):
        _fail(what, expected, found)


def assert_equal(actual, expected, what: str) -> None:
    """``actual == expected`` for numbers, strings or tuples."""
    if actual != expected:
        _fail(what, repr(expected), repr(actual))


def assert_close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Arrays or numbers agree within ``|a - e| <= atol + rtol * |e|`` elementwise."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        _fail(f"{what} (shape)", expected.shape, actual.shape)
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        # Point at the entry furthest outside its tolerance (NaN counts as furthest).
        excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
        excess = np.where(np.isnan(excess), np.inf, excess)
        worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.ndim else ()
        _fail(
            what,
            f"{float(expected[worst]):.6g} (within rtol={rtol:g}, atol={atol:g})",
            f"{float(actual[worst]):.6g} at index {tuple(int(i) for i in worst)}",
        )


def assert_param_count(model, expected: int, what: str | None = None) -> None:
    """The model (or layer) has exactly ``expected`` parameters, trainable or not."""
    found = int(model.count_params())
    if found != expected:
        diff = found - expected
        _fail(
            what or f"{model.name} parameter count",
            f"{expected:,}",
            f"{found:,}",
            f"That is {abs(diff):,} {'too many' if diff > 0 else 'too few'}; "
            "check filter counts, kernel sizes and use_bias.",
        )


def assert_layer_shapes(model, expected: Mapping[str, tuple]) -> None:
    """Each named layer's output shape (batch axis excluded) equals ``expected[name]``.

    Args:
        model: a built ``keras.Model``.
        expected: ``{"conv1": (28, 28, 6), ...}``.
    """
    names = [layer.name for layer in model.layers]
    for name, shape in expected.items():
        if name not in names:
            _fail(
                f"layer {name!r} in {model.name}",
                "a layer with that name",
                f"only {names}",
                "Name your layers as the exercise asks.",
            )
        found = _shape(model.get_layer(name).output.shape[1:])
        if found != _shape(shape):
            _fail(f"{name} output shape", _shape(shape), found)


def assert_accuracy(accuracy: float, minimum: float, dataset: str) -> None:
    """Test accuracy reaches ``minimum`` on ``dataset`` (the data actually used).

    A NaN accuracy fails, except in a dry run (:func:`utils.training.dry_run`), which trains
    nothing and so has no accuracy to check."""
    from utils import training

    if not 0.0 <= minimum <= 1.0:
        raise ValueError(f"minimum={minimum!r} should be a fraction in [0, 1].")
    if training.dry_run():
        return
    if not accuracy >= minimum:  # NaN fails too
        _fail(
            f"test accuracy on {dataset}",
            f">= {minimum:.4f}",
            f"{accuracy:.4f}",
            "Train longer, or check the model for a bug.",
        )


def _weighted_layers(model) -> dict:
    """``{name: layer}`` of the model's top-level layers that hold variables."""
    return {layer.name: layer for layer in model.layers if layer.variables}


def transplant(source, target) -> None:
    """Copy every variable of ``source``'s layers into the layer of ``target`` of the same name.

    Weights, batch-normalisation statistics and the states of random layers (dropout,
    augmentation) are all copied, so afterwards the two models compute the same function,
    in inference and in training mode, exactly when they are built the same way.

    Raises:
        CheckError: a layer with variables is missing from ``target``, is extra in it, or
            holds variables of other shapes.
    """
    wanted, found = _weighted_layers(source), _weighted_layers(target)
    for name, layer in wanted.items():
        if name not in found:
            _fail(f"a layer named {name!r} with weights in {target.name}", "one",
                  f"only {sorted(found)}", "Name your layers as the docstring says.")
        expected = [tuple(v.shape) for v in layer.variables]
        shapes = [tuple(v.shape) for v in found[name].variables]
        if shapes != expected:
            _fail(f"variable shapes of layer {name!r}", expected, shapes)
        for to, value in zip(found[name].variables, layer.variables, strict=True):
            to.assign(value)
    extra = sorted(set(found) - set(wanted))
    if extra:
        _fail(f"layers with weights in {target.name}", sorted(wanted), sorted(found),
              f"{extra} should not be there")


def block_model(block, input_shape, **kwargs):
    """A model around one block function, to compare blocks with :func:`assert_same_function`.

    Args:
        block: a function from a tensor (B, *input_shape) to a tensor, e.g. a residual block.
        input_shape: the shape of one input, without the batch axis.
        **kwargs: passed to ``block`` after the input tensor.

    Returns:
        keras.Model from (B, *input_shape) to the block's output.
    """
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    return keras.Model(inputs, block(inputs, **kwargs))


def assert_can_learn_like(model, reference, what: str) -> None:
    """Before any training, ``model``'s layers can learn as ``reference``'s can.

    A copy of the reference's weights hides what only training shows, so this is checked
    first, on the freshly built models: each layer with weights is trainable exactly when
    the reference's is, and no weight the reference initialises at random starts constant
    (all zeros, say) or at a scale ten times off.
    """
    found = _weighted_layers(model)
    for name, layer in _weighted_layers(reference).items():
        if name not in found:
            continue  # transplant names the missing layer
        assert_equal(found[name].trainable, layer.trainable, f"{what}: layer {name!r} trainable")
        for ours, theirs in zip(found[name].weights, layer.weights, strict=False):
            spread = float(np.std(np.asarray(theirs, dtype=np.float64)))
            if spread == 0 or tuple(ours.shape) != tuple(theirs.shape):
                continue
            own = float(np.std(np.asarray(ours, dtype=np.float64)))
            if not spread / 10 <= own <= spread * 10:
                _fail(f"{what}: spread (standard deviation) of the initial {ours.path}",
                      f"about {spread:.3g}", f"{own:.3g}",
                      "Weights that start constant, or far too small or large, cannot learn "
                      "well: check the layer's initializer.")


def assert_learns(build, train, test, minimum: float, what: str, *, epochs: int = 1,
                  batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0) -> None:
    """A freshly built model, trained briefly, reaches ``minimum`` test accuracy.

    A copy of the reference's weights (:func:`assert_same_function`) shows what a model
    computes, not whether training can find those weights: batch normalisation whose moving
    statistics never update, a regulariser that holds the weights at 0 or a constraint that
    pins them leave a fresh model's outputs and its parameter count as they should be. This
    trains ``build()`` with the course's training path (Adam, ``epochs`` passes) and
    evaluates it. Like every training cell of the course it first seeds Keras' global
    generators (``keras.utils.set_random_seed(seed)``), so two calls give the same result. A
    dry run (``COURSE_DRY_RUN``) trains nothing, so it checks nothing. :func:`learning_sample`
    gives a small task at any image size.

    Args:
        build: a zero-argument function returning a ``keras.Model`` whose output is class
            probabilities.
        train: ``(x (N, H, W, C), y (N,))``, the training images and integer labels.
        test: ``(x_test, y_test)``, the same for the held-out images.
        minimum: the test accuracy to reach, a fraction in [0, 1].
        what: how the failure message names the model.
    """
    import keras

    from utils import training

    if not 0.0 <= minimum <= 1.0:
        raise ValueError(f"minimum={minimum!r} should be a fraction in [0, 1].")
    if training.dry_run():
        return
    keras.utils.set_random_seed(seed)
    history = training.fit(build, *train, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, verbose=0)
    accuracy = training.evaluate(history.model, *test)["accuracy"]
    if not accuracy >= minimum:  # NaN fails too
        _fail(f"{what}: test accuracy after {epochs} epoch(s) on {len(train[0]):,} images",
              f">= {minimum:.3f}", f"{accuracy:.3f}",
              "The model does not learn: look for a regulariser, a constraint, a "
              "batch-normalisation setting, a frozen layer or an initialiser that the "
              "docstring does not ask for.")


def learning_sample(size, train_size: int = 2048, test_size: int = 1024):
    """A small Fashion-MNIST task for :func:`assert_learns`, at the image size a builder wants.

    Args:
        size: ``(H, W)`` of the images (grey, one channel).
        train_size, test_size: images in each part (the first of the training and test sets).

    Returns:
        ``((x_train (train_size, H, W, 1), y_train), (x_test (test_size, H, W, 1), y_test))``.
    """
    from utils import data, images

    fashion = data.load("fashion_mnist", train_size=train_size, test_size=test_size,
                        verbose=False)
    fashion = images.adapt(fashion, size=tuple(size), channels=1)
    return (fashion.x_train, fashion.y_train), (fashion.x_test, fashion.y_test)


def assert_same_function(model, reference, inputs, what: str, *, training: bool = True,
                         rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """``model`` computes the function ``reference`` computes, given the same weights.

    Copies ``reference``'s variables into ``model`` by layer name (:func:`transplant`), then
    compares the two models' outputs on ``inputs``: in inference mode, and, if ``training``,
    in training mode (dropout and augmentation draw the same random numbers, batch
    normalisation uses the batch's statistics). This catches what shapes and parameter counts
    cannot: a missing or extra activation, batch normalisation and ReLU in the other order,
    another pooling, dropout in another place, a wrong output layer. First, on the fresh
    models, :func:`assert_can_learn_like`: frozen layers and constant initial weights.

    Args:
        model: the model to check (its weights are overwritten).
        reference: a model built the right way, with the same arguments.
        inputs: an array (B, ...) the models accept.
        what: how the failure message names the model.
    """
    import keras

    assert_can_learn_like(model, reference, what)
    transplant(reference, model)
    for mode in (False, True) if training else (False,):
        # A model with several outputs (a list or a dict) is compared output by output.
        expected = keras.tree.flatten(reference(inputs, training=mode))
        found = keras.tree.flatten(model(inputs, training=mode))
        phase = "training" if mode else "inference"
        assert_equal(len(found), len(expected), f"{what}: number of outputs")
        for number, (ours, theirs) in enumerate(zip(found, expected, strict=True), start=1):
            which = f" (output {number} of {len(found)})" if len(found) > 1 else ""
            assert_close(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64),
                         f"{what}, outputs{which} in {phase} mode with the reference's weights",
                         rtol=rtol, atol=atol)


def assert_float32_output(build, hidden: str, what: str) -> None:
    """Built under the ``mixed_float16`` policy, layer ``hidden`` computes in float16 and the
    model's output is float32, as mixed-precision training on a GPU needs.

    Under the default float32 policy every layer is float32 anyway, so the check builds the
    model under ``mixed_float16`` (then restores the policy) to be able to fail.

    Args:
        build: a zero-argument function returning the ``keras.Model``.
        hidden: the name of a layer that should follow the policy (a convolution, say).
        what: how the failure message names the model.
    """
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build()
    finally:
        keras.mixed_precision.set_global_policy(before)
    assert_equal(str(model.get_layer(hidden).compute_dtype), "float16",
                 f"{what}: {hidden}'s compute dtype under mixed_float16 (leave it to the policy)")
    for output in model.outputs:
        assert_equal(str(output.dtype), "float32", f"{what}: output dtype under mixed_float16 "
                     "(give the output layer dtype='float32')")
