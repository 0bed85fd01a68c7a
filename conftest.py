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


# -- how long each notebook took: a table at the end of the run -------------------------------------------
COURSE_BUDGET_S = 600  # the whole course, every notebook executed, on a 2-core CPU (issue 10)
_notebook_seconds: dict[str, float] = {}
_notebook_cells: dict[str, int] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add up setup + call + teardown of every notebook cell (kernel start included) per notebook file.

    Runs in the main process, under pytest-xdist too (the workers send their reports there).
    """
    path, sep, _ = report.nodeid.partition(".ipynb::")
    if sep:
        _notebook_seconds[path + ".ipynb"] = _notebook_seconds.get(path + ".ipynb", 0.0) + report.duration
        _notebook_cells[path + ".ipynb"] = _notebook_cells.get(path + ".ipynb", 0) + (report.when == "call")


def notebook_time_table(seconds: dict[str, float], cells: dict[str, int], budget: float = COURSE_BUDGET_S) -> list[str]:
    """The lines of the per-notebook time table, in course order, with the total against ``budget``."""
    width = max(len(name) for name in seconds)
    lines = [f"{'notebook':<{width}}  {'cells':>5}  {'seconds':>7}"]
    lines += [f"{name:<{width}}  {cells.get(name, 0):>5}  {secs:>7.1f}" for name, secs in sorted(seconds.items())]
    total = sum(seconds.values())
    verdict = "within" if total <= budget else "OVER"
    lines.append(f"{'total':<{width}}  {sum(cells.values()):>5}  {total:>7.1f}  ({verdict} the {budget:.0f} s budget)")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook run times (nbval, kernel start included)")
    for line in notebook_time_table(_notebook_seconds, _notebook_cells):
        terminalreporter.write_line(line)
    workers = getattr(config.option, "numprocesses", None)
    if workers:
        terminalreporter.write_line(f"(with {workers} pytest-xdist workers the notebooks run {workers} at a time, "
                                    "so each one shares the CPU)")
