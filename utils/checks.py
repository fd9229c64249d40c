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
    """Test accuracy reaches ``minimum`` on ``dataset`` (the data actually used)."""
    if not 0.0 <= minimum <= 1.0:
        raise ValueError(f"minimum={minimum!r} should be a fraction in [0, 1].")
    if accuracy < minimum:
        _fail(
            f"test accuracy on {dataset}",
            f">= {minimum:.4f}",
            f"{accuracy:.4f}",
            "Train longer, or check the model for a bug.",
        )
