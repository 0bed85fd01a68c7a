#!/usr/bin/env python
"""Build the student notebooks in notebooks/ from the instructor notebooks in solutions/.

    python tools/build_notebooks.py            # write notebooks/ (only files that changed)
    python tools/build_notebooks.py --check    # write nothing; exit 1 listing stale or leaking notebooks

For every solutions/NN_name.ipynb this writes notebooks/NN_name.ipynb, following nbgrader's rules:

* in a code cell, each block between `### BEGIN SOLUTION` and `### END SOLUTION` becomes
  `# YOUR CODE HERE` + `raise NotImplementedError()` at the block's indentation; the rest of the
  cell (signature, docstring) stays;
* in a markdown cell, such a block becomes `YOUR ANSWER HERE`;
* blocks between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` are removed;
* outputs and execution counts are cleared, cell ids are kept, and notebook/cell metadata is
  reduced to what matters (kernelspec, tags, nbgrader, editable, deletable, jupyter);
* nbgrader metadata is added, as nbgrader's own `generate_assignment` would (tests/test_build.py
  compares the two): a code exercise cell (one with a solution block) gets `solution: true`; the
  check cell that follows it (a code cell calling `checks.check_<name>(...)`) gets `grade: true,
  locked: true, points` (1, or `# points: N` written in the cell); a markdown cell with an answer
  block is a manually graded answer, `solution: true, grade: true, points: 1`. Like nbgrader's
  LockCells, check cells are made read-only (`editable: false, deletable: false`) and exercise and
  answer cells undeletable (`deletable: false`).

grade_ids are `<NN>-<name>`: the function or class that holds the solution block
(`02-softmax`), or the check called (`02-check_softmax`); a markdown answer uses its cell id.
A grade_id already stored in the solutions notebook's nbgrader metadata is kept.

`--annotate-solutions` also writes that nbgrader metadata (and cell ids, if missing) into the
solutions notebooks themselves, which nbgrader's own `generate_assignment` needs.

The output depends only on the input: running the build twice gives the same bytes.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"
BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)

# A marker line: the marker alone, after optional `#`s (`### BEGIN SOLUTION`).
_MARKER_LINE = re.compile(r"^(?P<indent>\s*)(?:#+\s*)?(?P<marker>BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS)\s*$")
_CHECK_CALL = re.compile(r"\bchecks\s*\.\s*(check_\w+)\s*\(")
_POINTS = re.compile(r"^\s*#\s*points\s*:\s*(\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_NBVAL_RAISES = re.compile(r"^\s*#\s*NBVAL_RAISES_EXCEPTION\s*$", re.MULTILINE)

KEEP_CELL_METADATA = ("tags", "nbgrader", "editable", "deletable", "jupyter")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
NBGRADER_SCHEMA = 3
ANSWER_POINTS = 1  # points of a markdown answer (nbgrader grades it by hand)


class BuildError(ValueError):
    """A solutions notebook breaks a rule of the build (unmatched marker, missing check cell...)."""


# --------------------------------------------------------------------------- regions


@dataclass
class Region:
    """One marked block in a cell: its kind, indentation and the lines between the markers."""

    kind: str  # "solution" or "hidden"
    indent: str
    body: list[str] = field(default_factory=list)
    begin_line: int = 0  # 1-based line number of the BEGIN marker


def _where(where: str, lineno: int) -> str:
    return f"{where}, line {lineno}" if where else f"line {lineno}"


def parse_regions(source: str, where: str = "") -> tuple[list[str | Region], list[Region]]:
    """Split a cell source into plain lines and marked regions.

    Returns (items, regions): items is the cell in order, each a plain line (str) or a Region;
    regions lists the Regions. Raises BuildError on nested, unmatched or malformed markers,
    including a line that mentions a marker without being a marker line (nbgrader would treat
    such a line as a marker, so it is refused rather than guessed).
    """
    items: list[str | Region] = []
    regions: list[Region] = []
    current: Region | None = None
    for lineno, line in enumerate(source.split("\n"), start=1):
        m = _MARKER_LINE.match(line)
        if m is None:
            if any(marker in line for marker in MARKERS):
                raise BuildError(
                    f"{_where(where, lineno)}: {line.strip()!r} mentions a marker but is not a marker line; "
                    "write the marker alone on its line, e.g. `### BEGIN SOLUTION`"
                )
            (current.body if current is not None else items).append(line)
            continue
        marker = m["marker"]
        if marker.startswith("BEGIN"):
            if current is not None:
                raise BuildError(f"{_where(where, lineno)}: {marker!r} inside an open {current.kind} block")
            current = Region("solution" if marker == BEGIN_SOLUTION else "hidden", m["indent"], begin_line=lineno)
        else:
            expected = END_SOLUTION if current is not None and current.kind == "solution" else END_HIDDEN
            if current is None or marker != expected:
                raise BuildError(f"{_where(where, lineno)}: {marker!r} without a matching BEGIN")
            items.append(current)
            regions.append(current)
            current = None
    if current is not None:
        raise BuildError(f"{_where(where, current.begin_line)}: block is never closed")
    return items, regions


def clear_regions(source: str, cell_type: str, where: str = "") -> str:
    """Return the student version of a cell source (solutions stubbed, hidden tests removed)."""
    items, _ = parse_regions(source, where)
    stub = CODE_STUB if cell_type == "code" else TEXT_STUB
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif item.kind == "solution":
            out.extend(item.indent + line for line in stub)
    return "\n".join(out)


def solution_only(source: str, where: str = "") -> str:
    """Return the cell source with markers and hidden tests removed (what a perfect student writes)."""
    items, _ = parse_regions(source, where)
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif item.kind == "solution":
            out.extend(item.body)
    return "\n".join(out)


def fill_in(student_source: str, solution_source: str, cell_type: str = "code") -> str:
    """Paste the solution blocks of `solution_source` into the stubs of `student_source`, in order."""
    _, regions = parse_regions(solution_source)
    blocks = [r for r in regions if r.kind == "solution"]
    stub = CODE_STUB if cell_type == "code" else TEXT_STUB
    lines = student_source.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        window = [line[len(indent):] if line.startswith(indent) else None for line in lines[i : i + len(stub)]]
        if blocks and tuple(window) == stub and indent == blocks[0].indent:
            out.extend(blocks.pop(0).body)
            i += len(stub)
        else:
            out.append(lines[i])
            i += 1
    if blocks:
        raise ValueError(f"{len(blocks)} solution block(s) found no stub to fill in")
    return "\n".join(out)


def fill_in_notebook(student: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the student notebook `student` with every answer cell (nbgrader `solution`) filled in from the
    matching cell of `solution`: the notebook of a student who did everything."""
    nb = copy.deepcopy(student)
    for cell, original in zip(nb.cells, solution.cells):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = fill_in(cell.source, original.source, cell.cell_type)
    return nb


# --------------------------------------------------------------------------- cell roles


@dataclass
class Role:
    kind: str  # "solution" (code exercise), "answer" (markdown, graded by hand) or "check"
    grade_id: str
    points: float | int = 0


def notebook_prefix(stem: str) -> str:
    """`02_attention_from_scratch` -> `02`; a stem without a leading number is used whole."""
    m = re.match(r"^(\d+)(?:_|$)", stem)
    return m.group(1) if m else stem


def _defined_name(source: str, lineno: int) -> str | None:
    """Name of the top-level def/class containing line `lineno` (else the first one), if any."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    for node in defs:
        if node.lineno <= lineno <= (node.end_lineno or node.lineno):
            return node.name
    return defs[0].name if defs else None


def _has_top_level_stub(student_source: str) -> bool:
    try:
        tree = ast.parse(student_source)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Raise) for node in tree.body)


def cell_roles(nb: nbformat.NotebookNode, stem: str) -> dict[int, Role]:
    """Find exercise (solution) cells and their check cells; return {cell index: Role}.

    Rules (BuildError otherwise): every code exercise is followed, as the next code cell, by a
    check cell calling `checks.check_<name>(...)`; the exercise keeps running once stubbed (its
    solution block sits inside a def or class); grade_ids are unique in the notebook.
    """
    prefix = notebook_prefix(stem)
    roles: dict[int, Role] = {}
    code_indices = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for i, cell in enumerate(nb.cells):
        where = f"{stem}.ipynb cell {i} (id {cell.get('id', '?')})"
        if cell.cell_type not in ("code", "markdown"):
            continue
        _, regions = parse_regions(cell.source, where)
        solutions = [r for r in regions if r.kind == "solution"]
        if not solutions:
            continue
        stored = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "markdown":  # nbgrader: a markdown solution cell must be a (manual) grade cell
            roles[i] = Role("answer", stored or f"{prefix}-{cell.get('id', i)}", ANSWER_POINTS)
            continue
        name = _defined_name(cell.source, solutions[0].begin_line)
        roles[i] = Role("solution", stored or f"{prefix}-{name or cell.get('id', i)}")
        if _has_top_level_stub(clear_regions(cell.source, "code")):
            raise BuildError(
                f"{where}: a solution block at the top level of the cell would make the student's cell "
                "itself raise; put it inside the def/class the exercise asks for"
            )
        later = [j for j in code_indices if j > i]
        check = nb.cells[later[0]] if later else None
        calls = _CHECK_CALL.findall(check.source) if check is not None else []
        if not calls or _NBVAL_RAISES.search(check.source) or "raises-exception" in check.metadata.get("tags", []):
            raise BuildError(
                f"{where}: an exercise cell must be followed, as the next code cell, by its check cell "
                "(a cell calling `checks.check_<name>(...)`)"
            )
        j = later[0]
        if any(r.kind == "solution" for r in parse_regions(check.source)[1]):
            raise BuildError(f"{stem}.ipynb cell {j}: a check cell cannot also hold a solution block")
        points_match = _POINTS.search(check.source)
        points = float(points_match.group(1)) if points_match else 1
        if float(points).is_integer():
            points = int(points)
        stored_check = check.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        roles[j] = Role("check", stored_check or f"{prefix}-{calls[0]}", points)
    seen: dict[str, int] = {}
    for i, role in sorted(roles.items()):
        if role.grade_id in seen:
            raise BuildError(
                f"{stem}.ipynb: cells {seen[role.grade_id]} and {i} would share grade_id {role.grade_id!r}; "
                "give the exercises different function names"
            )
        seen[role.grade_id] = i
    return roles


def nbgrader_metadata(role: Role) -> dict:
    """nbgrader's cell metadata (schema 3) for a cell of this role."""
    if role.kind == "solution":
        return {"grade": False, "grade_id": role.grade_id, "locked": False, "schema_version": NBGRADER_SCHEMA,
                "solution": True, "task": False}
    if role.kind == "answer":
        return {"grade": True, "grade_id": role.grade_id, "locked": False, "points": role.points,
                "schema_version": NBGRADER_SCHEMA, "solution": True, "task": False}
    return {"grade": True, "grade_id": role.grade_id, "locked": True, "points": role.points,
            "schema_version": NBGRADER_SCHEMA, "solution": False, "task": False}


def lock_metadata(role: Role) -> dict:
    """What nbgrader's LockCells sets: check cells read-only, exercise and answer cells undeletable."""
    return {"editable": False, "deletable": False} if role.kind == "check" else {"deletable": False}


# --------------------------------------------------------------------------- notebooks


def read_notebook(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(str(path), as_version=4)
    return nb


def _require_ids(nb: nbformat.NotebookNode, where: str) -> None:
    if any("id" not in cell for cell in nb.cells):
        raise BuildError(
            f"{where}: cells have no ids (nbformat < 4.5); save it once in JupyterLab 4 or run "
            "`python tools/build_notebooks.py --annotate-solutions`"
        )


def make_student(nb: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """Return the student version of a solutions notebook (the input is not modified)."""
    _require_ids(nb, f"{stem}.ipynb")
    roles = cell_roles(nb, stem)
    student = copy.deepcopy(nb)
    student.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    for i, cell in enumerate(student.cells):
        where = f"{stem}.ipynb cell {i} (id {cell.id})"
        if cell.cell_type in ("code", "markdown"):
            cell.source = clear_regions(cell.source, cell.cell_type, where)
        meta = {k: copy.deepcopy(v) for k, v in cell.get("metadata", {}).items() if k in KEEP_CELL_METADATA}
        role = roles.get(i)
        if role is not None:
            meta["nbgrader"] = nbgrader_metadata(role)
            meta.update(lock_metadata(role))
        cell.metadata = nbformat.from_dict(meta)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(student)
    return student


def annotate_solutions(nb: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """Return a copy of a solutions notebook with cell ids and nbgrader metadata filled in.

    Only the `nbgrader` metadata of exercise and check cells is written; sources, outputs and
    other metadata are left as they are. Idempotent.
    """
    nb = copy.deepcopy(nb)
    if nb.nbformat_minor < 5 or any("id" not in cell for cell in nb.cells):
        nb.nbformat_minor = max(nb.nbformat_minor, 5)
        for cell in nb.cells:
            cell.setdefault("id", nbformat.v4.nbbase.random_cell_id())
    for i, role in cell_roles(nb, stem).items():
        nb.cells[i].setdefault("metadata", nbformat.NotebookNode())["nbgrader"] = nbformat.from_dict(
            nbgrader_metadata(role)
        )
    nbformat.validate(nb)
    return nb


def notebook_bytes(nb: nbformat.NotebookNode) -> bytes:
    """Serialise exactly as Jupyter does (sorted keys, indent 1), with a trailing newline."""
    text = nbformat.writes(nb)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


# --------------------------------------------------------------------------- leak detection


def _regions_and_public_lines(nb: nbformat.NotebookNode) -> tuple[set[str], set[str]]:
    secret: set[str] = set()
    public: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type not in ("code", "markdown"):
            public.update(line.strip() for line in cell.source.split("\n"))
            continue
        items, _ = parse_regions(cell.source)
        for item in items:
            if isinstance(item, str):
                public.add(item.strip())
            else:
                secret.update(line.strip() for line in item.body)
    return secret, public


def find_leaks(solution_nb: nbformat.NotebookNode | None, student_nb: nbformat.NotebookNode, min_len: int = 16) -> list[str]:
    """Lines of the student notebook that give away a solution or hidden test.

    A leak is a line mentioning a marker, or a line (stripped, at least `min_len` characters)
    that appears in a solution/hidden block of the solutions notebook and nowhere outside such
    blocks. Without a solutions notebook only markers are looked for.
    """
    candidates: set[str] = set()
    if solution_nb is not None:
        secret, public = _regions_and_public_lines(solution_nb)
        candidates = {s for s in secret - public if len(s) >= min_len} - set(CODE_STUB) - set(TEXT_STUB)
    leaks: list[str] = []
    for i, cell in enumerate(student_nb.cells):
        texts = [cell.source]
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.extend(v for v in output.get("data", {}).values() if isinstance(v, str))
        for text in texts:
            for line in text.split("\n"):
                stripped = line.strip()
                if any(marker in stripped for marker in MARKERS) or stripped in candidates:
                    leaks.append(f"cell {i} (id {cell.get('id', '?')}): {stripped}")
    return leaks


# --------------------------------------------------------------------------- command line


def build(src: Path, dst: Path, *, check: bool = False, annotate: bool = False, out=sys.stdout) -> int:
    """Build dst/ from src/*.ipynb. Returns the exit status (0: fine, 1: problems found in --check)."""
    sources = sorted(p for p in src.glob("*.ipynb") if p.is_file())
    if not sources:
        print(f"no notebooks in {src}", file=out)
    built: dict[Path, bytes] = {}
    for path in sources:
        nb = read_notebook(path)
        if annotate and not check:
            annotated = notebook_bytes(annotate_solutions(nb, path.stem))
            if annotated != path.read_bytes():
                path.write_bytes(annotated)
                print(f"annotated {_rel(path)}", file=out)
            nb = read_notebook(path)
        student = make_student(nb, path.stem)
        leaks = find_leaks(nb, student)
        if leaks:  # cannot happen unless the rules above have a hole; never write such a file
            raise BuildError(f"{path.name}: the student version would leak:\n  " + "\n  ".join(leaks))
        built[dst / path.name] = notebook_bytes(student)

    existing = {p for p in dst.glob("*.ipynb") if p.is_file()} if dst.is_dir() else set()
    orphans = sorted(existing - set(built))
    if check:
        problems: list[str] = []
        for target, data in built.items():
            if not target.exists():
                problems.append(f"missing: {_rel(target)}")
            elif target.read_bytes() != data:
                problems.append(f"stale:   {_rel(target)} (differs from what {_rel(src / target.name)} builds)")
        problems += [f"orphan:  {_rel(p)} (no {_rel(src / p.name)})" for p in orphans]
        for target in sorted(set(built) | existing):
            if not target.exists():
                continue
            solution = src / target.name
            try:
                leaks = find_leaks(read_notebook(solution) if solution.exists() else None, read_notebook(target))
            except (BuildError, nbformat.reader.NotJSONError) as exc:
                leaks = [f"cannot be checked: {exc}"]
            problems += [f"leak:    {_rel(target)} {leak}" for leak in leaks]
        for problem in problems:
            print(problem, file=out)
        if problems:
            print(f"{len(problems)} problem(s); run `python tools/build_notebooks.py` to rebuild", file=out)
            return 1
        print(f"{_rel(dst)}/ is up to date ({len(built)} notebooks)", file=out)
        return 0

    dst.mkdir(parents=True, exist_ok=True)
    for target, data in built.items():
        if target.exists() and target.read_bytes() == data:
            print(f"unchanged {_rel(target)}", file=out)
        else:
            target.write_bytes(data)
            print(f"wrote     {_rel(target)}", file=out)
    for orphan in orphans:
        orphan.unlink()
        print(f"removed   {_rel(orphan)} (no {_rel(src / orphan.name)})", file=out)
    return 0


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if notebooks/ is stale or leaks a solution")
    parser.add_argument("--annotate-solutions", action="store_true",
                        help="also write nbgrader metadata and cell ids into the solutions notebooks")
    parser.add_argument("--src", type=Path, default=ROOT / "solutions", help="instructor notebooks (default: solutions/)")
    parser.add_argument("--dst", type=Path, default=ROOT / "notebooks", help="student notebooks (default: notebooks/)")
    args = parser.parse_args(argv)
    try:
        return build(args.src, args.dst, check=args.check, annotate=args.annotate_solutions)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
