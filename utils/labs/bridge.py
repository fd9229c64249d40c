"""The narrow bridge between the grader and a student's kernel: plain data only.

For a lab judged by the grader (notebook metadata ``course.judge = "grader"``), the tests run
in the grader's process (:mod:`utils.labs.judge`); only the student's functions run in the
student's kernel. Each call crosses this bridge:

1. the grader encodes the arguments with :func:`encode` and runs one small cell in the
   kernel that calls :func:`serve`;
2. :func:`serve` decodes them, calls the student's function by name, and publishes one
   display output of type :data:`MIME`: the encoded return value, and the arguments after
   the call when the function changed them in place (or the exception the function raised);
3. the grader decodes that output with :func:`decode` and hands the value to the test.

What crosses, in either direction, is plain data (:func:`encode`): ``None``, ``bool``,
``int``, ``float`` (NaN and infinities included), ``complex``, ``str``, ``list``, ``tuple``,
``dict`` with ``str`` keys, and numeric or boolean NumPy arrays of exactly the class
``np.ndarray``; NumPy scalars become Python numbers. Everything else is refused with a
:class:`BridgeError` that says what was found: objects, subclasses (an ``int`` subclass, an
``ndarray`` subclass), object, string or structured dtypes, callables, data nested more than
:data:`MAX_DEPTH` deep, more than :data:`MAX_BYTES` in all or a string over
:data:`MAX_STRING` characters. The decoder builds only those exact types, so what a test
receives cannot run code when it is compared, printed or indexed.

Two exceptions. A function argument: a test may pass a function that its test cell defines
at the top level with ``def``; it crosses as its name and its source text, and is defined
again, in the kernel, in a private namespace (see :func:`serve`). And a return value that is
a Keras model built from Keras' own layers: it crosses as its configuration and the values of
its variables, and the grader rebuilds it after checking that configuration
(:mod:`utils.labs.bridge_models`). The grader's global dtype policy goes with each call.

This module runs on both sides; in the kernel it needs only the standard library and NumPy.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys

import numpy as np

MIME = "application/vnd.dlvision.bridge+json"
MAX_DEPTH = 20  # nesting of lists, tuples and dicts
MAX_BYTES = 64 << 20  # encoded size of one call's data
MAX_STRING = 1 << 20  # characters of one string
MAX_RESULT_BYTES = 3 << 20  # what the kernel sends back: under the grader's 4 MiB per message
MAX_TEXT = 2000  # characters of an exception's message sent back
MAX_INT_BITS = 4096  # a larger int is refused (it would not print or parse quickly)
_ARRAY_KINDS = "biufc"  # bool, signed and unsigned integers, floats, complex
_DTYPE = re.compile(r"[<>|=][biufc][0-9]{1,2}")
_SCALARS = frozenset(np.dtype(code).type for code in "?bBhHiIlLqQefdFD")
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_PLAIN = (
    "None, bool, int, float, complex, str, list, tuple, dict with str keys, "
    "and numeric NumPy arrays (np.ndarray itself, not a subclass)"
)


class BridgeError(ValueError):
    """Data the bridge refuses to carry, or a malformed message; the text says which."""


def _kind(value) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", kind.__name__)
    return name if module == "builtins" else f"{module}.{name}"


def _models():
    from utils.labs import bridge_models

    return bridge_models


class _Encoder:
    """One encoding: counts its size; ``functions(value)`` names a function argument;
    ``models`` lets a Keras model of Keras' own layers cross."""

    def __init__(self, limit: int, functions=None, models: bool = False):
        self.size, self.limit, self.functions, self.models = 0, limit, functions, models

    def _grow(self, amount: int, where: str) -> None:
        self.size += amount
        if self.size > self.limit:
            raise BridgeError(f"{where}: more than {self.limit:,} bytes of data")

    def __call__(self, value, where: str, depth: int = 0):
        if depth > MAX_DEPTH:
            raise BridgeError(f"{where}: data nested more than {MAX_DEPTH} deep")
        kind = type(value)
        self._grow(8, where)
        if value is None or kind is bool:
            return value
        if kind is int:
            if value.bit_length() > MAX_INT_BITS:
                raise BridgeError(f"{where}: an int of more than {MAX_INT_BITS} bits")
            return value
        if kind is float:
            if math.isfinite(value):
                return value
            return {"$": "float", "value": "nan" if math.isnan(value) else repr(value)}
        if kind is complex:
            return {"$": "complex", "re": self(value.real, where), "im": self(value.imag, where)}
        if kind is str:
            if len(value) > MAX_STRING:
                raise BridgeError(f"{where}: a string of more than {MAX_STRING:,} characters")
            self._grow(len(value), where)
            return value
        if kind in _SCALARS:
            return self(value.item(), where, depth)
        if kind is list:
            return [self(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        if kind is tuple:
            items = [self(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
            return {"$": "tuple", "items": items}
        if kind is dict:
            items = []
            for key, item in value.items():
                if type(key) is not str:
                    raise BridgeError(f"{where}: a dict key of type {_kind(key)} (only str keys)")
                items.append([self(key, where), self(item, f"{where}[{key!r}]", depth + 1)])
            return {"$": "dict", "items": items}
        if kind is np.ndarray:
            return self._array(value, where)
        if "keras" in sys.modules and _models().is_keras_object(value):
            if self.models and _models().is_model(value):
                return _models().encode(value, self, where)
            raise BridgeError(
                f"{where}: a Keras object of type {_kind(value)}; " + (
                    "only models built with keras.Model(inputs, outputs) or keras.Sequential "
                    "cross (not a layer, not a subclass of keras.Model)" if self.models
                    else "only a return value may be a model")
            )
        if callable(value) and self.functions is not None:
            return {"$": "function", "name": self.functions(value, where)}
        if kind is np.ndarray or isinstance(value, np.ndarray):
            raise BridgeError(f"{where}: a {_kind(value)}, a subclass of np.ndarray; "
                              "only np.ndarray itself crosses (np.asarray(x) gives one)")
        what = ("a function or other callable" if callable(value)
                else f"an object of type {_kind(value)}")
        raise BridgeError(f"{where}: {what}; only plain data crosses: {_PLAIN}")

    def _array(self, value: np.ndarray, where: str) -> dict:
        dtype = value.dtype
        if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.char in "gG":
            raise BridgeError(f"{where}: an array of dtype {dtype} (object, string, structured "
                              "and long double arrays do not cross; numbers and booleans do)")
        self._grow(value.nbytes * 4 // 3 + 64, where)
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"$": "ndarray", "dtype": dtype.str, "shape": list(value.shape), "data": data}


def encode(value, limit: int = MAX_BYTES, functions=None, where: str = "the value",
           models: bool = False):
    """``value`` as JSON-ready plain data (see the module's doc for what is allowed).

    Args:
        limit: the most bytes the encoded data may take.
        functions: ``functions(value, where) -> name`` for a callable that may cross by name
            (it raises :class:`BridgeError` for one that may not); None refuses every callable.
        where: how an error message names ``value``.
        models: whether a Keras model of Keras' own layers may cross (a return value).

    Raises:
        BridgeError: ``value`` holds something that is not plain data, or too much of it.
    """
    return _Encoder(limit, functions, models)(value, where)


class _Decoder:
    def __init__(self, limit: int, functions=None, models: bool = False):
        self.size, self.limit, self.functions, self.models = 0, limit, functions, models

    def _grow(self, amount: int) -> None:
        self.size += amount
        if self.size > self.limit:
            raise BridgeError(f"malformed data: more than {self.limit:,} bytes")

    def __call__(self, raw, depth: int = 0):
        if depth > MAX_DEPTH:
            raise BridgeError(f"malformed data: nested more than {MAX_DEPTH} deep")
        kind = type(raw)
        self._grow(8)
        if raw is None or kind is bool:
            return raw
        if kind is int:
            if raw.bit_length() > MAX_INT_BITS:
                raise BridgeError(f"malformed data: an int of more than {MAX_INT_BITS} bits")
            return raw
        if kind is float:
            if not math.isfinite(raw):
                raise BridgeError("malformed data: a bare NaN or infinity")
            return raw
        if kind is str:
            if len(raw) > MAX_STRING:
                raise BridgeError(f"malformed data: a string over {MAX_STRING:,} characters")
            self._grow(len(raw))
            return raw
        if kind is list:
            return [self(item, depth + 1) for item in raw]
        if kind is not dict:
            raise BridgeError(f"malformed data: a {_kind(raw)}")
        tag = raw.get("$")
        fields = {
            "float": {"value"}, "complex": {"re", "im"}, "tuple": {"items"}, "dict": {"items"},
            "ndarray": {"dtype", "shape", "data"}, "function": {"name"},
            "model": {"config", "variables", "policy"},
        }.get(tag) if type(tag) is str else None
        if fields is None or set(raw) != fields | {"$"}:
            raise BridgeError(f"malformed data: an object with keys {sorted(map(str, raw))[:8]}")
        if tag == "float":
            if raw["value"] not in _SPECIAL_FLOATS:
                raise BridgeError("malformed data: a special float that is not nan, inf or -inf")
            return _SPECIAL_FLOATS[raw["value"]]
        if tag == "complex":
            parts = [self(raw[key], depth + 1) for key in ("re", "im")]
            if not all(type(part) in (int, float) for part in parts):
                raise BridgeError("malformed data: a complex number whose parts are not numbers")
            return complex(*parts)
        if tag == "function":
            if self.functions is None or type(raw["name"]) is not str:
                raise BridgeError("malformed data: a function where none may be")
            return self.functions(raw["name"])
        if tag == "ndarray":
            return self._array(raw)
        if tag == "model":
            return self._model(raw, depth)
        items = raw["items"]
        if type(items) is not list:
            raise BridgeError(f"malformed data: the items of a {tag} are not a list")
        if tag == "tuple":
            return tuple(self(item, depth + 1) for item in items)
        result = {}
        for pair in items:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise BridgeError("malformed data: a dict item that is not [str key, value]")
            result[self(pair[0], depth + 1)] = self(pair[1], depth + 1)
        return result

    def _model(self, raw: dict, depth: int):
        """A Keras model rebuilt from its record, where models may be (the grader's side)."""
        if not self.models:
            raise BridgeError("malformed data: a Keras model where none may be")
        text, values, policy = (self(raw[key], depth + 1)
                                for key in ("config", "variables", "policy"))
        if (type(text) is not str or type(policy) is not str or type(values) is not list
                or not all(type(value) is np.ndarray for value in values)):
            raise BridgeError("malformed data: a model record that is not text, arrays, text")
        return _models().rebuild(text, values, policy)

    def _array(self, raw: dict) -> np.ndarray:
        dtype, shape, data = raw["dtype"], raw["shape"], raw["data"]
        if type(dtype) is not str or not _DTYPE.fullmatch(dtype):
            raise BridgeError(f"malformed data: array dtype {str(dtype)[:40]!r}")
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise BridgeError(f"malformed data: array dtype {raw['dtype']!r}") from None
        if dtype.kind not in _ARRAY_KINDS or dtype.char in "gG":
            raise BridgeError(f"malformed data: array dtype {dtype}")
        if (type(shape) is not list or len(shape) > 32
                or not all(type(n) is int and 0 <= n < 2**62 for n in shape)):
            raise BridgeError("malformed data: an array shape that is not a list of sizes")
        count = math.prod(shape)
        if count * dtype.itemsize > self.limit:
            raise BridgeError(f"malformed data: an array over {self.limit:,} bytes")
        if type(data) is not str:
            raise BridgeError("malformed data: array data that is not text")
        self._grow(len(data))
        try:
            buffer = base64.b64decode(data.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise BridgeError("malformed data: array data that is not base64") from None
        if len(buffer) != count * dtype.itemsize:
            raise BridgeError(f"malformed data: {len(buffer)} bytes for an array of shape "
                              f"{tuple(shape)} and dtype {dtype}")
        return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


def _no_constant(name):
    raise BridgeError(f"malformed data: a bare {name}")


def decode(text, limit: int = MAX_BYTES, functions=None):
    """The value that :func:`encode` encoded, from its JSON text.

    Returns only ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``list``,
    ``tuple``, ``dict`` and ``np.ndarray`` objects (writable copies), never a subclass.

    Args:
        functions: ``functions(name) -> function`` for function arguments (in the kernel);
            None refuses them.

    Raises:
        BridgeError: malformed or oversized text, or what it holds is not plain data.
    """
    if type(text) is not str:
        raise BridgeError(f"malformed data: a {_kind(text)}, not JSON text")
    if len(text) > limit:
        raise BridgeError(f"malformed data: more than {limit:,} characters")
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise BridgeError(f"malformed data: nested more than {MAX_DEPTH} deep") from None
    except ValueError as error:
        raise BridgeError(f"malformed data: not JSON ({str(error)[:200]})") from None
    return _Decoder(limit, functions)(raw)


def decode_parsed(raw, limit: int = MAX_BYTES, functions=None, models: bool = False):
    """:func:`decode` for data already parsed from JSON (by Jupyter, say); ``models``: a
    Keras model may be there, and is rebuilt (:func:`utils.labs.bridge_models.rebuild`)."""
    return _Decoder(limit, functions, models)(raw)


def dumps(value, limit: int = MAX_BYTES, functions=None, where: str = "the value") -> str:
    """``encode`` then JSON text (what :func:`decode` reads)."""
    text = json.dumps(encode(value, limit, functions, where), separators=(",", ":"),
                      allow_nan=False)
    if len(text) > limit:
        raise BridgeError(f"{where}: more than {limit:,} bytes of data")
    return text


# ---- the kernel's side ---------------------------------------------------------------------


def _where(error: BaseException) -> str:
    """' (raised in FUNC, line N)' for the innermost frame of a student's exception."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    if len(frames) < 2:  # raised by serve itself (the function is not defined, say)
        return ""
    return f" (raised in {frames[-1].name}, line {frames[-1].lineno})"


def _answer(response: dict, publish) -> None:
    publish({MIME: {"response": json.dumps(response, separators=(",", ":"), allow_nan=False)}},
            raw=True)


def serve(request: str, namespace: dict | None = None, publish=None) -> None:
    """Call a student's function for the grader and publish the result (in the kernel).

    ``request`` is JSON text: ``{"function": name, "call": text, "helpers": {name: source},
    "seconds": s, "policy": name}`` where ``text`` is ``(args, kwargs)`` encoded by
    :func:`dumps`. The function is looked up by name in ``namespace`` (default: the
    notebook's globals). Each function argument is defined from its source in a private copy
    of those globals, where ``np`` is NumPy. The call may take ``seconds``; it runs, and its
    result is encoded, under Keras' global dtype policy ``policy`` (None: as it is), restored
    afterwards. A Keras model of Keras' own layers may be returned.

    It publishes, as one display output of type :data:`MIME`, ``{"response": text}`` where
    ``text`` is JSON: ``{"status": "ok", "value": ..., "args": ...}`` (``args``, the arguments
    after the call, only when the call changed them), ``{"status": "raised", "type": name,
    "message": text, "where": text}``, ``{"status": "refused", "message": text}`` (the
    function returned what the bridge does not carry) or ``{"status": "timeout"}``.
    """
    from utils.labs.kernel import TestTimeout, _alarm

    if publish is None:
        from IPython.display import display as publish
    if namespace is None:
        namespace = vars(sys.modules["__main__"])
    outer = json.loads(request)
    name = outer["function"]
    private = {**namespace, "np": np, "__name__": "__grader_helpers__"}
    names = {}
    for helper, source in outer.get("helpers", {}).items():
        exec(compile(source, f"<the test's function {helper}>", "exec"), private)
        names[id(private[helper])] = helper

    def function_named(found: str):
        if found not in names.values():
            raise BridgeError(f"malformed data: no function {found!r} was sent")
        return private[found]

    def name_of(value, where):
        if id(value) not in names:
            raise BridgeError(f"{where}: a function or other callable")
        return names[id(value)]

    arguments = decode(outer["call"], functions=function_named)
    with _models().global_policy(outer.get("policy")):
        _call(namespace, name, arguments, outer, name_of, publish, (TestTimeout, _alarm))


def _call(namespace: dict, name: str, arguments: tuple, outer: dict, name_of, publish,
          timing) -> None:
    """:func:`serve`'s call of ``name(*args, **kwargs)`` and its one published answer."""
    timeout, alarm = timing
    args, kwargs = arguments
    disarm = alarm(float(outer.get("seconds", 60)))
    try:
        try:
            if name not in namespace:
                raise NameError(f"name {name!r} is not defined")
            value = namespace[name](*args, **kwargs)
        finally:
            disarm()
    except timeout:
        return _answer({"status": "timeout"}, publish)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # SystemExit included: a student's bug may raise anything
        return _answer({
            "status": "raised",
            "type": type(error).__name__[:100],
            "message": str(error)[:MAX_TEXT],
            "where": _where(error)[:300],
        }, publish)
    try:
        response = {"status": "ok",
                    "value": encode(value, MAX_RESULT_BYTES, where=f"{name}()", models=True)}
        after = encode(arguments, MAX_RESULT_BYTES, name_of, "the arguments after the call")
        if json.dumps(after, separators=(",", ":")) != outer["call"]:
            response["args"] = after
        text = json.dumps(response, separators=(",", ":"), allow_nan=False)
        if len(text) > MAX_RESULT_BYTES:
            raise BridgeError(f"{name}(): more than {MAX_RESULT_BYTES:,} bytes of data")
    except BridgeError as error:
        return _answer({"status": "refused", "message": str(error)[:MAX_TEXT]}, publish)
    publish({MIME: {"response": text}}, raw=True)


# ---- the grader's side ---------------------------------------------------------------------


def parse_response(payload, functions=None) -> dict:
    """What :func:`serve` published (the output's ``data[MIME]``), checked and decoded.

    Returns:
        ``{"status": "ok", "value": ..., "args": ...}`` (``args`` only when the call changed
        them; values decoded by :func:`decode`, a Keras model in ``value`` rebuilt),
        ``{"status": "raised", "type", "message", "where"}``, ``{"status": "refused",
        "message"}`` or ``{"status": "timeout"}``.

    Raises:
        BridgeError: anything else (a forged or malformed output).
    """
    if not isinstance(payload, dict) or set(payload) != {"response"}:  # Jupyter's own dict
        raise BridgeError("malformed response: not {'response': text}")
    text = payload["response"]
    if type(text) is not str or len(text) > MAX_RESULT_BYTES + 4096:
        raise BridgeError("malformed response: not text, or too long")
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise BridgeError(f"malformed response: nested more than {MAX_DEPTH} deep") from None
    except ValueError as error:
        raise BridgeError(f"malformed response: not JSON ({str(error)[:200]})") from None
    status = raw.get("status") if type(raw) is dict else None
    fields = {
        "ok": ({"value"}, {"args"}), "raised": ({"type", "message", "where"}, set()),
        "refused": ({"message"}, set()), "timeout": (set(), set()),
    }.get(status) if type(status) is str else None
    if fields is None or not fields[0] <= set(raw) - {"status"} <= fields[0] | fields[1]:
        raise BridgeError("malformed response: unknown status or fields")
    if status == "ok":
        decoded = {"status": "ok",
                   "value": decode_parsed(raw["value"], MAX_RESULT_BYTES, models=True)}
        if "args" in raw:
            decoded["args"] = decode_parsed(raw["args"], MAX_RESULT_BYTES, functions)
        return decoded
    for key, limit in (("type", 100), ("message", MAX_TEXT), ("where", 300)):
        if key in raw and (type(raw[key]) is not str or len(raw[key]) > limit):
            raise BridgeError(f"malformed response: {key} is not text of at most {limit}")
    if status == "raised" and not raw["type"].isidentifier():
        raise BridgeError("malformed response: the exception's type is not a name")
    return raw
