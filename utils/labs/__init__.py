"""The lab machinery: authoring, building, self-checking and grading the labs.

Importing :mod:`utils.labs` has no side effects and imports no TensorFlow. The modules:

- :mod:`utils.labs.format`     -- the lab source format (solution markers, test cells,
  points); ``load_functions`` loads a lab's builders for a later notebook;
- :mod:`utils.labs.build`      -- generating the student labs from the solutions
  (``python -m utils.labs.build``);
- :mod:`utils.labs.selfcheck`  -- ``@test`` and ``check``, the self-checks in a lab
  (``utils.selfcheck`` is a compatibility alias for notebooks saved before the move);
- :mod:`utils.labs.notebooks`  -- executing notebooks for the tests and refreshing stored
  outputs (``python -m utils.labs.notebooks refresh``);
- :mod:`utils.labs.grade`      -- the autograder (``python -m utils.labs.grade``);
- :mod:`utils.labs.submission` -- loading a submission and assembling the notebook the
  grader runs;
- :mod:`utils.labs.kernel`     -- the grader's code inside the grading kernel;
- :mod:`utils.labs.execute`    -- running that notebook: a fresh kernel, time limits, a cap
  on output;
- :mod:`utils.labs.sandbox`    -- the bubblewrap sandbox around the grading kernel;
- :mod:`utils.labs.limits`     -- memory, CPU-time and task limits for the sandbox's tree;
- :mod:`utils.labs.report`     -- the instructors' reports (per submission and batch);
- :mod:`utils.labs.feedback`   -- what a student may see, and Gradescope's ``results.json``.
"""

__all__ = [
    "build",
    "execute",
    "feedback",
    "format",
    "grade",
    "kernel",
    "limits",
    "notebooks",
    "report",
    "sandbox",
    "selfcheck",
    "submission",
]
