"""Keras models across the bridge (:mod:`utils.labs.bridge`): Keras' own layers only.

A student's builder (``lenet5()``, say) returns a ``keras.Model``; a test judged in the grader
needs that model in the grader's process. It crosses as plain data, a tagged record
``{"$": "model", "config": text, "variables": [arrays], "policy": name}``:

- ``config``: the model's JSON configuration (``model.to_json()``);
- ``variables``: the values of ``model.variables`` (weights, batch-normalisation statistics
  and the states of random layers), each an ``np.ndarray``, counted against the bridge's
  byte limits like any array;
- ``policy``: the name of the global dtype policy the model was built under.

Only a model built with ``keras.Model(inputs, outputs)`` or ``keras.Sequential`` crosses,
never a subclass of ``keras.Model``. The grader rebuilds it from its configuration
(:func:`rebuild`) only after walking the whole configuration (:func:`checked_config`): every
serialized object must name one of Keras' own public classes (a layer of ``keras.layers``, an
initializer, a regularizer, a constraint, a dtype policy) or an activation of
``keras.activations``; a custom class or function, a ``Lambda`` layer (Python code), a layer
that reads files (``StringLookup``, ``IntegerLookup``, ``TextVectorization``), a wrapper of
another framework's code (``TFSMLayer``, ``JaxLayer``, ...) or serialized Python values (bytes,
tensors, lambdas) are refused with :class:`utils.labs.bridge.BridgeError`. A compile
configuration is dropped: the rebuilt model is not compiled. It is built in a stateless scope
(its variables have shapes but no memory yet), in a thread of its own (so a refused model's
variables are left behind with that thread), so a configuration that declares enormous
layers is refused before their memory is taken: the variables sent must match the rebuilt
model's one for one, in number, shape and dtype; then they are allocated and assigned.

The grader calls a student's function under its own global dtype policy: the request names
it and the kernel sets it for the call (:func:`global_policy`), so that a test that builds a
model under ``mixed_float16`` (``checks.assert_float32_output``) gets one built so.

This module imports Keras only when it meets a model or a policy other than float32.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import threading

import numpy as np

from utils.labs.bridge import BridgeError

TAG = "model"
FIELDS = frozenset({"config", "variables", "policy"})
POLICIES = frozenset(
    {"float32", "float64", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16"}
)
MAX_CONFIG_DEPTH = 64  # nesting of a configuration's dicts and lists (LeNet-5's is under 12)
# The public modules a serialized object may name, and what each may provide.
_MODULES = ("keras", "keras.layers", "keras.initializers", "keras.regularizers",
            "keras.constraints", "keras.activations", "keras.dtype_policies")
_FUNCTION_MODULES = ("keras.activations",)  # a function in a configuration: an activation
_FUNCTIONAL = ("keras.src.models.functional", "Functional")  # not exported: named by its module
_VALUES = frozenset({"__keras_tensor__", "__tuple__", "__ellipsis__", "__slice__"})
_REFUSED = {  # layers of keras.layers that do not cross, and why
    "Lambda": "a Lambda layer runs Python code",
    "StringLookup": "a StringLookup layer may read a vocabulary file",
    "IntegerLookup": "an IntegerLookup layer may read a vocabulary file",
    "TextVectorization": "a TextVectorization layer may read a vocabulary file",
}
_RULE = "only models of Keras' own layers cross (keras.Model(inputs, outputs), keras.Sequential)"


def _model_classes(keras) -> tuple:
    """The exact classes of the models that cross: Sequential, and the functional model's."""
    functional = getattr(sys.modules.get("keras.src.models.functional"), "Functional", None)
    return tuple(kind for kind in (keras.Sequential, functional) if kind is not None)


def is_model(value) -> bool:
    """``value`` is a functional or Sequential Keras model, not of a subclass."""
    keras = sys.modules.get("keras")
    return keras is not None and type(value) in _model_classes(keras)


def is_keras_object(value) -> bool:
    """``value`` is a Keras layer or model of any class (for a refusal's message)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.layers.Layer)


def current_policy() -> str | None:
    """The name of this thread's global dtype policy, or None where Keras is not imported."""
    keras = sys.modules.get("keras")
    return None if keras is None else keras.mixed_precision.global_policy().name


@contextlib.contextmanager
def global_policy(name: str | None):
    """Keras' global dtype policy set to ``name`` inside the block, restored after it.

    None, or "float32" where Keras is not imported yet (its default), changes nothing.

    Raises:
        BridgeError: ``name`` is not one of :data:`POLICIES`.
    """
    if name is None or (name == "float32" and "keras" not in sys.modules):
        yield
        return
    if name not in POLICIES:
        raise BridgeError(f"malformed data: the dtype policy {str(name)[:40]!r}")
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def _layer_name(value: dict) -> str | None:
    """The name of a serialized layer (its configuration has a name and trainable)."""
    inner = value.get("config")
    if not isinstance(inner, dict) or "trainable" not in inner:
        return None
    name = inner.get("name")
    return name if type(name) is str else None


def _check_object(value: dict, where: str) -> None:
    """Refuse a serialized object (a dict with ``class_name``) that is not Keras' own."""
    import keras

    class_name, module = value.get("class_name"), value.get("module")
    if type(class_name) is not str:
        raise BridgeError(f"{where}: an object whose class_name is not text")
    if class_name in _VALUES:
        return
    if class_name.startswith("__"):
        raise BridgeError(f"{where}: a serialized Python value ({class_name}); {_RULE}")
    if (module, class_name) == _FUNCTIONAL:
        if value.get("registered_name") not in (None, class_name):
            raise BridgeError(f"{where}: a functional model registered under another name")
        return
    if module not in _MODULES:
        raise BridgeError(
            f"{where} is of class {class_name!r} from module {str(module)[:80]!r}, not one of "
            f"Keras' own classes: a custom class or function does not cross; {_RULE}"
        )
    symbol = value.get("config") if class_name == "function" else class_name
    if type(symbol) is not str or not symbol.isidentifier():
        raise BridgeError(f"{where}: a function named {str(symbol)[:40]!r}")
    if value.get("registered_name") not in (None, symbol):
        raise BridgeError(f"{where}: the registered name {str(value['registered_name'])[:80]!r} "
                          f"(a custom object's) for {symbol!r}; {_RULE}")
    found = getattr(importlib.import_module(module), symbol, None)
    if class_name == "function":
        if module not in _FUNCTION_MODULES or not callable(found):
            raise BridgeError(f"{where}: the function {module}.{symbol}; only the activations "
                              "of keras.activations cross")
        return
    kinds = (keras.layers.Layer, keras.initializers.Initializer, keras.regularizers.Regularizer,
             keras.constraints.Constraint, keras.DTypePolicy)
    if (not isinstance(found, type) or not found.__module__.startswith("keras.src.")
            or not issubclass(found, kinds)):
        raise BridgeError(f"{where}: {module}.{class_name} is not one of Keras' own layers, "
                          f"initializers, regularizers, constraints or dtype policies; {_RULE}")
    if issubclass(found, keras.layers.Layer):
        if class_name in _REFUSED:
            raise BridgeError(f"{where}: {_REFUSED[class_name]} and does not cross; {_RULE}")
        own_layer = found.__module__.startswith("keras.src.layers.")
        if not own_layer and found not in _model_classes(keras):
            raise BridgeError(f"{where}: {module}.{class_name} is not a layer of keras.layers "
                              f"(it wraps other code); {_RULE}")


def checked_config(config, where: str = "the model", depth: int = 0):
    """A copy of a model's configuration (parsed JSON) without compile configurations.

    Raises:
        BridgeError: an object in it that is not one of Keras' own (see the module's doc), or
            nesting deeper than :data:`MAX_CONFIG_DEPTH`.
    """
    if depth > MAX_CONFIG_DEPTH:
        raise BridgeError(f"{where}: a configuration nested more than {MAX_CONFIG_DEPTH} deep")
    if isinstance(config, list):
        return [checked_config(item, where, depth + 1) for item in config]
    if not isinstance(config, dict):
        return config
    if "class_name" in config:
        name = _layer_name(config)
        where = f"{where}, layer {name!r}" if name else where
        _check_object(config, where)
    return {key: checked_config(item, where, depth + 1)
            for key, item in config.items() if key != "compile_config"}


def encode(model, encode_value, where: str) -> dict:
    """The record of ``model`` (see the module's doc); ``encode_value(value, where)`` encodes
    its parts, counting their size.

    Raises:
        BridgeError: the model cannot be written, or holds what does not cross.
    """
    import keras

    try:
        text = model.to_json()
    except Exception as error:  # a layer whose get_config fails
        raise BridgeError(f"{where}: a Keras model whose configuration cannot be written "
                          f"({type(error).__name__}: {str(error)[:300]})") from None
    checked_config(json.loads(text), f"{where}: the model")
    variables = [encode_value(np.asarray(variable.numpy()), f"{where}: variable {variable.path}")
                 for variable in model.variables]
    return {"$": TAG, "config": encode_value(text, where), "variables": variables,
            "policy": keras.mixed_precision.global_policy().name}


def rebuild(text: str, values: list, policy: str):
    """The model a record describes, rebuilt in this process from Keras' own classes.

    Args:
        text: the model's JSON configuration.
        values: the values of its variables, ``np.ndarray`` each, in ``model.variables``
            order.
        policy: the global dtype policy it was built under (one of :data:`POLICIES`).

    Returns:
        A functional or Sequential ``keras.Model``, not compiled.

    Raises:
        BridgeError: the configuration names what is not Keras' own, does not rebuild, or its
            variables do not match ``values`` in number, shape or dtype.
    """
    if type(policy) is not str or policy not in POLICIES:
        raise BridgeError(f"malformed data: a model built under the policy {str(policy)[:40]!r}")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError):
        raise BridgeError("malformed data: a model configuration that is not JSON") from None
    config = checked_config(config, "a Keras model")
    return _in_own_thread(_rebuilt, config, values, policy)


def _rebuilt(config: dict, values: list, policy: str):
    """:func:`rebuild`'s work, for a checked configuration, in a thread of its own.

    Keras keeps the variables that a stateless scope created and did not initialize in
    per-thread state, and initializes them when the next stateless scope of that thread
    closes. In a thread of its own, a refused model's variables are dropped with the thread."""
    import keras

    # In a stateless scope the variables get their shapes but no memory: a configuration
    # that asks for enormous layers is refused below before anything is allocated.
    with global_policy(policy), keras.StatelessScope(initialize_variables=False):
        model = _deserialized(config)
        _check_variables(model, values)
    with keras.StatelessScope():  # leaving it initializes the variables, then they are set
        pass
    for variable, value in zip(model.variables, values, strict=True):
        variable.assign(value)
    return model


def _in_own_thread(function, *args):
    """``function(*args)`` run in a new thread; its result, or its exception raised here."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # raised again in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name="bridge-rebuild", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _deserialized(config: dict):
    """The model a checked configuration describes (Keras' safe mode: no Python code)."""
    import keras

    try:
        model = keras.saving.deserialize_keras_object(config, custom_objects=None,
                                                      safe_mode=True)
    except Exception as error:
        raise BridgeError(f"a Keras model that does not rebuild from its configuration "
                          f"({type(error).__name__}: {str(error)[:300]})") from None
    if not is_model(model):
        raise BridgeError(f"a configuration of a {type(model).__name__}, not of a model; {_RULE}")
    return model


def _check_variables(model, values: list) -> None:
    """Refuse ``values`` unless they match ``model.variables`` in number, shape and dtype."""
    variables = model.variables
    if len(variables) != len(values):
        raise BridgeError(f"a Keras model sent with {len(values)} variables where its "
                          f"configuration has {len(variables)}")
    for variable, value in zip(variables, values, strict=True):
        shape, dtype = tuple(variable.shape), str(variable.dtype)
        if value.shape != shape or value.dtype.name != dtype:
            raise BridgeError(
                f"a Keras model whose variable {variable.path} ({dtype}, shape {shape}) was "
                f"sent as {value.dtype.name} of shape {value.shape}"
            )
