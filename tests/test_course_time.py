"""The per-notebook time table that `pytest` prints at the end of a run with notebooks (conftest.py); the run on
the fixture notebooks that shows it is tests/test_build.py::TestNbvalSettings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_table_without_notebooks():
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q",
                             "tests/test_course_time.py::test_table_lines"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "notebook run times" not in result.stdout, result.stdout[-2000:]


def test_table_lines():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")  # the repository's
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    notebook_time_table = module.notebook_time_table
    lines = notebook_time_table({"b.ipynb": 400.0, "a.ipynb": 250.5}, {"a.ipynb": 3, "b.ipynb": 4}, budget=600)
    assert lines[1].split() == ["a.ipynb", "3", "250.5"] and lines[2].split() == ["b.ipynb", "4", "400.0"]
    assert lines[-1].split() == ["total", "7", "650.5", "(OVER", "the", "600", "s", "budget)"]
