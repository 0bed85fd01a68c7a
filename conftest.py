"""Repository-wide pytest hooks for running notebooks with nbval.

Library fixtures live in tests/conftest.py; this file only configures how notebooks run:
stderr is never compared, the sanitize file is found from any directory, and a failing
notebook cell is reported by the check it runs and the exception it raised, e.g.

    FAILED notebooks/02_attention_from_scratch.ipynb::Cell 7 - 02-check_softmax: NotImplementedError: ...
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

try:
    from nbval.plugin import IPyNbCell, IPyNbFile
except ImportError:  # without nbval no notebook is collected, and these hooks do nothing
    IPyNbCell = IPyNbFile = None

# Kernels started by nbval (and by tests/test_build.py) inherit this environment. jupyter_core
# warns about a path migration in every kernel unless this is set. MPLBACKEND is left unset, so
# ipykernel uses its inline backend and figures are drawn exactly as students see them.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

_CHECK_CALL = re.compile(r"\bchecks\s*\.\s*(check_\w+)\s*\(")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CHECKER_LINE = re.compile(r"^(CheckFailed|ExerciseNotDone): ")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b:?")


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the sanitize file named in pyproject.toml against the repository root.

    nbval opens it relative to the current directory, so `cd solutions && pytest x.ipynb`
    would otherwise not find `tests/nbval_sanitize.cfg`.
    """
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not Path(path).exists() and (config.rootpath / path).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / path)


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Never compare stderr: warnings and progress bars differ between machines."""
    if IPyNbFile is not None and isinstance(collector, IPyNbFile) and "stderr" not in collector.skip_compare:
        collector.skip_compare += ("stderr",)


def _headline(item: pytest.Item, exc: BaseException) -> str:
    """`<grade_id or check name>: <exception line>` for a failed notebook cell."""
    cell = item.cell
    label = cell.metadata.get("nbgrader", {}).get("grade_id")
    if not label:
        match = _CHECK_CALL.search(cell.source)
        label = match.group(1) if match else ""
    lines = [line.strip() for line in _ANSI.sub("", getattr(exc, "inner_traceback", None) or "").splitlines()]
    # A check's failure (transformer_lib.checks) is a few lines that start with its own exception line;
    # any other error is a traceback whose last exception line is the one that matters.
    checker = [i for i, line in enumerate(lines) if _CHECKER_LINE.match(line)]
    if checker:
        body = lines[checker[0]:]
        end = body.index("") if "" in body else len(body)
        return f"{label}: {' '.join(body[:end])}" if label else " ".join(body[:end])
    starts = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    error = " ".join(line for line in lines[starts[-1]:] if line) if starts else str(exc)
    error = error.rstrip(":")
    return f"{label}: {error}" if label else error


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Put the check's name and the exception first, so the short summary line shows them."""
    outcome = yield
    report = outcome.get_result()
    if (
        IPyNbCell is not None
        and isinstance(item, IPyNbCell)
        and report.failed
        and call.excinfo is not None
        and isinstance(report.longrepr, str)
    ):
        report.longrepr = f"{_headline(item, call.excinfo.value)}\n{report.longrepr}"
