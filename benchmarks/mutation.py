"""Mutation testing of the labs' own tests: do they catch plausible wrong answers?

Run:  python -m benchmarks.mutation [LAB ...] [--limit 60] [--min-score 90]

For each lab (default: all), it makes single-change mutants of the solution regions
(:mod:`benchmarks.mutants`: swapped activations, poolings and initialisers, deleted layer
calls and keyword arguments, changed numbers, comparisons and operators, swapped
arguments), at most ``--limit`` per lab, chosen at random with a fixed seed. Each mutant is
graded as the grader grades a submission, at the smoke size: the lab's code cells run up
to its last test cell, and at each test cell the master public and hidden tests of that
exercise run (:func:`utils.labs.kernel.run_exercise`). A mutant is **killed** when any test
of the exercises after the mutated cell fails or errs, or when the mutated cell itself
raises; it **survives** when every test still passes.

To keep a lab to minutes, the lab's cells run once; each mutant then replaces its cell's
definitions, runs the tests of the exercises from that cell on, and is undone. Cells
between the mutated one and the tests are not run again, so a mutant whose effect only
shows through a later demonstration cell counts as surviving.

It prints, per lab, the mutants killed, the score and the survivors (cell, line and
change), so that an instructor can add a test or see that a survivor computes the same
function. Survivors judged by reading to be equivalent are listed in :data:`EQUIVALENT`,
each with its reason; they are printed, and left out of the score.

Exit status 1 when a lab scores below ``--min-score`` percent, or its solution
fails its own tests; 2 for an unknown lab; 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.mutants import mutants
from utils.labs import format as labformat

LIMIT = 60  # mutants per lab: a sample keeps the run to minutes per lab
MIN_SCORE = 90.0  # percent of mutants a lab's tests must kill
TEST_TIMEOUT_S = 30.0  # per test; a mutant may loop forever
# Survivors judged by reading to compute the same function as the solution for every input
# the exercise allows: (lab, the original line, the change) -> why. They are listed, and left
# out of the score.
EQUIVALENT = {
    ("lab0_perceptron", "w = w + learning_rate * error * x",
     "learning_rate * error -> learning_rate / error"): "error is -1 or 1 here",
    ("lab0_perceptron", "b = b + learning_rate * error",
     "learning_rate * error -> learning_rate / error"): "error is -1 or 1 here",
    ("lab0_perceptron", "X, y = np.asarray(X, dtype=float), np.asarray(y)",
     "keyword dtype= deleted"): "the weights start as float arrays: every update is in floats",
    ("lab0_perceptron", "x = np.asarray(x, dtype=float)",
     "keyword dtype= deleted"): "x is a float array by the docstring's contract",
    ("lab0_perceptron", "for x, target in zip(X, y, strict=True):",
     "keyword strict= deleted"): "X and y have the same length by the docstring's contract",
    ("lab1_lenet", 'x = layers.Flatten(name="flatten")(x)',
     "keyword name= deleted"): "Keras names a model's first Flatten layer 'flatten' anyway",
    ("lab1_lenet", 'inputs = keras.Input(shape=input_shape, name="image")',
     "keyword name= deleted"): "the input's name is not part of the function",
    ("lab1_lenet", 'x = pool(pool_size=2, strides=2, name="s2")(x)',
     "keyword strides= deleted"): "pooling strides default to the pool size, 2",
    ("lab1_lenet", 'x = pool(pool_size=2, strides=2, name="s4")(x)',
     "keyword strides= deleted"): "pooling strides default to the pool size, 2",
    ("lab2_alexnet", 'x = layers.Flatten(name="flatten")(x)',
     "keyword name= deleted"): "Keras names a model's first Flatten layer 'flatten' anyway",
    ("lab2_alexnet",
     "x = pipeline.augmentation(flip=True, crop_padding=4, input_shape=input_shape)(x)",
     "keyword crop_padding= deleted"): "pipeline.augmentation's crop_padding defaults to 4",
    ("lab2_alexnet", "pixels = np.asarray(images, dtype=np.float64).reshape(-1, 3)",
     "keyword dtype= deleted"): "np.cov computes in float64 whatever its input's dtype",
    ("lab0_perceptron", "logits = np.asarray(logits, dtype=float)",
     "keyword dtype= deleted"): "subtracting the max and np.exp give floats for any input",
    ("lab3_vgg", 'image = tf.convert_to_tensor(image, dtype="float32")',
     "keyword dtype= deleted"): "float images (the docstring); the model computes in float32",
    ("lab3_vgg", 'x = layers.Dense(max(1, round(512 * width)), use_bias=False, name="fc1")(x)',
     "first two arguments swapped"): "max(1, n) and max(n, 1) are the same number",
    ("lab3_vgg", 'x = layers.ReLU(name="fc1_relu")(x)',
     "keyword name= deleted"): "a layer without weights: its name is not part of the function",
    ("lab4_inception", 'inputs = keras.Input(input_shape, name="image")',
     "keyword name= deleted"): "the input's name is not part of the function",
    ("lab4_inception", 'x = layers.GlobalAveragePooling2D(name="avgpool")(x)',
     "keyword name= deleted"): "a layer without weights: its name is not part of the function",
    ("lab5_resnet", 'y = layers.Activation("relu", name=layer_name(name, "2_relu"))(y)',
     "keyword name= deleted"): "a layer without weights: its name is not part of the function",
    ("lab5_resnet", 'inputs = keras.Input(input_shape, name="image")',
     "keyword name= deleted"): "the input's name is not part of the function",
    ("lab5_resnet", 'x = layers.GlobalAveragePooling2D(name="avg_pool")(x)',
     "keyword name= deleted"): "a layer without weights: its name is not part of the function",
    ("lab5_resnet", 'x = layers.Activation("relu", name="conv1_relu")(x)',
     "keyword name= deleted"): "a layer without weights: its name is not part of the function",
    ("lab7_features", "return inputs / ops.maximum(ops.sqrt(energy), self.threshold)",
     "first two arguments swapped"): "the maximum of two numbers does not depend on their order",
    ("lab7_features",
     "return centred / ops.maximum(ops.maximum(deviation, floor), self.epsilon)",
     "first two arguments swapped"): "the maximum of two numbers does not depend on their order",
    ("lab7_features",
     "outputs = probe.predict(np.asarray(images), batch_size=batch_size, verbose=0)",
     "keyword batch_size= deleted"): "a model in inference mode gives each image the same "
                                     "features in any batch",
    ("lab7_features",
     "outputs = probe.predict(np.asarray(images), batch_size=batch_size, verbose=0)",
     "keyword verbose= deleted"): "verbose only prints a progress bar",
    ("lab7_features",
     "outputs = probe.predict(np.asarray(images), batch_size=batch_size, verbose=0)",
     "0 -> 1"): "verbose only prints a progress bar",
    ("lab7_features", "for name, maps in zip(layer_names, outputs, strict=True):",
     "keyword strict= deleted"): "the probe has one output per layer name, so the lengths match",
    ("lab7_features",
     'windows = ops.image.extract_patches(x, (ph, pw), strides=self.strides, padding="valid")',
     "keyword padding= deleted"): "extract_patches pads 'valid' by default",
    ("lab7_features", "return SlowerLayers(slow, base_factor if transfer else 1.0, "
     "learning_rate=learning_rate, momentum=0.9)",
     "1.0 -> 0"): "from scratch no variable is slowed, so the factor multiplies nothing",
}


def _code(source: str) -> str:
    """A cell's source without IPython magics and shell lines."""
    lines = source.splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _run_tests(exercise, namespace) -> list[dict]:
    from utils.labs import kernel as gradekernel

    sources = [("public", s) for s in exercise.public] + [("hidden", s) for s in exercise.hidden]
    # Outside a kernel the payload is displayed on stdout, which the worker does not keep.
    payload = gradekernel.run_exercise(exercise.id, sources, TEST_TIMEOUT_S, namespace,
                                       reference=exercise.reference)
    return payload["tests"] + [{"name": "definitions", "status": "error", "message": p}
                               for p in payload["problems"]]


def _failed(tests: list[dict]) -> str | None:
    bad = [t for t in tests if t["status"] != "pass"]
    return f"{bad[0]['name']}: {bad[0]['message'][:120]}" if bad else None


def work(lab_id: str, limit: int, seed: int) -> dict:
    """Grade the mutants of one lab in this process (the worker); returns the figures."""
    from utils.labs import kernel as gradekernel

    started = time.monotonic()
    lab = labformat.find(lab_id)
    cells = [(i, c.source) for i, c in enumerate(lab.notebook.cells) if c.cell_type == "code"]
    tests_at = {}  # cell index -> exercise, for each public test cell
    for index, source in cells:
        header = labformat.test_header(source)
        if header and not header["hidden"]:
            tests_at[index] = lab.exercises[header["exercise"]]
    last = max(tests_at)
    namespace: dict = {"__name__": "__main__"}
    gradekernel.begin()
    baseline = []
    for index, source in cells:
        if index > last:
            break
        if index in tests_at:
            baseline.append((tests_at[index].id, _failed(_run_tests(tests_at[index], namespace))))
        elif labformat.test_header(source) is None:
            exec(compile(_code(source), f"<cell {index}>", "exec"), namespace)
    broken = [f"{exercise}: {why}" for exercise, why in baseline if why]
    if broken:
        return {"lab": lab_id, "error": "the solution fails its own tests: " + "; ".join(broken)}
    candidates = [(index, source, m) for index, source in cells if index < last
                  for m in mutants(source)]
    chosen = sorted(random.Random(seed).sample(candidates, min(limit, len(candidates))),
                    key=lambda item: item[0])
    survivors, equivalent = [], []
    for number, (index, source, mutant) in enumerate(chosen, start=1):
        why = None
        try:
            exec(compile(mutant.source, f"<mutant of cell {index}>", "exec"), namespace)
        except Exception as error:  # the mutated cell itself fails: a grader would see it
            why = f"the cell raised {type(error).__name__}"
        for position in sorted(p for p in tests_at if p > index):
            if why:
                break
            why = _failed(_run_tests(tests_at[position], namespace))
        exec(compile(_code(source), f"<cell {index}>", "exec"), namespace)  # undo
        place = f"cell {index} line {mutant.line} `{mutant.code}`: {mutant.description}"
        reason = EQUIVALENT.get((lab_id, mutant.code, mutant.description))
        print(f"  {lab_id} [{number}/{len(chosen)}] {'killed' if why else 'SURVIVED'}  {place}",
              file=sys.stderr, flush=True)
        if not why and reason:
            equivalent.append(f"{place} ({reason})")
        elif not why:
            survivors.append(place)
    scored = len(chosen) - len(equivalent)
    killed = scored - len(survivors)
    return {"lab": lab_id, "generated": len(candidates), "graded": len(chosen), "killed": killed,
            "scored": scored, "score": 100.0 * killed / max(1, scored), "survivors": survivors,
            "equivalent": equivalent,
            "seconds": round(time.monotonic() - started, 1)}


def _in_subprocess(lab_id: str, limit: int, seed: int) -> dict:
    """Run :func:`work` in a fresh interpreter at the smoke size, as the grader's kernel is."""
    from utils.labs.notebooks import TEST_ENV

    env = {**os.environ, **TEST_ENV, "COURSE_SIZE": "smoke", "COURSE_GRADING": "1",
           "MPLBACKEND": "Agg"}
    env.pop("COURSE_QUICK", None)
    with tempfile.TemporaryDirectory(prefix="mutation-") as folder:
        out = Path(folder, "result.json")
        command = [sys.executable, "-m", "benchmarks.mutation", "--worker", lab_id,
                   "--limit", str(limit), "--seed", str(seed), "--result", str(out)]
        done = subprocess.run(command, env=env, cwd=labformat.ROOT, stdout=subprocess.DEVNULL)
        if done.returncode != 0 or not out.exists():
            return {"lab": lab_id, "error": f"the worker exited with status {done.returncode}"}
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", help="lab ids (default: every lab)")
    parser.add_argument("--limit", type=int, default=LIMIT, help="mutants graded per lab")
    parser.add_argument("--seed", type=int, default=0, help="which mutants are sampled")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE,
                        help="percent of mutants each lab must kill")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.worker:
        result = work(args.worker, args.limit, args.seed)
        args.result.write_text(json.dumps(result))
        return 0
    labs = args.labs or [path.stem for path in labformat.solution_paths()]
    for lab_id in labs:  # an unknown lab fails here, before any work
        try:
            labformat.find(lab_id)
        except LookupError as error:
            print(f"cannot run: {error}", file=sys.stderr)
            return 2
    failed = False
    for lab_id in labs:
        result = _in_subprocess(lab_id, args.limit, args.seed)
        if "error" in result:
            print(f"{lab_id}: {result['error']}")
            failed = True
            continue
        print(f"{lab_id}: {result['killed']} of {result['scored']} mutants killed "
              f"({result['score']:.1f}%; {result['graded']} graded of {result['generated']} "
              f"generated, {len(result['equivalent'])} equivalent; {result['seconds']:.0f} s)")
        for survivor in result["survivors"]:
            print(f"  survived: {survivor}")
        for survivor in result["equivalent"]:
            print(f"  equivalent: {survivor}")
        failed |= result["score"] < args.min_score
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
