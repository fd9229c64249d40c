"""The bridge of a lab judged in the grader (``course.judge = "grader"``, Labs 0 and 1).

The codec (utils.labs.bridge) carries plain data only, both ways, and refuses everything
else with a clear error; the kernel's side (``serve``) is tested in this process. A Keras
model of Keras' own layers crosses as its configuration and variables
(utils.labs.bridge_models): it computes what the original computes, anything else in its
configuration is refused, and the grader's dtype policy goes with each call; Lab 1, judged
in the grader, gives the solution full marks and the generated lab none. Then
attacks on Lab 0, graded in ONE batch through ``python -m utils.labs.grade FOLDER`` (in the
sandbox where bubblewrap runs, else without it: these tests are about the bridge): reading
the tests' expected values from the calling frames, forging the grade message and hooking
the display publisher, returning objects that compare equal to anything, a kernel that dies
in a call, a call that never returns. The frame attack is also graded with Lab 0 judged in
the kernel, where it does earn points: the control that shows the attack is real.
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import textwrap
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest

from utils import checks
from utils.labs import bridge, bridge_models, build, grade, judge, sandbox
from utils.labs import format as labformat
from utils.labs.submission import expected_tests

LAB = labformat.find("lab0_perceptron")
LIMITS = ["--timeout", "120", "--cell-timeout", "60", "--test-timeout", "3", "--memory-gb", "3"]
POINTS = {ex.id: ex.points for ex in LAB.exercises.values()}


# ---- the codec --------------------------------------------------------------------------


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class Subclass(np.ndarray):
    pass


PLAIN = [
    None, True, False, 0, -7, 2**80, 1.5, -0.0, 1e308, "text, é ✓", "", 2 - 3j,
    [], [1, [2.5, [None]]], (), (1, ("a",)), {}, {"a": {"b": [1, (2,)]}},
    np.arange(6.0).reshape(2, 3), np.array([True, False]), np.zeros((0, 3), np.int8),
    np.arange(5, dtype=np.uint16), np.array([1 + 2j], np.complex64), np.array(3.0, ">f8"),
    np.float16([0.5, -1.0]), np.arange(10)[::3], np.asfortranarray(np.ones((2, 3))),
]


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_data_round_trips_with_its_exact_types(value):
    decoded = bridge.decode(bridge.dumps(value))
    assert _same(decoded, value), (value, decoded)
    if isinstance(decoded, np.ndarray):
        assert type(decoded) is np.ndarray and decoded.flags.writeable and decoded.flags.owndata


def test_special_floats_and_numpy_scalars_cross_as_python_numbers():
    decoded = bridge.decode(bridge.dumps([math.nan, math.inf, -math.inf, np.float32(0.5),
                                          np.int64(3), np.bool_(True), np.uint8(7)]))
    assert math.isnan(decoded[0]) and decoded[1:3] == [math.inf, -math.inf]
    assert decoded[3:] == [0.5, 3, True, 7]
    assert [type(v) for v in decoded[3:]] == [float, int, bool, int]


@pytest.mark.parametrize(
    "value, needle",
    [
        (np.array([1, "a"], dtype=object), "dtype object"),
        (np.array(["text"]), "dtype <U4"),
        (np.zeros(2, dtype=[("a", "f8")]), "structured"),
        (np.zeros(3).view(Subclass), "subclass of np.ndarray"),
        (np.ma.masked_array([1.0, 2.0]), "subclass of np.ndarray"),
        (lambda x: x, "a function or other callable"),
        (print, "a function or other callable"),
        (AlwaysEqual(), "an object of type test_bridge.AlwaysEqual"),
        ({1: "a"}, "a dict key of type int"),
        ({1, 2}, "an object of type set"),
        (b"bytes", "an object of type bytes"),
        (type("Number", (int,), {})(3), "an object of type"),  # an int subclass
        (np.longdouble(1.5), "an object of type numpy.longdouble"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_the_codec_refuses_what_is_not_plain_data(value, needle):
    with pytest.raises(bridge.BridgeError, match="only plain data|dtype|subclass|key") as error:
        bridge.dumps([1, {"x": value}])
    assert needle in str(error.value) and "the value[1]['x']" in str(error.value)


def test_deep_nesting_and_oversized_data_are_refused():
    nested: list = []
    for _ in range(bridge.MAX_DEPTH + 1):
        nested = [nested]
    with pytest.raises(bridge.BridgeError, match="nested more than 20 deep"):
        bridge.dumps(nested)
    loop: list = []
    loop.append(loop)  # a list that holds itself is nested without end
    with pytest.raises(bridge.BridgeError, match="nested more than 20 deep"):
        bridge.dumps(loop)
    with pytest.raises(bridge.BridgeError, match="more than 1,000 bytes"):
        bridge.dumps(np.zeros(1000), limit=1000)
    with pytest.raises(bridge.BridgeError, match="more than 64 bytes"):
        bridge.dumps(["x" * 40, "y" * 40], limit=64)
    with pytest.raises(bridge.BridgeError, match="a string of more than"):
        bridge.dumps("x" * (bridge.MAX_STRING + 1))
    with pytest.raises(bridge.BridgeError, match="an int of more than"):
        bridge.dumps(1 << 5000)


@pytest.mark.parametrize(
    "text, needle",
    [
        (json.dumps([[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]), "nested more than 20"),
        ("{not json", "not JSON"),
        ("[NaN]", "a bare NaN"),
        ('{"a": 1}', "an object with keys"),
        ('{"$": "ndarray", "dtype": "|O8", "shape": [1], "data": "AAAAAAAAAAA="}', "dtype"),
        ('{"$": "ndarray", "dtype": "<f8", "shape": [2], "data": "AAAAAAAAAAA="}', "8 bytes"),
        ('{"$": "ndarray", "dtype": "<f8", "shape": [1], "data": "***"}', "not base64"),
        ('{"$": "ndarray", "dtype": "<f8", "shape": [-1], "data": ""}', "shape"),
        ('{"$": "ndarray", "dtype": "<f8", "shape": [99999999999], "data": ""}', "over"),
        ('{"$": "function", "name": "f"}', "a function where none may be"),
        ('{"$": "dict", "items": [[1, 2]]}', "[str key, value]"),
        ('{"$": "float", "value": "1e999"}', "special float"),
        ('"' + "x" * 2000 + '"', "more than 1,000 characters"),
    ],
    ids=lambda value: value[:40],
)
def test_the_decoder_refuses_malformed_data(text, needle):
    with pytest.raises(bridge.BridgeError, match="malformed") as error:
        bridge.decode(text, limit=1000)
    assert needle in str(error.value)


def test_json_nested_100000_deep_is_refused_without_a_crash():
    with pytest.raises(bridge.BridgeError, match="nested"):
        bridge.decode("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(
    "payload",
    [
        {"response": '{"status": "ok"}'},  # no value
        {"response": '{"status": "ok", "value": 1, "extra": 2}'},
        {"response": '{"status": "pass"}'},
        {"response": '{"status": "raised", "type": "not a name", "message": "", "where": ""}'},
        {"response": json.dumps({"status": "refused", "message": "x" * 5000})},
        {"response": 3},
        {"exercise": "ex1", "tests": []},  # a grade message is not a bridge response
    ],
)
def test_a_forged_or_malformed_response_is_refused(payload):
    with pytest.raises(bridge.BridgeError, match="malformed response"):
        bridge.parse_response(payload)


# ---- the kernel's side, in this process ---------------------------------------------------


def _serve(namespace: dict, function: str, *args, helpers=None, policy=None, **kwargs) -> dict:
    published = []
    names = {}

    def name_of(value, where):
        return names.setdefault(id(value), value.__name__)

    request = json.dumps({
        "function": function,
        "call": bridge.dumps((args, kwargs), functions=name_of),
        "helpers": helpers or {},
        "seconds": 5,
        "policy": policy,
    })
    bridge.serve(request, namespace, publish=lambda data, raw: published.append(data))
    assert len(published) == 1 and set(published[0]) == {bridge.MIME}
    return bridge.parse_response(published[0][bridge.MIME])


def test_serve_calls_the_function_and_sends_back_changed_arguments_only():
    def scale(x, factor=2.0):
        x *= factor
        return {"sum": x.sum(), "shape": x.shape}

    found = _serve({"scale": scale}, "scale", np.ones(3), factor=3.0)
    assert found["value"] == {"sum": 9.0, "shape": (3,)}
    assert _same(found["args"], ((np.full(3, 3.0),), {"factor": 3.0}))
    assert "args" not in _serve({"norm": np.linalg.norm}, "norm", np.ones(4))


def test_serve_reports_exceptions_refusals_and_missing_functions():
    def broken(x):
        raise ValueError(f"bad input {x}")

    found = _serve({"broken": broken}, "broken", 3)
    assert found["status"] == "raised" and found["type"] == "ValueError"
    assert found["message"] == "bad input 3" and "raised in broken" in found["where"]
    found = _serve({"liar": AlwaysEqual}, "liar")
    assert found["status"] == "refused" and "AlwaysEqual" in found["message"]
    found = _serve({}, "missing")
    assert (found["type"], found["message"]) == ("NameError", "name 'missing' is not defined")


def test_a_helper_function_crosses_as_its_source():
    def sum_of_squares(v):
        return float(np.sum(v**2))

    source = "def sum_of_squares(v):\n    return float(np.sum(v**2))"

    def apply(f, x):
        return f(x)

    found = _serve({"apply": apply}, "apply", sum_of_squares, np.array([1.0, 2.0]),
                   helpers={"sum_of_squares": source})
    assert found == {"status": "ok", "value": 5.0}


def test_a_lambda_argument_tells_the_instructor_to_define_a_function():
    def helper(v):
        return v

    session = judge._Session(lambda source, seconds: [], {"helper": helper}, {"helper": "..."})
    with pytest.raises(bridge.BridgeError, match="a lambda cannot cross.*with def"):
        session("numerical_gradient", (lambda v: v, np.ones(2)), {})
    with pytest.raises(bridge.BridgeError, match="not a lambda, a nested function"):
        session("numerical_gradient", (np.sum, np.ones(2)), {})


def test_course_judge_is_validated():
    nb = nbformat.read(LAB.path, as_version=4)
    assert labformat.parse(nb).judge == "grader"
    nb.metadata.course["judge"] = "sandbox"
    with pytest.raises(labformat.LabFormatError, match="course.judge is 'sandbox'"):
        labformat.parse(nb)
    del nb.metadata.course["judge"]
    assert labformat.parse(nb).judge == "kernel"


def test_the_exercise_functions_are_the_solution_regions_definitions():
    assert judge.exercise_functions(LAB) == [
        "perceptron_predict", "perceptron_train", "softmax_cross_entropy",
        "numerical_gradient", "sgd_train",
    ]


def test_building_the_solution_leaves_the_environment_alone(monkeypatch):
    # The grader builds the solution's namespace in a background thread while other
    # submissions are graded: it must change no process-wide setting, even for a while.
    import keras  # noqa: F401 (TensorFlow sets its own variables once, on import)

    from utils import quick
    from utils.labs import notebooks

    monkeypatch.setenv("COURSE_SIZE", "cpu")
    before, seen = dict(os.environ), set()
    compile_cell = notebooks.compile_cell

    def watched(source, name):
        seen.add((os.environ.get("COURSE_SIZE"), os.environ.get("COURSE_GRADING"), quick.size()))
        return compile_cell(source, name)

    monkeypatch.setattr(notebooks, "compile_cell", watched)
    trusted = judge._build(LAB, "smoke")
    assert not trusted.failure, trusted.failure
    assert set(trusted.snapshots) == set(LAB.exercises)
    assert seen == {("cpu", None, "smoke")}  # the solution ran at smoke, the process stayed cpu
    assert dict(os.environ) == before


# ---- Keras models ---------------------------------------------------------------------------


def _lenet_like(output_dtype="float32", extra=None, activation="relu"):
    """A small LeNet-like functional model, (B, 16, 16, 1) -> (B, 10) probabilities; ``extra``
    adds layers before the output."""
    import keras
    from keras import layers

    inputs = keras.Input((16, 16, 1), name="image")
    x = layers.Conv2D(4, 3, activation=activation, name="c1")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.MaxPooling2D(2, name="s2")(x)
    x = layers.Conv2D(8, 3, activation="relu", name="c3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    if extra is not None:
        x = extra(x)
    outputs = layers.Dense(10, activation="softmax", dtype=output_dtype, name="output")(x)
    return keras.Model(inputs, outputs, name="lenet_like")


def _scrambled(model):
    """``model`` with every weight drawn at random in [0.5, 1.5) (no default value left)."""
    generator = np.random.default_rng(3)
    model.set_weights([generator.uniform(0.5, 1.5, np.shape(w)) for w in model.get_weights()])
    return model


IMAGES = np.random.default_rng(0).normal(size=(4, 16, 16, 1)).astype("float32")


def test_a_functional_model_crosses_with_its_layers_variables_and_outputs():
    original = _scrambled(_lenet_like())
    found = _serve({"build": lambda: original}, "build")
    model = found["value"]
    assert found["status"] == "ok" and bridge_models.is_model(model) and model is not original
    assert [(layer.name, type(layer)) for layer in model.layers] == [
        (layer.name, type(layer)) for layer in original.layers
    ]
    assert model.name == "lenet_like" and model.count_params() == original.count_params()
    for training in (False, True):  # training: batch statistics, and the same dropout mask
        np.testing.assert_allclose(np.asarray(model(IMAGES, training=training)),
                                   np.asarray(original(IMAGES, training=training)),
                                   rtol=0, atol=1e-6)


def test_a_sequential_model_crosses_too():
    import keras

    original = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")],
                                name="small")
    model = _serve({"build": lambda: original}, "build")["value"]
    assert type(model) is keras.Sequential and model.name == "small"
    np.testing.assert_allclose(np.asarray(model(np.eye(3))), np.asarray(original(np.eye(3))),
                               rtol=0, atol=1e-6)


def _custom_models():
    """Builders of models that do not cross, with what the refusal must say."""
    import keras
    from keras import layers

    class Scale(layers.Layer):
        def call(self, x):
            return 2 * x

    def doubled_relu(x):
        return 2 * keras.ops.relu(x)

    def subclassed():
        inputs = keras.Input((16, 16, 1))
        wrapped = type("Wrapped", (keras.Model,), {})
        return wrapped(inputs, layers.Flatten()(inputs))

    return {
        "lambda": (lambda: _lenet_like(extra=layers.Lambda(lambda t: 2 * t, name="double")),
                   "layer 'double': a Lambda layer runs Python code"),
        "custom layer": (lambda: _lenet_like(extra=Scale(name="scale")),
                         "layer 'scale' is of class 'Scale' from module"),
        "custom activation": (lambda: _lenet_like(activation=doubled_relu),
                              "is of class 'function' from module"),
        "subclass": (subclassed, "Wrapped; only models built with keras.Model(inputs, outputs) "
                                 "or keras.Sequential cross (not a layer, not a subclass"),
    }


@pytest.mark.parametrize("kind", ["lambda", "custom layer", "custom activation", "subclass"])
def test_the_kernel_refuses_a_model_of_other_than_keras_own_layers(kind):
    builder, needle = _custom_models()[kind]
    found = _serve({"build": builder}, "build")
    assert found["status"] == "refused", found
    assert needle in found["message"] and found["message"].startswith("build()")


def _record(model=None) -> dict:
    return bridge.encode(model or _lenet_like(), models=True)


def _tampered(change) -> dict:
    """A model record, with ``change(config, variables)`` applied to its configuration (the
    parsed JSON, c1's entry) and its encoded variables; returns the record."""
    record = _record()
    config = json.loads(record["config"])
    c1 = next(layer for layer in config["config"]["layers"] if layer["name"] == "c1")
    change(c1, record)
    record["config"] = json.dumps(config)
    return record


def _set(**fields):
    return lambda c1, record: c1.update(fields)


def _activation(value):
    return lambda c1, record: c1["config"].update(activation=value)


def _variables(change):
    return lambda c1, record: record.update(variables=change(record["variables"]))


def _resized(variables):
    first = bridge.encode(np.zeros((5, 5, 1, 4), np.float32))
    return [first, *variables[1:]]


TAMPERINGS = {
    "custom class": (_set(module="__main__", class_name="Scale"),
                     "layer 'c1' is of class 'Scale' from module '__main__', not one of Keras'"),
    "lambda": (_set(class_name="Lambda"), "layer 'c1': a Lambda layer runs Python code"),
    "unknown": (_set(class_name="Conv9D"), "keras.layers.Conv9D is not one of Keras' own"),
    "not a layer": (_set(module="keras", class_name="Optimizer"),
                    "keras.Optimizer is not one of Keras' own layers, initializers"),
    "wrapper": (_set(class_name="TFSMLayer"), "is not a layer of keras.layers (it wraps"),
    "registered": (_set(registered_name="evil>Conv2D"), "the registered name 'evil>Conv2D'"),
    "private module": (_set(module="keras.src.utils.file_utils"),
                       "from module 'keras.src.utils.file_utils'"),
    "python code": (_activation({"class_name": "__lambda__", "config": {"code": "x"}}),
                    "a serialized Python value (__lambda__)"),
    "other function": (_activation({"module": "keras.utils", "class_name": "function",
                                    "config": "get_file", "registered_name": None}),
                       "from module 'keras.utils'"),
    "shape": (_variables(_resized),
              "variable c1/kernel (float32, shape (3, 3, 1, 4)) was sent as float32 of shape "
              "(5, 5, 1, 4)"),
    "missing": (_variables(lambda variables: variables[:-1]),
                "sent with 10 variables where its configuration has 11"),
    "policy": (lambda c1, record: record.update(policy="evil"), "the policy 'evil'"),
}


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_the_grader_refuses_a_tampered_model_record(kind):
    change, needle = TAMPERINGS[kind]
    record = _tampered(change)
    with pytest.raises(bridge.BridgeError) as error:
        bridge.parse_response({"response": json.dumps({"status": "ok", "value": record})})
    assert needle in str(error.value)


def test_a_record_of_enormous_layers_is_refused_before_their_memory_is_taken():
    """3.2 GB of output weights declared, 11 small arrays sent: refused, nothing allocated,
    and the next model rebuilt in this thread does not initialize the refused one's."""
    import resource

    record = _tampered(lambda c1, record: None)
    config = json.loads(record["config"])
    output = next(layer for layer in config["config"]["layers"] if layer["name"] == "output")
    output["config"]["units"] = 4_000_000  # a (200, 4,000,000) kernel
    record["config"] = json.dumps(config)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB, the peak so far
    with pytest.raises(bridge.BridgeError, match=r"output/kernel \(float32, shape \(200, "
                                                 r"4000000\)\) was sent as float32 of shape"):
        bridge.decode_parsed(record, models=True)
    from keras.src.backend.common import global_state  # Keras' per-thread state

    assert not global_state.get_global_attribute("uninitialized_variables", None)
    assert bridge.decode_parsed(_record(), models=True).count_params() > 0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1_000_000  # < 1 GB


def test_the_untampered_record_rebuilds():
    """The control for the tamperings: the same record, unchanged, rebuilds."""
    record = _tampered(lambda c1, record: None)
    found = bridge.parse_response({"response": json.dumps({"status": "ok", "value": record})})
    assert [layer.name for layer in found["value"].layers][:2] == ["image", "c1"]


def test_a_refused_model_fails_the_test_and_no_except_exception_hides_it():
    record = _tampered(_set(class_name="Lambda"))
    response = json.dumps({"status": "ok", "value": record})

    def call(source, seconds):
        return [{"output_type": "display_data", "data": {bridge.MIME: {"response": response}}}]

    lenet = judge._Proxy("lenet5", judge._Session(call, {}, {}))
    with pytest.raises(judge.NotPlainData, match="lenet5 sent back .*a Lambda layer"):
        try:
            lenet()
        except Exception:  # what a test might write: NotPlainData is not an Exception
            pass


def test_a_model_does_not_cross_as_an_argument_or_where_none_may_be():
    with pytest.raises(bridge.BridgeError, match="only a return value may be a model"):
        bridge.dumps([_lenet_like()])
    with pytest.raises(bridge.BridgeError, match="a Keras model where none may be"):
        bridge.decode(json.dumps(_record()))


def _kernel_thread(namespace: dict):
    """``call(source, seconds)`` for a judge session that serves the request in a thread of
    its own: Keras' dtype policy is per thread, so only the policy the request names
    reaches the student's function."""

    def call(source, seconds):
        request = ast.literal_eval(source[source.index(".serve(") + len(".serve("):-1])
        published = []
        worker = threading.Thread(target=bridge.serve, args=(
            request, namespace, lambda data, raw: published.append(data)))
        worker.start()
        worker.join()
        return [{"output_type": "display_data", "data": data} for data in published]

    return call


def test_the_graders_dtype_policy_goes_with_the_call(monkeypatch):
    import keras

    from utils.labs import kernel

    monkeypatch.setattr(kernel, "_alarm", lambda seconds: lambda: None)  # signals: main thread
    session = judge._Session(_kernel_thread({
        "lenet": _lenet_like, "lenet_float16_output": lambda: _lenet_like(output_dtype=None),
    }), {}, {})
    lenet = judge._Proxy("lenet", session)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert lenet().get_layer("c1").compute_dtype == "float32"
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = lenet()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("c1").compute_dtype == "float16"
    assert model.get_layer("output").compute_dtype == "float32"
    checks.assert_float32_output(lenet, "c1", "lenet()")
    with pytest.raises(checks.CheckError, match="output dtype under mixed_float16"):
        checks.assert_float32_output(judge._Proxy("lenet_float16_output", session), "c1", "x")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_serve_restores_the_kernels_policy_after_the_call():
    import keras

    found = _serve({"build": _lenet_like}, "build", policy="mixed_float16")
    assert found["value"].get_layer("c1").compute_dtype == "float16"
    assert keras.mixed_precision.global_policy().name == "float32"


# ---- Lab 1, judged in the grader -------------------------------------------------------------

LAB1 = labformat.find("lab1_lenet")


@pytest.fixture(scope="module")
def graded_lab1(tmp_path_factory):
    """The solution and the generated lab (labs/lab1_lenet.ipynb), graded in one batch."""
    folder = tmp_path_factory.mktemp("lab1_submissions")
    out = tmp_path_factory.mktemp("lab1_grades")
    shutil.copy(LAB1.path, folder / "solution.ipynb")
    shutil.copy(LAB1.path.parent.parent / "labs" / LAB1.path.name, folder / "generated.ipynb")
    args = [str(folder), "--out", str(out), "--quiet", "--jobs", "2"]
    if sandbox.bwrap_problem():
        args.append("--no-sandbox")
    assert grade.main(args) == grade.EXIT_GRADED
    summary = json.loads((out / "summary.json").read_text())
    return {Path(report["file"]).stem: report for report in summary}


def test_lab1_is_judged_in_the_grader():
    assert LAB1.judge == "grader"
    assert judge.exercise_functions(LAB1) == [
        "output_size", "lenet5", "c3_connection_table", "most_confident_mistakes",
    ]


def test_the_trusted_build_trains_nothing():
    # The tests need the solution's definitions and data, not its trained model: building
    # Lab 1's namespace must not train LeNet-5 a second time (the kernel already does).
    from utils import training

    trusted = judge._build(LAB1, "smoke")
    assert not trusted.failure, trusted.failure
    history = trusted.snapshots["ex4"]["history"]  # ex4's tests come after the training cell
    assert history.seconds == 0 and int(history.model.optimizer.iterations) == 0
    assert not training.dry_run()  # the hidden tests after the build train for real


def test_lab1_solution_earns_full_marks_and_the_generated_lab_zero(graded_lab1):
    solution, generated = graded_lab1["solution"], graded_lab1["generated"]
    assert solution["errors"] == [] and solution["warnings"] == [], solution
    assert solution["total"] == solution["max_total"] == 10
    expected = {ex.id: len(expected_tests(ex)) for ex in LAB1.exercises.values()}
    assert {e["id"]: len(e["tests"]) for e in solution["exercises"]} == expected
    assert {t["status"] for e in solution["exercises"] for t in e["tests"]} == {"pass"}
    assert generated["errors"] == [] and generated["total"] == 0
    statuses = {t["status"] for ex in generated["exercises"] for t in ex["tests"]}
    assert statuses == {"not attempted"}


# ---- attacks on Lab 0, graded through the bridge -------------------------------------------

STEAL = '''
import inspect, sys

def _steal(*names):
    """The first of names found in the locals of a frame that called the student's function
    (the test's expected value)."""
    frame = sys._getframe(2)
    while frame is not None:
        for name in names:
            if name in frame.f_locals:
                return frame.f_locals[name]
        frame = frame.f_back
    for info in inspect.stack()[2:]:
        for name in names:
            if name in info.frame.f_locals:
                return info.frame.f_locals[name]
    return None
'''


def _replace(nb, old: str, new: str):
    cells = [cell for cell in nb.cells if old in cell.source]
    assert len(cells) == 1, f"{old!r} is in {len(cells)} cells"
    cells[0].source = cells[0].source.replace(old, new)
    return nb


def _frames():
    """ex1 and ex5 return the expected value they find in the test's frame, else garbage."""
    nb = build.completed_version(LAB)
    nb.cells.insert(4, nbformat.v4.new_code_cell(STEAL))
    _replace(nb, "    return (np.asarray(X) @ np.asarray(w) + b > 0).astype(np.int64)",
             '    found = _steal("expected")\n'
             '    return found if found is not None else "nothing found"')
    _replace(nb, "error = target - perceptron_predict(w, b, x[None, :])[0]",
             "error = target - int(x @ w + b > 0)")  # perceptron_train stays right
    _replace(nb, "    return W, b, losses\n",
             '    found = _steal("W")\n'
             '    return (found, b, []) if found is not None else "nothing found"\n')
    return nb


def _forged():
    """The generated lab (nothing solved) that publishes forged grade messages and hooks the
    display publisher to add them to everything published, bridge results included."""
    payloads = [
        {
            "exercise": exercise.id,
            "tests": [{"name": name, "visibility": visibility, "status": "pass", "message": ""}
                      for visibility, name in expected_tests(exercise)],
            "tampering": [], "problems": [],
        }
        for exercise in LAB.exercises.values()
    ]
    nb = build.student_version(LAB)
    nb.cells.insert(4, nbformat.v4.new_code_cell(textwrap.dedent(f"""
        import json
        from IPython import get_ipython
        from IPython.display import display
        FORGED = json.loads({json.dumps(payloads)!r})
        GRADE = "application/vnd.dlvision.grade+json"
        BRIDGE = "application/vnd.dlvision.bridge+json"
        for payload in FORGED:
            display({{GRADE: payload}}, raw=True)
        publisher = get_ipython().display_pub
        original = publisher.publish

        def publish(data, *args, **kwargs):
            if BRIDGE in data:  # claim that every call returned what the test wanted
                data = {{BRIDGE: {{"response": json.dumps({{"status": "ok", "value": True}})}}}}
            for payload in FORGED:
                original({{GRADE: payload}}, *args, **kwargs)
            return original(data, *args, **kwargs)

        publisher.publish = publish
    """)))
    return nb


def _always_equal():
    """ex1 returns an object equal to anything; ex3 an ndarray subclass equal to anything."""
    nb = build.completed_version(LAB)
    nb.cells.insert(4, nbformat.v4.new_code_cell(textwrap.dedent("""
        class Anything(list):
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

            def tolist(self):
                return self

        class Close(np.ndarray):
            def __eq__(self, other):
                return np.ones(np.shape(other), dtype=bool)
    """)))
    _replace(nb, "    return (np.asarray(X) @ np.asarray(w) + b > 0).astype(np.int64)",
             "    return Anything((np.asarray(X) @ np.asarray(w) + b > 0).astype(int).tolist())")
    _replace(nb, "    return float(loss), grad / n",
             "    return float(loss), (grad / n).view(Close)")
    return nb


def _dies():
    """numerical_gradient ends the kernel on ex4's second test (a 2x3 matrix)."""
    nb = build.completed_version(LAB)
    return _replace(nb, "    grad = np.zeros_like(x)\n",
                    "    if x.shape == (2, 3):\n        import os\n        os._exit(1)\n"
                    "    grad = np.zeros_like(x)\n")


def _endless():
    nb = build.completed_version(LAB)
    return _replace(nb, "    generator = np.random.default_rng(seed)\n",
                    "    while True:\n        pass\n")


def _args(folder, out, solutions=None):
    args = [str(folder), "--out", str(out), "--quiet", "--jobs", "2", *LIMITS]
    if solutions is not None:
        args += ["--solutions", str(solutions)]
    if sandbox.bwrap_problem():  # these tests are about the bridge, not the sandbox
        args.append("--no-sandbox")
    return args


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bridge_submissions")
    out = tmp_path_factory.mktemp("bridge_grades")
    submissions = {
        "solution": LAB.notebook,
        "generated": build.student_version(LAB),
        "frames": _frames(),
        "forged": _forged(),
        "always_equal": _always_equal(),
        "dies_in_a_call": _dies(),
        "endless_call": _endless(),
    }
    for name, nb in submissions.items():
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    assert grade.main(_args(folder, out)) == grade.EXIT_GRADED
    summary = json.loads((out / "summary.json").read_text())
    return {Path(report["file"]).stem: report for report in summary}


def _points(report) -> dict:
    return {entry["id"]: entry["points"] for entry in report["exercises"]}


def _messages(report, exercise) -> list[str]:
    entry = next(e for e in report["exercises"] if e["id"] == exercise)
    return [test["message"] for test in entry["tests"]]


def test_the_solution_earns_full_marks_and_the_generated_lab_zero(graded):
    solution, generated = graded["solution"], graded["generated"]
    assert solution["errors"] == [] and solution["warnings"] == []
    assert solution["total"] == solution["max_total"] == 12
    assert generated["errors"] == [] and generated["total"] == 0
    statuses = {t["status"] for ex in generated["exercises"] for t in ex["tests"]}
    assert statuses == {"not attempted"}


def test_reading_the_expected_value_from_the_calling_frames_earns_nothing(graded):
    """ex2's learns_logical_and fails too: it calls perceptron_predict."""
    assert _points(graded["frames"]) == {**POINTS, "ex1": 0.0, "ex2": 2.25, "ex5": 0.0}


def test_the_frame_attack_does_earn_points_where_the_kernel_judges(tmp_path):
    """The control: with Lab 0 judged in the student's kernel, the same attack passes the
    hidden tests whose expected value is a local variable of the test."""
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nb = nbformat.read(LAB.path, as_version=4)
    del nb.metadata.course["judge"]
    nbformat.write(nb, str(solutions / LAB.path.name))
    folder = tmp_path / "submissions"
    folder.mkdir()
    nbformat.write(_frames(), str(folder / "frames.ipynb"))
    assert grade.main(_args(folder, tmp_path / "out", solutions)) == grade.EXIT_GRADED
    report = json.loads((tmp_path / "out" / "frames.json").read_text())
    assert _points(report) == {  # matches_the_definition_on_random_data, a_new_order_every_...
        **POINTS, "ex1": 0.4, "ex2": 2.25, "ex5": 0.6
    }


def test_forged_grade_messages_and_a_hooked_publisher_earn_nothing(graded):
    report = graded["forged"]
    assert report["total"] == 0 and report["errors"] == []
    statuses = {t["status"] for ex in report["exercises"] for t in ex["tests"]}
    assert "pass" not in statuses


def test_an_object_equal_to_anything_fails_with_a_clear_message(graded):
    """Every test that receives such an object fails, also the tests of ex2 and ex5 that call
    perceptron_predict and softmax_cross_entropy."""
    report = graded["always_equal"]
    assert _points(report) == {**POINTS, "ex1": 0.0, "ex2": 2.25, "ex3": 0.0, "ex5": 1.8}
    assert report["warnings"] == [] and report["errors"] == []  # the student's own cells ran
    assert all("NotPlainData: perceptron_predict(): an object of type __main__.Anything; only "
               "plain data crosses" in message for message in _messages(report, "ex1"))
    assert all("a subclass of np.ndarray" in message for message in _messages(report, "ex3"))


def test_a_kernel_that_dies_in_a_call_keeps_the_tests_already_judged(graded):
    report = graded["dies_in_a_call"]
    assert _points(report) == {**POINTS, "ex4": 0.67, "ex5": 0.0}
    assert any("the kernel died while running the tests of ex4" in e for e in report["errors"])
    assert all("the test did not run" in message for message in _messages(report, "ex5"))


def test_a_call_that_never_returns_is_stopped_at_the_test_limit(graded):
    report = graded["endless_call"]
    assert _points(report) == {**POINTS, "ex5": 0.0}
    assert set(_messages(report, "ex5")) == {
        "stopped after the 3 s limit per test (an endless loop?)"
    }
    assert report["errors"] == []
