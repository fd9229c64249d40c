"""House rules that are cheap to check: ruff-clean code and notebooks, importing utils is inert."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean_including_notebooks():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_importing_utils_has_no_side_effects(tmp_path):
    script = textwrap.dedent("""
        import random, sys
        import numpy as np
        import matplotlib
        rc_before = dict(matplotlib.rcParams)
        np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
        import utils
        from utils import (archtable, build, cache, checks, data, grade, gradeexec, gradekernel,
                           gradenotebook,
                           gradereport, idx, images, labformat, notebooks, pipeline, plotting,
                           quick, runtime, selfcheck, sources, training)
        assert dict(matplotlib.rcParams) == rc_before, "rcParams changed"
        assert (np.random.get_state()[1] == np_state).all(), "NumPy was seeded"
        assert random.getstate() == py_state, "random was seeded"
        assert "tensorflow" not in sys.modules, "TensorFlow imported at import time"
        print("inert")
    """)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "COURSE_CACHE_DIR": str(tmp_path / "cache"),
           "MPLCONFIGDIR": str(tmp_path / "matplotlib"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "inert"
    assert list(home.iterdir()) == [], "importing utils wrote files in the home folder"
    assert not (tmp_path / "cache").exists(), "importing utils created the data cache"
