"""Tests of tools/build_notebooks.py and of the student notebooks it writes.

Every check runs on the real course (solutions/ -> notebooks/) when solutions/ has notebooks,
and always on the fixture tests/fixtures/solutions/99_fixture.ipynb -> tests/fixtures/notebooks/.
The fixture's student version is a committed golden file: rebuild it with
`python tools/build_notebooks.py --src tests/fixtures/solutions --dst tests/fixtures/notebooks`.

(a) notebooks/ is what the build makes, byte for byte; (b) no student notebook gives a solution
away; (c) a student notebook with the solutions pasted back is the code nbval runs (executed again
only where hidden tests make it differ); (d) as shipped, it runs up to the first exercise's check
cell, which fails with ExerciseNotDone (a NotImplementedError); (e) nbgrader metadata and cell ids,
and the first cell's `require_version` call; (f) unit tests of the build; (g) nbgrader's own code
accepts the student notebooks and builds the same ones (skipped when nbgrader is not installed);
and the repository's nbval settings, run on the fixture. (d) executes each notebook up to its first
check with nbclient.
"""

from __future__ import annotations

import ast
import copy
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import transformer_lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_notebooks as bn  # noqa: E402

FIXTURE_SRC = ROOT / "tests" / "fixtures" / "solutions"
FIXTURE_DST = ROOT / "tests" / "fixtures" / "notebooks"
FIXTURE = FIXTURE_SRC / "99_fixture.ipynb"
CELL_TIMEOUT = 600  # seconds, per cell

COURSES = [(FIXTURE_SRC, FIXTURE_DST)]
if any((ROOT / "solutions").glob("*.ipynb")):
    COURSES.insert(0, (ROOT / "solutions", ROOT / "notebooks"))


def _course_id(course: tuple[Path, Path]) -> str:
    return "fixture" if course[0] == FIXTURE_SRC else "course"


PAIRS = [
    pytest.param(src_path, dst / src_path.name, id=src_path.stem)
    for src, dst in COURSES
    for src_path in sorted(src.glob("*.ipynb"))
]
# notebooks with at least one exercise (notebook 00 has none)
EXERCISE_PAIRS = [p for p in PAIRS if bn.BEGIN_SOLUTION in p.values[0].read_text(encoding="utf-8")]


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _student(path: Path) -> nbformat.NotebookNode:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `python tools/build_notebooks.py`")
    return _read(path)


def _has_marker(source: str, marker: str) -> bool:
    return re.search(rf"^\s*#\s*{marker}\s*$", source, re.MULTILINE) is not None


def _prepare(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy to execute, mirroring nbval's markers.

    Cells marked NBVAL_SKIP are dropped; cells marked NBVAL_RAISES_EXCEPTION get nbclient's
    `raises-exception` tag, so they may raise.
    """
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and _has_marker(c.source, "NBVAL_SKIP"))]
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if _has_marker(cell.source, "NBVAL_RAISES_EXCEPTION") and "raises-exception" not in tags:
            tags.append("raises-exception")
    return nb


def _run(nb: nbformat.NotebookNode, cwd: Path) -> None:
    """Execute `nb` in place in this Python (like --nbval-current-env), from directory `cwd`.

    Raises nbclient's CellExecutionError at the first unexpected error.
    """
    from nbclient import NotebookClient

    from transformer_lib.grade.run import current_env_kernel

    client = NotebookClient(nb, km=current_env_kernel(), timeout=CELL_TIMEOUT, allow_errors=False)
    client.execute(cwd=str(cwd), stderr=subprocess.DEVNULL)


def _errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]


# --------------------------------------------------------------------------- (a) up to date


@pytest.mark.parametrize("course", COURSES, ids=_course_id)
def test_student_notebooks_are_up_to_date(course, tmp_path):
    """Building into a fresh directory gives the same files, byte for byte, as the committed ones."""
    src, dst = course
    assert bn.build(src, tmp_path, out=io.StringIO()) == 0
    built = {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    committed = {p.name: p.read_bytes() for p in dst.glob("*.ipynb")} if dst.is_dir() else {}
    hint = "run `python tools/build_notebooks.py`" if src.name == "solutions" else (
        f"run `python tools/build_notebooks.py --src {src.relative_to(ROOT)} --dst {dst.relative_to(ROOT)}`")
    assert sorted(committed) == sorted(built), f"the set of student notebooks differs; {hint}"
    stale = [name for name in built if built[name] != committed[name]]
    assert not stale, f"stale student notebooks {stale}; {hint}"
    assert bn.build(src, dst, check=True, out=io.StringIO()) == 0


# --------------------------------------------------------------------------- (b) no leaks


@pytest.mark.parametrize("solution_path, student_path", PAIRS)
def test_student_notebook_has_no_solution_code(solution_path, student_path):
    text = student_path.read_text(encoding="utf-8") if student_path.exists() else ""
    for marker in bn.MARKERS:
        assert marker not in text, f"{student_path.name} contains {marker!r}"
    leaks = bn.find_leaks(_read(solution_path), _student(student_path))
    assert not leaks, f"{student_path.name} gives away solution lines:\n" + "\n".join(leaks)


# --------------------------------------------------------------------------- (c) solved student runs


class TestSolvedStudentNotebook:
    """(c), a class of its own so that pytest-xdist (--dist loadscope) can run it beside (d)."""

    @pytest.mark.parametrize("solution_path, student_path", PAIRS)
    def test_runs_with_solutions_pasted_back(self, solution_path, student_path):
        """Paste each solution block back into the student's stubs, by cell id: the result must be the code nbval runs.

        Every code cell of the pasted-back notebook must equal its solutions cell minus the markers, cell for
        cell and in order. Then nbval's run of solutions/ is a run of this notebook, and executing it again
        would only double the suite's time. Only where hidden tests were removed does the student's code
        differ from what nbval ran: such a notebook (the fixture has one) is executed here, from notebooks/.
        """
        solution, student = _read(solution_path), _student(student_path)
        assert [c.id for c in student.cells] == [c.id for c in solution.cells], "cells added, removed or moved"
        hidden = False
        for cell, original in zip(student.cells, solution.cells):
            regions = bn.parse_regions(original.source)[1]
            hidden |= any(r.kind == "hidden" for r in regions)
            if cell.cell_type in ("code", "markdown") and any(r.kind == "solution" for r in regions):
                cell.source = bn.fill_in(cell.source, original.source, cell.cell_type)
            if cell.cell_type in ("code", "markdown"):
                # what the student runs is the solution minus markers and hidden tests, nothing else
                assert cell.source == bn.solution_only(original.source), f"cell {cell.id} differs from its solution"
        if hidden:
            _run(_prepare(student), cwd=student_path.parent)


# --------------------------------------------------------------------------- (d) shipped student stops


class TestShippedStudentNotebook:
    """(d), a class of its own so that pytest-xdist (--dist loadscope) can run it beside (c)."""

    @pytest.mark.parametrize("solution_path, student_path", EXERCISE_PAIRS)
    def test_stops_at_first_check(self, solution_path, student_path):
        """As shipped, everything before the first exercise runs; its check cell fails with NotImplementedError."""
        from nbclient.exceptions import CellExecutionError

        student = _student(student_path)
        roles = bn.cell_roles(_read(solution_path), solution_path.stem)
        checks = sorted(i for i, role in roles.items() if role.kind == "check")
        assert checks, f"{solution_path.name} has solution blocks but no check cell"
        first_check = student.cells[checks[0]].id
        run = _prepare(student)
        run.cells = run.cells[: [c.id for c in run.cells].index(first_check) + 1]
        with pytest.raises(CellExecutionError) as excinfo:
            _run(run, cwd=student_path.parent)
        # transformer_lib.checks raises ExerciseNotDone, a NotImplementedError shown in one line, not an
        # AssertionError: an unfinished exercise is not a wrong one.
        error = excinfo.value
        if "from transformer_lib import" in "".join(c.source for c in run.cells):  # not the fixture, whose checks are stand-ins
            assert error.ename == "ExerciseNotDone", f"{error.ename}: {error.evalue}"
            assert "the exercise is not done yet" in error.evalue, error.evalue
        else:
            assert error.ename == "NotImplementedError", f"{error.ename}: {error.evalue}"
        code = [c for c in run.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), "nbclient stopped before the first check cell"
        assert _errors(code[-1]), "the error should come from the first check cell"
        for cell in code[:-1]:
            if "raises-exception" not in cell.metadata.get("tags", []):
                assert not _errors(cell), f"cell {cell.id} before the first exercise failed: {_errors(cell)}"


@pytest.mark.parametrize("solution_path, student_path", PAIRS)
def test_student_exercise_cells_compile_and_only_define(solution_path, student_path):
    """Static part of (d): a stubbed exercise cell compiles and raises nothing at its top level."""
    for cell in _student(student_path).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            compile(cell.source, f"{student_path.name}:{cell.id}", "exec")
            assert not bn._has_top_level_stub(cell.source), cell.id


# --------------------------------------------------------------------------- (e) metadata


@pytest.mark.parametrize("solution_path, student_path", PAIRS)
def test_nbgrader_metadata_and_cell_ids(solution_path, student_path):
    solution, student = _read(solution_path), _student(student_path)
    assert [c.id for c in student.cells] == [c.id for c in solution.cells], "cell ids must be kept, in order"
    roles = bn.cell_roles(solution, solution_path.stem)
    grade_ids = []
    for i, cell in enumerate(student.cells):
        meta = cell.metadata.get("nbgrader")
        role = roles.get(i)
        if role is None:
            assert meta is None or not (meta.get("solution") or meta.get("grade")), f"cell {cell.id}"
            continue
        assert meta is not None, f"cell {cell.id} ({role.kind}) has no nbgrader metadata"
        assert meta["schema_version"] == 3 and meta["task"] is False and meta["grade_id"] == role.grade_id
        grade_ids.append(meta["grade_id"])
        if role.kind == "solution":  # a code exercise
            assert (meta["solution"], meta["grade"], meta["locked"]) == (True, False, False)
            assert cell.cell_type == "code" and cell.metadata["deletable"] is False and "editable" not in cell.metadata
        elif role.kind == "answer":  # a markdown answer, graded by hand
            assert (meta["solution"], meta["grade"], meta["locked"]) == (True, True, False)
            assert cell.cell_type == "markdown" and meta["points"] > 0
            assert cell.metadata["deletable"] is False and "editable" not in cell.metadata
        else:
            assert (meta["solution"], meta["grade"], meta["locked"]) == (False, True, True)
            assert meta["points"] > 0
            assert cell.metadata["editable"] is False and cell.metadata["deletable"] is False
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert len(grade_ids) == len(set(grade_ids))
    nbformat.validate(student)


_REQUIRE_VERSION = "require_version"


def _version_calls(source: str) -> list:
    """The arguments of every `require_version(...)` / `transformer_lib.require_version(...)` call in `source`."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name == _REQUIRE_VERSION:
                calls.append([ast.literal_eval(a) for a in node.args])
    return calls


@pytest.mark.parametrize("path", [path for p in PAIRS if p.values[0].parent == ROOT / "solutions" for path in p.values],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_first_code_cell_requires_the_current_library_version(path):
    """The first code cell calls require_version("MAJOR.MINOR") once, with the installed library's major.minor.

    After a release that changes major.minor (transformer_lib.__version__ and pyproject.toml), run every
    notebook again and update the call: the notebook now is "written for" the new version.
    """
    nb = _student(path) if path.parent.name == "notebooks" else _read(path)
    first = next(c for c in nb.cells if c.cell_type == "code")
    calls = _version_calls(first.source)
    major_minor = ".".join(transformer_lib.__version__.split(".")[:2])
    assert calls == [[major_minor]], (
        f"{path.name}: its first code cell should call require_version({major_minor!r}) once "
        f"(transformer_lib {transformer_lib.__version__}); found {calls}")
    later = [c.id for c in nb.cells[nb.cells.index(first) + 1:] if c.cell_type == "code" and _version_calls(c.source)]
    assert not later, f"{path.name}: require_version belongs in the first code cell only; also in {later}"


def test_grade_ids_are_unique_across_the_course():
    seen: dict[str, str] = {}
    for src, _ in COURSES:
        for path in sorted(src.glob("*.ipynb")):
            for role in bn.cell_roles(_read(path), path.stem).values():
                assert role.grade_id not in seen, f"{role.grade_id} in {path.name} and {seen[role.grade_id]}"
                seen[role.grade_id] = path.name


@pytest.mark.parametrize("solution_path, student_path", PAIRS)
def test_solutions_notebook_is_valid_and_executed(solution_path, student_path):
    """Valid nbformat; no stored error outside cells meant to raise; checked cells have outputs.

    A cell meant to raise carries the `raises-exception` tag (nbval, nbclient and JupyterLab's
    Run All all honour it); a `# NBVAL_RAISES_EXCEPTION` comment alone would stop Run All there.

    nbval compares a `# NBVAL_CHECK_OUTPUT` cell only if its stored execution_count is set, so an
    unexecuted one would pass without checking anything.
    """
    solution = _read(solution_path)
    nbformat.validate(solution)
    for cell in solution.cells:
        if cell.cell_type != "code":
            continue
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        if _has_marker(cell.source, "NBVAL_RAISES_EXCEPTION"):
            assert tagged, (f"cell {cell.id} is meant to raise: give it the tag `raises-exception` too, "
                            "so that Run All in JupyterLab goes on past it")
        elif not tagged:
            assert not _errors(cell), f"cell {cell.id} stores an error: {_errors(cell)}"
        if _has_marker(cell.source, "NBVAL_CHECK_OUTPUT"):
            assert cell.execution_count is not None and cell.outputs, (
                f"cell {cell.id} is marked NBVAL_CHECK_OUTPUT but stores no executed output")


# --------------------------------------------------------------------------- (f) unit tests


def _student_cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


def test_solution_block_becomes_stub_at_its_indentation_keeping_signature_and_docstring():
    student = bn.make_student(_read(FIXTURE), FIXTURE.stem)
    square = _student_cell(student, "ex1-square").source
    assert square.startswith('def square(x):\n    """Return x squared.')
    assert square.endswith('    """\n    # YOUR CODE HERE\n    raise NotImplementedError()')
    counter = _student_cell(student, "ex2-counter").source
    assert counter.count("        # YOUR CODE HERE\n        raise NotImplementedError()") == 2
    assert '        """Advance the counter by `by` and return the new count."""' in counter
    assert _student_cell(student, "question").source.endswith("\n\nYOUR ANSWER HERE")


def test_hidden_tests_are_removed_and_points_read():
    solution = _read(FIXTURE)
    student = bn.make_student(solution, FIXTURE.stem)
    check = _student_cell(student, "ex2-check")
    assert check.source == "# points: 2\nchecks.check_counter(Counter)"
    assert check.metadata.nbgrader.points == 2
    assert _student_cell(student, "ex1-check").metadata.nbgrader.points == 1
    assert "hidden test of the counter" not in bn.notebook_bytes(student).decode()


def test_roles_grade_ids_and_ungraded_check_calls():
    roles = bn.cell_roles(_read(FIXTURE), FIXTURE.stem)
    ids = {i: (r.kind, r.grade_id) for i, r in roles.items()}
    assert sorted(ids.values()) == sorted([
        ("solution", "99-square"), ("check", "99-check_square"),
        ("solution", "99-Counter"), ("check", "99-check_counter"),
        ("answer", "99-question"),
    ])
    # the deliberately wrong answer calls a check too, but is not graded
    wrong = [i for i, c in enumerate(_read(FIXTURE).cells) if c.id == "wrong-answer"][0]
    assert wrong not in roles


def test_build_is_deterministic_and_idempotent(tmp_path):
    first = bn.notebook_bytes(bn.make_student(_read(FIXTURE), FIXTURE.stem))
    second = bn.notebook_bytes(bn.make_student(_read(FIXTURE), FIXTURE.stem))
    assert first == second and first.endswith(b"}\n")
    # building a student notebook again changes nothing but what is already there
    again = bn.make_student(nbformat.reads(first.decode(), as_version=4), FIXTURE.stem)
    for a, b in zip(again.cells, nbformat.reads(first.decode(), as_version=4).cells):
        assert a.source == b.source
    # the build writes only what changed
    out = io.StringIO()
    bn.build(FIXTURE_SRC, tmp_path, out=out)
    bn.build(FIXTURE_SRC, tmp_path, out=out)
    assert "wrote" in out.getvalue() and "unchanged" in out.getvalue()


def test_metadata_noise_is_stripped():
    student = bn.make_student(_read(FIXTURE), FIXTURE.stem)
    assert dict(student.metadata) == {"kernelspec": bn.KERNELSPEC, "language_info": {"name": "python"}}
    assert "execution" not in _student_cell(student, "stand-in-checks").metadata
    assert _student_cell(student, "ex1-square").metadata["tags"] == ["exercise"]


def test_fill_in_round_trips():
    source = _student_cell(_read(FIXTURE), "ex2-counter").source
    stub = bn.clear_regions(source, "code")
    assert bn.fill_in(stub, source) == bn.solution_only(source)
    assert "### " not in bn.solution_only(source)


@pytest.mark.parametrize("source, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION", "without a matching BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside an open"),
    ("### BEGIN SOLUTION\nx = 1\n### END HIDDEN TESTS", "without a matching BEGIN"),
    ("# the code between ### BEGIN SOLUTION and the end", "not a marker line"),
])
def test_bad_markers_are_refused(source, message):
    with pytest.raises(bn.BuildError, match=message):
        bn.clear_regions(source, "code")


def _nb(*sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    return nb


def test_exercise_without_check_cell_is_refused():
    nb = _nb("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION", "print(f(1))")
    with pytest.raises(bn.BuildError, match="followed, as the next code cell, by its check cell"):
        bn.make_student(nb, "07_x")


def test_top_level_solution_block_is_refused():
    nb = _nb("### BEGIN SOLUTION\nf = abs\n### END SOLUTION", "checks.check_f(f)")
    with pytest.raises(bn.BuildError, match="top level"):
        bn.make_student(nb, "07_x")


def test_check_cell_with_a_solution_block_is_refused():
    ex = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"
    nb = _nb(ex, "checks.check_f(f)\n### BEGIN SOLUTION\ny = 1\n### END SOLUTION")
    with pytest.raises(bn.BuildError, match="cannot also hold a solution block"):
        bn.make_student(nb, "07_x")


def test_duplicate_grade_ids_are_refused():
    ex = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"
    nb = _nb(ex, "checks.check_f(f)", ex, "checks.check_g(f)")
    with pytest.raises(bn.BuildError, match="share grade_id '07-f'"):
        bn.make_student(nb, "07_x")


def test_stored_grade_id_is_kept_and_annotation_is_idempotent():
    nb = _read(FIXTURE)
    annotated = bn.annotate_solutions(nb, FIXTURE.stem)
    assert bn.notebook_bytes(bn.annotate_solutions(annotated, FIXTURE.stem)) == bn.notebook_bytes(annotated)
    square = _student_cell(annotated, "ex1-square")
    assert square.metadata.nbgrader.grade_id == "99-square" and square.source == _student_cell(nb, "ex1-square").source
    assert "editable" not in square.metadata  # authors keep editing the solutions
    square.metadata.nbgrader.grade_id = "99-renamed"
    student = bn.make_student(annotated, FIXTURE.stem)
    assert _student_cell(student, "ex1-square").metadata.nbgrader.grade_id == "99-renamed"


def test_check_mode_reports_stale_orphan_and_leak(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "notebooks"
    src.mkdir()
    (src / FIXTURE.name).write_bytes(FIXTURE.read_bytes())
    out = io.StringIO()
    assert bn.build(src, dst, check=True, out=out) == 1 and "missing" in out.getvalue()
    assert not dst.exists(), "--check must not write"
    assert bn.build(src, dst, out=io.StringIO()) == 0
    assert bn.build(src, dst, check=True, out=io.StringIO()) == 0
    leaky = _read(dst / FIXTURE.name)
    _student_cell(leaky, "ex1-square").source += "\n    result_of_the_square = x * x  # a line that only the solution has"
    nbformat.write(leaky, str(dst / FIXTURE.name))
    (dst / "00_orphan.ipynb").write_bytes(FIXTURE.read_bytes())
    out = io.StringIO()
    assert bn.build(src, dst, check=True, out=out) == 1
    report = out.getvalue()
    assert "stale:   " in report and "orphan:  " in report and "leak:    " in report
    assert "result_of_the_square = x * x" in report and "BEGIN SOLUTION" in report  # the orphan has markers
    bn.build(src, dst, out=io.StringIO())
    assert not (dst / "00_orphan.ipynb").exists()


def test_command_line_check_on_fixture():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_notebooks.py"), "--check",
         "--src", str(FIXTURE_SRC), "--dst", str(FIXTURE_DST)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date (1 notebooks)" in result.stdout


# --------------------------------------------------------------------------- (g) nbgrader's own code


def _nbgrader() -> None:
    pytest.importorskip("nbgrader", reason="nbgrader is not installed: it is optional (pip install 'nbgrader>=0.9'); "
                        ".ci/run installs it")


def _annotated(solution_path: Path) -> nbformat.NotebookNode:
    """The solutions notebook as `--annotate-solutions` writes it: the source nbgrader's generate_assignment needs."""
    return bn.annotate_solutions(_read(solution_path), solution_path.stem)


def _differences_from_nbgrader(theirs: nbformat.NotebookNode, ours: nbformat.NotebookNode) -> list[str]:
    """Where our student notebook differs from the one nbgrader made: sources, nbgrader metadata, locks, outputs.

    Ignored: the `checksum` and `cell_type` nbgrader adds to its metadata (it recomputes both when it
    collects and autogrades), and cell metadata our build strips (e.g. `execution` timings).
    """
    if [(c.id, c.cell_type) for c in theirs.cells] != [(c.id, c.cell_type) for c in ours.cells]:
        return ["the cells differ (ids or types)"]
    found = []
    for a, b in zip(theirs.cells, ours.cells):
        if a.source != b.source:
            found.append(f"cell {a.id}: source\n  nbgrader: {a.source[-120:]!r}\n  ours:     {b.source[-120:]!r}")
        meta = {k: v for k, v in a.metadata.get("nbgrader", {}).items() if k not in ("checksum", "cell_type")}
        if meta != dict(b.metadata.get("nbgrader", {})):
            found.append(f"cell {a.id}: nbgrader metadata {meta} != ours {dict(b.metadata.get('nbgrader', {}))}")
        for key in ("editable", "deletable"):
            if a.metadata.get(key, True) != b.metadata.get(key, True):
                found.append(f"cell {a.id}: {key} {a.metadata.get(key, True)} != ours {b.metadata.get(key, True)}")
        if a.cell_type == "code" and (a.outputs or a.execution_count is not None):
            found.append(f"cell {a.id}: nbgrader left outputs")
        if b.cell_type == "code" and (b.outputs or b.execution_count is not None):
            found.append(f"cell {b.id}: ours has outputs")
    return found


@pytest.mark.parametrize("solution_path, student_path", PAIRS)
def test_nbgrader_validates_the_student_notebook(solution_path, student_path):
    """nbgrader's CheckCellMetadata (its schema-3 validator, the check of generate_assignment and autograde)
    accepts the student notebook, and finds the exercise, check and answer cells our build marked."""
    _nbgrader()
    from nbgrader import utils
    from nbgrader.preprocessors import CheckCellMetadata

    student = _student(student_path)
    CheckCellMetadata().preprocess(copy.deepcopy(student), {})  # raises nbgrader's ValidationError
    roles = bn.cell_roles(_read(solution_path), solution_path.stem)
    for i, cell in enumerate(student.cells):
        role = roles.get(i)
        expected = {None: (False, False, False), "solution": (True, False, False), "answer": (True, True, False),
                    "check": (False, True, True)}[role.kind if role else None]
        assert (utils.is_solution(cell), utils.is_grade(cell), utils.is_locked(cell)) == expected, cell.id


@pytest.mark.parametrize("solution_path, student_path", PAIRS)
def test_nbgrader_generate_assignment_makes_the_same_student_notebook(solution_path, student_path):
    """nbgrader's generate_assignment preprocessors, run on the annotated solutions notebook, give our student
    notebook: the same cells, sources (stubs, hidden tests removed), nbgrader metadata and locks.

    Run in this process, in nbgrader's own order, without a course directory: all of them except SaveCells,
    which records the source cells in nbgrader's database (the end-to-end test below does that).
    """
    _nbgrader()
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import SaveCells

    nb, resources = _annotated(solution_path), {"metadata": {"path": str(solution_path.parent)}}
    for preprocessor in GenerateAssignment.class_traits()["preprocessors"].default():
        if preprocessor is not SaveCells:
            nb, resources = preprocessor().preprocess(nb, resources)
    differences = _differences_from_nbgrader(nb, _student(student_path))
    assert not differences, f"{student_path.name}: nbgrader builds another student notebook:\n" + "\n".join(differences)


def _nbgrader_command(course: Path, *args: str) -> str:
    """Run the `nbgrader` command line in the course directory `course`; return its log."""
    env = {**os.environ, "HOME": str(course / "home"), "JUPYTER_CONFIG_DIR": str(course / "home" / "jupyter")}
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def test_nbgrader_releases_collects_and_autogrades_the_fixture(tmp_path):
    """nbgrader's command line, end to end, on the fixture (it runs in a second; the course's notebooks take minutes).

    `nbgrader generate_assignment` on the annotated solutions writes the same student notebook as our build;
    `nbgrader autograde` then grades our student notebook as handed in: as shipped it scores 0, with the
    solutions filled in it gets every automatic point, and the markdown answer waits for a manual grade.
    """
    _nbgrader()
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n")
    (course / "source" / "ps1" / FIXTURE.name).write_bytes(bn.notebook_bytes(_annotated(FIXTURE)))
    _nbgrader_command(course, "generate_assignment", "ps1")
    released = _read(course / "release" / "ps1" / FIXTURE.name)
    shipped = _student(FIXTURE_DST / FIXTURE.name)
    assert not _differences_from_nbgrader(released, shipped)

    solved = bn.fill_in_notebook(shipped, _read(FIXTURE))
    for student, nb in (("shipped", shipped), ("solved", solved)):
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        nbformat.write(nb, str(course / "submitted" / student / "ps1" / FIXTURE.name))
    log = _nbgrader_command(course, "autograde", "ps1")

    # nbgrader matched every graded cell by grade_id, and changed none but the one whose hidden test it put back
    assert "does not exist in the database" not in log, log
    changed = re.findall(r"Attribute '(\w+)' for cell (\S+) has changed", log)
    assert set(changed) <= {("checksum", "99-check_counter")}, changed  # nbgrader's own release warns the same
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        grades = {student: {g.name: (g.score, g.max_score, g.needs_manual_grade)
                            for g in gradebook.find_submission_notebook(FIXTURE.stem, "ps1", student).grades}
                  for student in ("shipped", "solved")}
    assert grades["solved"] == {"99-check_square": (1, 1, False), "99-check_counter": (2, 2, False),
                                "99-question": (0, 1, True)}, grades
    assert grades["shipped"] == {"99-check_square": (0, 1, False), "99-check_counter": (0, 2, False),
                                 "99-question": (0, 1, False)}, grades  # an untouched answer scores 0 at once


# --------------------------------------------------------------------------- nbval settings


@pytest.fixture(scope="module")
def nbval_on_fixture() -> str:
    """Output of pytest, with the repository's settings (pyproject.toml, conftest.py), run in one
    process on the fixture's solutions and student notebooks."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "-rA",
         str(FIXTURE.relative_to(ROOT)), str((FIXTURE_DST / FIXTURE.name).relative_to(ROOT))],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "300"},
    )
    return result.stdout


class TestNbvalSettings:
    """pytest on the fixture notebooks with the repository's settings."""

    def test_settings_pass_the_fixture(self, nbval_on_fixture):
        """Markers, the sanitize file (a memory address) and stderr skipping work as configured."""
        solutions = [line for line in nbval_on_fixture.splitlines() if "solutions/99_fixture.ipynb::Cell" in line]
        assert len(solutions) == 8 and all(line.startswith("PASSED") for line in solutions), nbval_on_fixture[-4000:]

    def test_names_each_unfinished_exercise_by_grade_id(self, nbval_on_fixture):
        """Grading a student notebook: the summary gives the check's grade_id and the exception."""
        assert "notebooks/99_fixture.ipynb::Cell 3 - 99-check_square: NotImplementedError" in nbval_on_fixture
        assert "notebooks/99_fixture.ipynb::Cell 5 - 99-check_counter: NotImplementedError" in nbval_on_fixture

    def test_prints_a_time_table_of_the_notebooks(self, nbval_on_fixture):
        """conftest.py: one row per notebook (its code cells, its seconds), then the total against the budget."""
        out = nbval_on_fixture
        assert "notebook run times (nbval, kernel start included)" in out, out[-3000:]
        seconds = []
        for path in (FIXTURE, FIXTURE_DST / FIXTURE.name):
            name = path.relative_to(ROOT).as_posix()
            row = re.search(rf"^{re.escape(name)}\s+(\d+)\s+(\d+\.\d)$", out, re.MULTILINE)
            assert row and int(row.group(1)) == 8, out[-3000:]  # the fixture's 8 code cells
            seconds.append(float(row.group(2)))
        total = re.search(r"^total\s+16\s+(\d+\.\d)\s+\(within the 600 s budget\)$", out, re.MULTILINE)
        assert total and abs(float(total.group(1)) - sum(seconds)) <= 0.11, out[-3000:]  # rows are rounded


def _sanitize(text: str) -> str:
    """Apply tests/nbval_sanitize.cfg with nbval's own parser, in order, as nbval does."""
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8")):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("raw, expected", [
    ("<function f at 0x7f3a2c1b9d30>", "<function f at 0xADDRESS>"),
    ("T =  128: library 0.24 ms, torch 12 µs", "T =  128: library <TIME>, torch <TIME>"),
    ("took 3.5 seconds", "took <TIME>"),
    ("/home/alice/course/transformer_lib/attention.py", "<REPO>/transformer_lib/attention.py"),
    # teaching outputs stay as they are
    ("softmax: all 7 cases pass", "softmax: all 7 cases pass"),
    ("[0.063, 0.468, 0.468] 1.937 6.683", "[0.063, 0.468, 0.468] 1.937 6.683"),
    ("d_k =   64  scores", "d_k =   64  scores"),
    ("2 s (B, S) 4 sequences", "2 s (B, S) 4 sequences"),
])
def test_sanitize_file_masks_addresses_times_and_paths_only(raw, expected):
    assert _sanitize(raw) == expected
