"""Which assignment a submission is, and the notebook that is actually run to grade it.

The course's student notebooks (``notebooks/`` by default) are the pristine copies. A submission is matched
to one of them by the nbgrader ``grade_id`` s in its cells' metadata (the file name plays no part), then the
notebook that runs is built from the pristine copy, cell by cell: every cell comes from the pristine
notebook except the exercise cells (nbgrader ``solution: true``), which are the student's cells with the same
grade_id. So a check cell always runs as the course wrote it, whatever the student did to it (an edited or
deleted check cell is reported by comparing checksums), and a cell the student added, changed or deleted
outside the exercises can do no harm (it is not run; the report says so). Around each check cell the
grader adds two hidden cells (see :mod:`transformer_lib.grade.guard`).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .names import parse

__all__ = ["NotGraded", "Exercise", "Assignment", "Plan", "load_course", "read_notebook", "identify", "build_plan",
           "cell_digest", "MAX_NOTEBOOK_BYTES"]

MAX_NOTEBOOK_BYTES = 50 * 2**20  # a submission larger than this is not read (outputs of a runaway loop)
_CHECK_CALL = re.compile(r"\bchecks\s*\.\s*(check_\w+)\s*\(")
_NBVAL_SKIP = re.compile(r"^\s*#\s*NBVAL_SKIP\s*$", re.MULTILINE)
_PREFIX = re.compile(r"^(\d+)(?:_|$)")


class NotGraded(Exception):
    """A submission that cannot be graded at all; ``str()`` says why, in one line."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of an assignment: the student's cell and the check cell after it."""

    grade_id: str  # of the exercise cell, e.g. "02-softmax"
    check_id: str  # of the check cell, e.g. "02-check_softmax": the CSV's grade_id column
    check: str  # the check function called, e.g. "check_softmax"
    points: float
    exercise_cell: int  # indices in the pristine notebook
    check_cell: int


@dataclass
class Assignment:
    """A pristine student notebook with its exercises, in notebook order."""

    name: str  # the file stem, e.g. "02_attention_from_scratch"
    nb: nbformat.NotebookNode
    exercises: list[Exercise]

    @property
    def grade_ids(self) -> set[str]:
        return {e.grade_id for e in self.exercises} | {e.check_id for e in self.exercises}


@dataclass
class Plan:
    """What runs for one submission, and what building it found."""

    assignment: Assignment
    nb: nbformat.NotebookNode  # the notebook to execute; each cell's metadata["grading"] gives its role
    student_cells: dict[str, list[str]]  # exercise grade_id -> the student's sources for it
    flags: dict[str, list[str]] = field(default_factory=dict)  # check_id -> flags
    notes: list[str] = field(default_factory=list)  # about the whole notebook


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def load_course(folder: Path) -> list[Assignment]:
    """The assignments in ``folder``: every notebook with at least one exercise and its check cell."""
    course = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        by_id = {_nbgrader(c).get("grade_id"): i for i, c in enumerate(nb.cells) if _nbgrader(c).get("grade_id")}
        exercises = []
        for i, cell in enumerate(nb.cells):
            meta = _nbgrader(cell)
            if not (meta.get("solution") and cell.cell_type == "code"):
                continue
            later = [j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code"]
            j = later[0] if later else None
            check = _nbgrader(nb.cells[j]) if j is not None else {}
            calls = _CHECK_CALL.findall(nb.cells[j].source) if j is not None else []
            if check.get("grade") and calls and by_id.get(check.get("grade_id")) == j:
                exercises.append(Exercise(meta["grade_id"], check["grade_id"], calls[0], check.get("points", 0), i, j))
        if exercises:
            course.append(Assignment(path.stem, nb, exercises))
    return course


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a submitted notebook; raise :class:`NotGraded` with the reason if it cannot be read."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise NotGraded(f"the file is {size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB a notebook "
                        "may have (clear its outputs and hand it in again)")
    try:
        text = path.read_bytes().decode("utf-8")
        json.loads(text)  # to say so when it is not JSON at all
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise NotGraded(f"not a notebook: the file is not valid JSON ({str(err).splitlines()[0][:120]})") from None
    try:
        nb = nbformat.reads(text, as_version=4)
        cells = [c for c in nb.cells if isinstance(c.get("source"), str)]
    except Exception as err:  # noqa: BLE001 - any malformed structure
        raise NotGraded(f"not a notebook: {type(err).__name__}: {str(err).splitlines()[0][:120]}") from None
    if len(cells) != len(nb.cells) or not isinstance(nb.get("cells"), list):
        raise NotGraded("not a notebook: cells without a source")
    return nb


def _student_ids(nb) -> dict[str, list[int]]:
    """grade_id -> indices of the submission's cells that carry it."""
    found: dict[str, list[int]] = {}
    for i, cell in enumerate(nb.cells):
        grade_id = _nbgrader(cell).get("grade_id")
        if isinstance(grade_id, str):
            found.setdefault(grade_id, []).append(i)
    return found


def identify(nb, course: list[Assignment]) -> Assignment:
    """The assignment whose grade_ids the submission shares most; :class:`NotGraded` if none or a tie."""
    ids = set(_student_ids(nb))
    scores = sorted(((len(ids & a.grade_ids), a.name, a) for a in course), key=lambda s: s[:2], reverse=True)
    if not scores or scores[0][0] == 0:
        names = [a.name for a in course]
        known = ", ".join(names) if len(names) <= 3 else f"{names[0]} ... {names[-1]}, {len(names)} in all"
        raise NotGraded(f"no grade_id of any assignment ({known}): not made from a course notebook that has "
                        "exercises, or its cell metadata was removed")
    if len(scores) > 1 and scores[1][0] == scores[0][0]:
        raise NotGraded(f"its grade_ids match {scores[0][1]} and {scores[1][1]} equally")
    return scores[0][2]


def cell_digest(cell) -> str:
    """SHA-256 of what makes a check cell: its type, its source (line endings and trailing spaces normalised)
    and its nbgrader grade/locked/points (the idea of nbgrader's ``compute_checksum``)."""
    source = "\n".join(line.rstrip() for line in cell.get("source", "").replace("\r\n", "\n").strip().split("\n"))
    meta = _nbgrader(cell)
    key = [cell.get("cell_type"), source, meta.get("grade"), meta.get("locked"), meta.get("points")]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def import_lines(source: str) -> list[str]:
    """The top-level import statements of a cell, one line each (IPython magics ignored)."""
    tree = parse(source)
    return [] if tree is None else [ast.unparse(node) for node in tree.body
                                    if isinstance(node, (ast.Import, ast.ImportFrom))]


def _argument_names(source: str) -> list[str]:
    """Names passed to the check (``softmax`` in ``checks.check_softmax(softmax)``): the student's objects,
    which re-running the notebook's imports must not replace."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return sorted({n.id for c in calls for a in [*c.args, *(k.value for k in c.keywords)] for n in ast.walk(a)
                   if isinstance(n, ast.Name)})


def _cell(source: str, role: str, **info) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["grading"] = {"role": role, **info}
    return cell


def setup_source(guard_path: str, package_dir: str) -> str:
    """The first cell: load the guard from its file, record the pristine state."""
    return (f"def __grading_setup():\n    import importlib.util, sys\n"
            f"    spec = importlib.util.spec_from_file_location('__grade_guard__', {guard_path!r})\n"
            f"    guard = importlib.util.module_from_spec(spec)\n    spec.loader.exec_module(guard)\n"
            f"    sys.modules['__grade_guard__'] = guard\n    guard.snapshot({package_dir!r})\n"
            f"__grading_setup()\ndel __grading_setup")


def build_plan(assignment: Assignment, submission, *, stem: str = "", guard_path: str = "",
               package_dir: str = "") -> Plan:
    """The notebook to run for ``submission`` (see the module docstring) and what building it found."""
    student_ids = _student_ids(submission)
    by_cell_id = {c.get("id"): i for i, c in enumerate(submission.cells) if c.get("id")}
    exercises = {e.exercise_cell: e for e in assignment.exercises}
    checks = {e.check_cell: e for e in assignment.exercises}
    cells = [_cell(setup_source(guard_path, package_dir), "setup")]
    plan = Plan(assignment, nbformat.v4.new_notebook(), {})
    used: set[int] = set()
    imports: list[str] = []
    for i, pristine in enumerate(assignment.nb.cells):
        if pristine.cell_type != "code" or _NBVAL_SKIP.search(pristine.source):
            continue
        if i in exercises:
            e = exercises[i]
            mine = _matching(pristine, student_ids, by_cell_id)
            used.update(mine)
            plan.student_cells[e.grade_id] = [submission.cells[j].source for j in mine
                                              if submission.cells[j].cell_type == "code"]
            if not plan.student_cells[e.grade_id]:
                plan.flags.setdefault(e.check_id, []).append("exercise-missing")
            for source in plan.student_cells[e.grade_id] or [pristine.source]:
                cells.append(_cell(source, "exercise", exercise=e.grade_id, check=e.check_id, stub=pristine.source))
            if len(plan.student_cells[e.grade_id]) > 1:
                plan.notes.append(f"{len(plan.student_cells[e.grade_id])} cells carry the grade_id {e.grade_id}: "
                                  "all of them ran, in order")
            continue
        if i in checks:
            e = checks[i]
            found = _matching(pristine, student_ids, by_cell_id)
            if not found:
                plan.flags.setdefault(e.check_id, []).append("check-deleted")
            elif cell_digest(submission.cells[found[0]]) != cell_digest(pristine):
                plan.flags.setdefault(e.check_id, []).append("check-edited")
            used.update(found)
            guard = (f"import sys as __grading\n__grading.modules['__grade_guard__'].restore("
                     f"{chr(10).join(imports)!r}, keep={_argument_names(pristine.source)!r})")
            cells.append(_cell(guard, "guard", check=e.check_id, exercise=e.grade_id))
            cells.append(_cell(pristine.source, "check", check=e.check_id, exercise=e.grade_id))
            cells.append(_cell("import sys as __grading\n__grading.modules['__grade_guard__'].verify()", "verify",
                               check=e.check_id, exercise=e.grade_id))
            continue
        imports += import_lines(pristine.source)
        cells.append(_cell(pristine.source, "pristine"))
    plan.nb.cells = cells
    unchanged = {c.source.strip() for c in assignment.nb.cells if c.cell_type == "code"}
    used.update(j for j, c in enumerate(submission.cells) if c.source.strip() in unchanged)
    plan.nb.metadata = copy.deepcopy(assignment.nb.metadata)
    ignored = [j for j, c in enumerate(submission.cells)
               if c.cell_type == "code" and j not in used and c.source.strip()]
    if ignored:
        plan.notes.append(f"{len(ignored)} code cell(s) that you added or changed outside the exercises did not run: "
                          "the grader runs the course's version of every cell except the exercise cells")
    number, assigned = _PREFIX.match(stem), _PREFIX.match(assignment.name)
    if number and assigned and number.group(1) != assigned.group(1):
        plan.notes.append(f"the file name says {number.group(1)}, its cells are those of {assignment.name}")
        for e in assignment.exercises:
            plan.flags.setdefault(e.check_id, []).append("name-mismatch")
    return plan


def _matching(pristine, student_ids: dict, by_cell_id: dict) -> list[int]:
    """The submission's cells for a pristine cell: those with its grade_id, else the one with its cell id."""
    grade_id = _nbgrader(pristine).get("grade_id")
    return student_ids.get(grade_id) or ([by_cell_id[pristine.id]] if pristine.get("id") in by_cell_id else [])
