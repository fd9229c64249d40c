"""The grader's sandbox, proved by attacks: each test is an attack of the kind it guards against.

Most attacks are cells added to Lab 0's completed notebook (NumPy only, so a kernel starts in
seconds), graded in ONE batch of ``python -m utils.labs.grade FOLDER``. An attack reports what it
could see by raising ``RuntimeError("PROBE {json}")``: the report's warnings carry the
message, the one channel a real attacker has. Malformed files sit in the same batch. The
limits (memory, CPU time, tasks) and the kernel's huge messages are tested on small crafted
notebooks run by :func:`utils.labs.execute.execute`, under cgroups and under the watcher.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import pytest

from utils.labs import build, execute, grade, sandbox
from utils.labs import format as labformat
from utils.labs import limits as sandboxlimits
from utils.labs import submission as gradenotebook

pytestmark = pytest.mark.skipif(
    sandbox.bwrap_problem() is not None, reason=f"no bubblewrap here: {sandbox.bwrap_problem()}"
)
LAB = labformat.find("lab0_perceptron")
FIXTURES = Path(__file__).parent / "fixtures" / "solutions"
LIMITS = ["--timeout", "90", "--cell-timeout", "40", "--test-timeout", "20", "--memory-gb", "2"]
MARKER = "left-behind-by-a-submission-7f3a"  # in the command line of the attack's process
PROBE = "raise RuntimeError('PROBE ' + json.dumps(found, separators=(',', ':')))"


def _attack(source: str) -> nbformat.NotebookNode:
    """Lab 0, completed, with ``source`` as a cell after the imports (before every exercise)."""
    nb = build.completed_version(LAB)
    nb.cells.insert(4, nbformat.v4.new_code_cell(textwrap.dedent(source)))
    return nb


def _probe(report: dict) -> dict:
    """What an attack found, from the warning its PROBE error left in the report."""
    for warning in report["warnings"]:
        if "raised RuntimeError: PROBE " in warning:
            return json.loads(warning.split("raised RuntimeError: PROBE ", 1)[1])
    raise AssertionError(f"no probe in {report['warnings']}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Listener:
    """A TCP server on every address of the host, counting the connections it gets."""

    def __init__(self):
        self.server = socket.create_server(("0.0.0.0", 0))
        self.server.settimeout(0.2)
        self.port, self.accepted, self._stop = self.server.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                self.server.accept()[0].close()
                self.accepted += 1
            except OSError:
                pass

    def close(self):
        self._stop = True
        self.thread.join()
        self.server.close()


def _host_address() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # picks the outgoing interface; sends nothing
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def _submissions(folder: Path, out: Path, solutions: Path, port: int) -> dict:
    kit = labformat.ROOT
    return {
        "completed": build.completed_version(LAB),
        "leftover_rewrites_reports": _attack(f"""
            import json, subprocess, sys
            code = ("import pathlib, sys, time\\ntime.sleep(3)\\n"
                    "for path in sys.argv[2:]:\\n"
                    "    try:\\n        pathlib.Path(path).write_text('{{\\"total\\": 99}}')\\n"
                    "    except OSError:\\n        pass\\ntime.sleep(120)")
            targets = [{str(out / "leftover_rewrites_reports.json")!r},
                       {str(out / "summary.json")!r}, {str(out / "summary.csv")!r}]
            process = subprocess.Popen([sys.executable, "-c", code, {MARKER!r}, *targets],
                                       start_new_session=True, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            found = {{"spawned": process.pid}}
            {PROBE}"""),
        "reads_and_sabotages_others": _attack(f"""
            import json, os, pathlib
            def attempt(action):
                try:
                    action()
                    return "done"
                except Exception as error:
                    return type(error).__name__
            classmate = pathlib.Path({str(folder / "completed.ipynb")!r})
            found = {{
                "folder": os.path.exists({str(folder)!r}),
                "solutions": os.path.exists({str(solutions)!r}),
                "kit_solutions": os.path.exists({str(kit / "solutions")!r}),
                "git": os.path.exists({str(kit / ".git")!r}),
                "out": os.path.exists({str(out)!r}),
                "sabotage": attempt(lambda: classmate.write_text("{{}}")),
                "tmp": sorted(name[:9] for name in os.listdir("/tmp")),
                "home": os.listdir("/root"),
            }}
            {PROBE}"""),
        "signals_the_grader": _attack(f"""
            import json, os, signal
            def attempt(signum):
                try:
                    os.kill({os.getpid()}, signum)
                    return "sent"
                except OSError as error:
                    return type(error).__name__
            found = {{"stop": attempt(signal.SIGSTOP), "kill": attempt(signal.SIGKILL),
                      "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
            {PROBE}"""),
        "writes_outside": _attack(f"""
            import glob, json, pathlib
            targets = {{"kit": {str(kit / "utils" / "planted_by_submission.py")!r},
                        "pyc": {str(kit / "utils" / "__pycache__" / "planted.cpython-311.pyc")!r},
                        "out": {str(out / "planted_by_submission.json")!r},
                        "root": {str(kit / "planted_by_submission.txt")!r},
                        "usr": "/usr/planted_by_submission",
                        "sockets": glob.glob("/tmp/grade-sbx-*")[0] + "/planted"}}
            found = {{}}
            for name, path in targets.items():
                try:
                    pathlib.Path(path).write_text("planted")
                    found[name] = "written"
                except OSError as error:
                    found[name] = type(error).__name__[:10]
            pathlib.Path("/tmp/work/mine.txt").write_text("its own folder is writable")
            {PROBE}"""),
        "reaches_the_network": _attack(f"""
            import json, socket
            found = {{}}
            for host in ("127.0.0.1", {_host_address()!r}):
                try:
                    socket.create_connection((host, {port}), timeout=3).close()
                    found[host] = "connected"
                except OSError as error:
                    found[host] = type(error).__name__
            {PROBE}"""),
        "memory_hungry_children": _attack("""
            import json, subprocess, sys
            # Three children of 1 GiB each: each is under the kernel's 2 GiB RLIMIT_AS,
            # together they are over the sandbox's 2 GiB.
            code = "import time\\nb = b'x' * (1 << 30)\\ntime.sleep(4)"
            children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
            found = {"codes": sorted(child.wait() for child in children)}
            """ + PROBE),
        # Malformed files, each one error row.
        "nested": '{"cells": [], "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "source_not_text": _malformed(lambda raw: raw["cells"][3].update(source=12345)),
        "course_is_a_list": _malformed(lambda raw: raw["metadata"].update(course=["lab0"])),
        "course_is_a_string": _malformed(lambda raw: raw["metadata"].update(course="lab0")),
        # Graded normally, where they used to crash or hang the grader.
        os.fsdecode(b"caf\xe9_not_utf8"): build.completed_version(LAB),
        "backtracking_review": _attack(" \n" * 100_000 + "import sys  # sys.modules"),
    }


def _malformed(change) -> str:
    raw = json.loads(nbformat.writes(build.completed_version(LAB)))
    change(raw)
    return json.dumps(raw)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox")
    folder, out, solutions = root / "submissions", root / "grades", root / "solutions"
    folder.mkdir()
    solutions.mkdir()
    (solutions / "lab0_perceptron.ipynb").write_bytes(
        (labformat.SOLUTIONS_DIR / "lab0_perceptron.ipynb").read_bytes()
    )
    listener = _Listener()
    for name, content in _submissions(folder, out, solutions, listener.port).items():
        text = content if isinstance(content, str) else nbformat.writes(content)
        (folder / f"{name}.ipynb").write_text(text, encoding="utf-8")
    kit_before = sorted(p.name for p in (labformat.ROOT / "utils").rglob("*"))
    classmate = _sha(folder / "completed.ipynb")
    code = grade.main([str(folder), "--out", str(out), "--solutions", str(solutions), *LIMITS,
                       "--jobs", "2", "--feedback", str(out / "feedback")])  # fmt: skip
    listener.close()
    written = {p: _sha(p) for p in (out / "summary.json", out / "summary.csv")}
    reports = {Path(r["file"]).stem: r for r in json.loads((out / "summary.json").read_text())}
    return {"code": code, "reports": reports, "out": out, "folder": folder, "written": written,
            "kit_before": kit_before, "classmate": classmate, "listener": listener}  # fmt: skip


def test_every_submission_has_a_row_and_clean_ones_earn_full_marks(batch):
    assert batch["code"] == grade.EXIT_GRADED
    reports = batch["reports"]
    assert len(reports) == 13, sorted(reports)
    report = reports["completed"]
    assert report["total"] == report["max_total"] == 12 and report["errors"] == []
    assert report["sandbox"].startswith("bubblewrap; limits by "), report["sandbox"]
    for name in ("leftover_rewrites_reports", "reads_and_sabotages_others", "signals_the_grader",
                 "writes_outside", "reaches_the_network", "memory_hungry_children"):  # fmt: skip
        assert reports[name]["total"] == 12, reports[name]  # the attacks cost the grader nothing


def test_a_process_left_running_cannot_rewrite_the_reports(batch):
    assert _probe(batch["reports"]["leftover_rewrites_reports"])["spawned"] > 0
    time.sleep(4)  # the left-behind process would write 3 s after it started
    assert {p: _sha(p) for p in batch["written"]} == batch["written"]
    report = json.loads((batch["out"] / "leftover_rewrites_reports.json").read_text())
    assert report["total"] == 12
    survivors = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if MARKER.encode() in cmdline.read_bytes():
                survivors.append(cmdline.parent.name)
        except OSError:
            pass
    assert survivors == [], "a process of the sandbox outlived it"


def test_a_submission_sees_no_other_submission_and_no_solutions(batch):
    found = _probe(batch["reports"]["reads_and_sabotages_others"])
    assert found["folder"] is found["solutions"] is found["kit_solutions"] is False, found
    assert found["git"] is found["out"] is False, found
    assert found["sabotage"] != "done", found
    assert set(found["home"]) <= {".pyenv", ".keras", ".cache", ".local"}, found  # shown ones
    # Its sockets and its folder, and the top folder of a kit that lives under /tmp.
    kit = labformat.ROOT.resolve()
    top = [kit.relative_to("/tmp").parts[0][:9]] if Path("/tmp") in kit.parents else []
    assert found["tmp"] in (sorted(["grade-sbx", "work", *top]), sorted(["work", *top])), found
    assert _sha(batch["folder"] / "completed.ipynb") == batch["classmate"]


def test_a_submission_cannot_signal_the_grader(batch):
    found = _probe(batch["reports"]["signals_the_grader"])
    assert found["stop"] == found["kill"] == "ProcessLookupError", found
    assert os.getpid() not in found["pids"] and max(found["pids"]) < 100, found


def test_a_submission_cannot_write_outside_its_temporary_folder(batch):
    found = _probe(batch["reports"]["writes_outside"])
    assert "written" not in found.values(), found
    assert sorted(p.name for p in (labformat.ROOT / "utils").rglob("*")) == batch["kit_before"]
    assert not (batch["out"] / "planted_by_submission.json").exists()
    assert not (labformat.ROOT / "planted_by_submission.txt").exists()


def test_the_network_is_unreachable(batch):
    found = _probe(batch["reports"]["reaches_the_network"])
    assert "connected" not in found.values() and len(found) >= 1, found
    assert batch["listener"].accepted == 0


def test_a_memory_hungry_child_is_killed_and_the_kernel_goes_on(batch):
    report = batch["reports"]["memory_hungry_children"]
    assert -9 in _probe(report)["codes"], _probe(report)  # SIGKILL at the tree's cap
    assert report["total"] == 12 and report["errors"] == []
    if "cgroup" in report["sandbox"]:
        assert any("killed at its memory cap of 2 GiB" in w for w in report["warnings"]), report


@pytest.mark.parametrize(
    "name, needle",
    [
        ("nested", "nested too deeply"),
        ("source_not_text", "the source of cell 4 is a int, not text"),
        ("course_is_a_list", "metadata.course is a list, not a mapping"),
        ("course_is_a_string", "metadata.course is a str, not a mapping"),
    ],
)
def test_a_malformed_file_is_one_clear_error_row(batch, name, needle):
    report = batch["reports"][name]
    assert report["total"] == 0 and len(report["errors"]) == 1, report
    assert needle in report["errors"][0] and "grader error" not in report["errors"][0]


def test_a_file_name_that_is_not_utf8_is_graded_and_printed(batch):
    report = batch["reports"]["caf\\xe9_not_utf8"]  # the name, made printable
    assert report["total"] == 12 and report["file"].endswith("caf\\xe9_not_utf8.ipynb")
    assert "caf\\xe9_not_utf8.ipynb" in (batch["out"] / "summary.csv").read_text()
    assert (batch["out"] / os.fsdecode(b"caf\xe9_not_utf8.json")).exists()


def test_a_cell_built_to_backtrack_the_review_is_graded_quickly(batch):
    report = batch["reports"]["backtracking_review"]
    assert report["total"] == 12 and report["seconds"] < 60, report["seconds"]
    assert any("changes modules or builtins" in note for note in report["review"])


def test_the_review_runs_in_linear_time():
    nb = _attack(" \n" * 100_000 + "\n" * 100_000 + "checks.x" + " " * 100_000)
    nb.cells.append(nbformat.v4.new_code_cell("x" * (gradenotebook.MAX_REVIEWED + 10)))
    started = time.monotonic()
    notes = gradenotebook.review(nb)
    assert time.monotonic() - started < 5
    assert any("only the first 200,000 were reviewed" in note for note in notes)


def test_escape_sequences_never_reach_the_terminal(tmp_path, capfd):
    flood = "\x1b]0;owned\x07\x1b[2J\r\u202e" * 500  # 10 kB: over MAX_TEXT, under 1 MB
    nb = _attack(f"""
        import os, sys
        os.write(1, {flood!r}.encode())  # straight to the kernel's own file descriptors
        os.write(2, {flood!r}.encode())
        print({flood!r})
        raise ValueError({flood!r})""")
    cell = next(c for c in nb.cells if "def perceptron_predict" in c.source)
    cell.source += f"\n\nraise ValueError({flood!r})"  # a test's message, from a test
    submission = tmp_path / "esc\x1b[31m\x07.ipynb"
    nbformat.write(nb, str(submission))
    code = grade.main([str(submission), "--out", str(tmp_path / "grades"), *LIMITS])
    assert code == grade.EXIT_GRADED
    printed = capfd.readouterr()
    for stream in (printed.out, printed.err):
        assert not set(stream) & {"\x1b", "\x07", "\r", "\u202e"}
    assert "esc\\x1b[31m\\x07.ipynb" in printed.out and len(printed.out) < 40_000
    report = json.loads((tmp_path / "grades" / "esc\x1b[31m\x07.json").read_text())
    texts = report["warnings"] + [t["message"] for ex in report["exercises"] for t in ex["tests"]]
    assert all("\x1b" not in text and len(text) <= 2000 for text in texts)
    assert any("\\x1b]0;owned\\x07" in text for text in texts)


def _notebook(*sources: str):
    kernel = {"name": "python3", "display_name": "Python 3"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernel})
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(source)) for source in sources]
    return nb


def _run(nb, limits: sandboxlimits.Limits, cgroups: bool, timeout: float = 60):
    box = sandbox.Bubblewrap(limits, prefer_cgroups=cgroups)
    assert ("cgroup" in box.description) == cgroups or not cgroups
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(labformat.ROOT)}
    return execute.execute(nb, "/tmp", env, timeout, cell_timeout=30, sandbox=box)


def _text(nb, index: int) -> str:
    return "".join(out.get("text", "") for out in nb.cells[index].outputs)


def test_the_kit_cache_is_read_from_the_host_and_written_privately(tmp_path, monkeypatch):
    import numpy as np

    from utils import cache

    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    cache.save_arrays("host_dataset", {"a": np.arange(3)})
    nb = _notebook("""
        import numpy as np
        from utils import cache
        print(cache.load_arrays("host_dataset")["a"].tolist())
        cache.save_arrays("decoded_in_the_sandbox", {"b": np.ones(2)})
        print(sorted(path.name for path in cache.cache_dir().iterdir()))""")
    result = _run(nb, sandboxlimits.Limits(memory_bytes=2 << 30), cgroups=True)
    assert result.problems == [] and _text(nb, 0).splitlines() == [
        "[0, 1, 2]", "['decoded_in_the_sandbox.npz', 'host_dataset.npz']"
    ], _text(nb, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host_dataset.npz"]


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroups", "watcher"])
def test_the_memory_cap_holds_for_the_whole_tree(cgroups):
    nb = _notebook("""
        import subprocess, sys
        code = "import time\\nb = b'x' * (600 << 20)\\ntime.sleep(3)"
        children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
        print(sorted(child.wait() for child in children))""", "print('the kernel goes on')")
    result = _run(nb, sandboxlimits.Limits(memory_bytes=1 << 30), cgroups)
    assert "-9" in _text(nb, 0), _text(nb, 0)
    assert _text(nb, 1) == "the kernel goes on\n" and not result.died
    assert any("memory" in note for note in result.sandbox), result.sandbox


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroups", "watcher"])
def test_the_cpu_time_cap_kills_the_whole_tree(cgroups):
    nb = _notebook("""
        import subprocess, sys
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        for child in busy:
            child.wait()""", "print('not reached')")
    started = time.monotonic()
    result = _run(nb, sandboxlimits.Limits(cpu_seconds=3), cgroups)
    assert result.died and time.monotonic() - started < 25
    assert any("more than its 3 s of CPU time" in note for note in result.sandbox)
    assert _text(nb, 1) == ""


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroups", "watcher"])
def test_the_task_cap_stops_a_fork_bomb(cgroups):
    nb = _notebook("""
        import threading, time
        started = 0
        try:
            for _ in range(400):
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        print(started)
        time.sleep(3)""")
    result = _run(nb, sandboxlimits.Limits(tasks=64), cgroups)
    if cgroups:  # the kernel refuses the threads past the cap and goes on
        assert int(_text(nb, 0)) < 64 and any("refused" in n for n in result.sandbox)
    else:  # the watcher kills the sandbox that went past it
        assert result.died and any("processes and threads" in n for n in result.sandbox)


def test_a_huge_message_from_the_kernel_does_not_fill_the_grader():
    script = textwrap.dedent(f"""
        import json, nbformat, os, resource
        from utils.labs import execute, sandbox, limits as sandboxlimits
        kernel = {{"name": "python3", "display_name": "Python 3"}}
        nb = nbformat.v4.new_notebook(metadata={{"kernelspec": kernel}})
        nb.cells = [nbformat.v4.new_code_cell(s) for s in (
            "from IPython.display import display\\n"
            "for _ in range(100):\\n"
            "    display({{'text/plain': 'y' * (3 << 20)}}, raw=True)",  # each under the cap
            "display({{'text/plain': 'x' * (300 << 20)}}, raw=True)",  # one message of 300 MB
            "print('after')")]
        box = sandbox.Bubblewrap(sandboxlimits.Limits(memory_bytes=3 << 30))
        env = {{"PATH": os.environ["PATH"], "PYTHONPATH": {str(labformat.ROOT)!r}}}
        result = execute.execute(nb, "/tmp", env, 120, cell_timeout=60, sandbox=box)
        peak = [int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM")][0] << 10
        print(json.dumps({{"peak": peak, "problems": result.problems}}))""")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=labformat.ROOT)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["peak"] < 400 << 20, found["peak"]  # without the caps: well over 1 GB
    assert any("cell 1 sent a message of more than 4,194,304 bytes" in p for p in found["problems"])


def test_without_a_sandbox_the_grader_refuses_unless_told(tmp_path, monkeypatch, capsys):
    submission = tmp_path / "submission.ipynb"
    nbformat.write(build.completed_version(labformat.read(FIXTURES / "fixture_lab.ipynb")),
                   str(submission))  # fmt: skip
    args = [str(submission), "--solutions", str(FIXTURES), "--out", str(tmp_path / "grades"),
            "--feedback", str(tmp_path / "feedback"), "--quiet"]  # fmt: skip
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bwrap is not installed")
    assert grade.main(args) == grade.EXIT_NO_SANDBOX
    error = capsys.readouterr().err
    assert "no sandbox can run here: bwrap is not installed" in error and "--no-sandbox" in error
    assert not (tmp_path / "grades").exists()
    assert grade.main([*args, "--sandbox", "bwrap"]) == grade.EXIT_NO_SANDBOX
    with pytest.raises(sandbox.SandboxUnavailable):
        grade.grade_folder(tmp_path, tmp_path / "grades", solutions_dir=FIXTURES)
    assert grade.main([*args, "--no-sandbox"]) == grade.EXIT_GRADED
    assert "graded without a sandbox" in capsys.readouterr().err
    report = json.loads((tmp_path / "grades" / "submission.json").read_text())
    assert report["sandbox"] == "none" and report["total"] == 3.0
    assert any("graded without a sandbox (--no-sandbox)" in w for w in report["warnings"])


def test_bwrap_is_checked_once_and_unknown_kinds_are_refused():
    assert sandbox.bwrap_problem() is None and sandbox.bwrap_problem.cache_info().hits >= 1
    assert sandbox.choose("bwrap") is sandbox.Bubblewrap and sandbox.choose("none") is None
    with pytest.raises(ValueError, match="sandbox='docker'"):
        sandbox.choose("docker")
