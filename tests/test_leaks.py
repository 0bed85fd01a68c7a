"""No solution leaks: the student notebooks hold no line of the solutions, and no check message prints the answer.

Notebooks. Every non-trivial line of a solution or hidden-tests block of a solutions notebook is searched for in
the whole student notebook: every string of its JSON (cell sources, outputs, attachments, cell and notebook
metadata), with all whitespace removed, so that re-indenting, re-spacing or moving a line into prose or an output
does not hide it. A line is *trivial*, and not searched for, when once its comment and all whitespace are removed
it is shorter than 12 characters (``else:``, ``break``, ``i += 1``, ``merged = {}``, ``return pe``) or returns bare
names only (``return out, weights``): such lines say nothing of how an answer is computed, and strings that short
turn up by chance in whitespace-free text. The shortest lines that do carry a method are 13 to 15 characters
(``out = weights @ v``, ``d_k = q.shape[-1]``), above the limit. A line is also allowed when the solutions notebook
shows it outside its blocks (a signature, a docstring, a hint, a later "look inside" cell): the student sees it
there anyway. This is stricter than the build's own leak check (``tests/test_build.py``), which compares whole
lines of cell sources and outputs only.

Check messages. Every check is run on the wrong answers of ``tests/test_checks*.py`` (all of them, in a pytest
subprocess that records each ``CheckFailed`` message). No message may quote more than one statement of reference
code that the student notebooks do not show: the fix of the one mistake it diagnoses (``out = weights @ v``) is
feedback; two statements start to be the answer. Nor may it quote every non-trivial line of a solution block.
Reference code is every statement of ``transformer_lib`` (the library, and the checks' own code, but not their
messages) and every line of the solution blocks. A message shows at most 12 values of a reference tensor (a row
of 8, or a whole tensor of up to 12, e.g. ``expected [0.06338, 0.4683, 0.4683]``), or a 0/1 mask pattern of at
most 64 entries (8 x 8): the pattern is the diagnosis, and a student reading a 5 x 5 triangle already has the idea.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_notebooks as bn  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "solutions" / "99_fixture.ipynb"
FIXTURE_STUDENT = ROOT / "tests" / "fixtures" / "notebooks" / "99_fixture.ipynb"
COURSES = [(ROOT / "solutions", ROOT / "notebooks"), (FIXTURE.parent, FIXTURE_STUDENT.parent)]
PAIRS = [pytest.param(path, dst / path.name, id=path.stem) for src, dst in COURSES for path in sorted(src.glob("*.ipynb"))]

TRIVIAL_LENGTH = 12  # characters, comment and whitespace removed
MAX_VALUES = 12  # numbers of a reference tensor a message may show
MAX_MASK_ENTRIES = 64  # 0/1 entries of a mask pattern a message may show (8 x 8)


# --------------------------------------------------------------------------- text helpers


def normalise(text: str) -> str:
    """All whitespace removed, double quotes as single ones: how lines and texts are compared."""
    return re.sub(r"\s+", "", text).replace('"', "'")


def without_comment(line: str) -> str:
    """A line of Python without its `# comment` (a `#` inside a string literal is kept)."""
    quote, i = None, 0
    while i < len(line):
        if quote is None and line[i] == "#":
            return line[:i]
        if quote is None:
            quote = next((q for q in ('"""', "'''", '"', "'") if line.startswith(q, i)), None)
            i += len(quote) if quote else 1
        elif line[i] == "\\":
            i += 2
        elif line.startswith(quote, i):
            i, quote = i + len(quote), None
        else:
            i += 1
    return line


def is_trivial(normalised_line: str) -> bool:
    """Shorter than TRIVIAL_LENGTH, or `return` of bare names (see the module docstring)."""
    return len(normalised_line) < TRIVIAL_LENGTH or re.fullmatch(r"return\(?[\w,]*\)?", normalised_line) is not None


def all_strings(obj) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (k, *all_strings(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in all_strings(v)]
    return []


# --------------------------------------------------------------------------- solution lines


def solution_blocks(nb: nbformat.NotebookNode) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(cell id, [(line, normalised line) for its non-trivial lines])] for each solution or hidden-tests block."""
    blocks = []
    for cell in nb.cells:
        if cell.cell_type not in ("code", "markdown"):
            continue
        for region in bn.parse_regions(cell.source)[1]:
            lines = [(line, normalise(without_comment(line) if cell.cell_type == "code" else line))
                     for line in region.body]
            blocks.append((cell.get("id", "?"), [(line, n) for line, n in lines if not is_trivial(n)]))
    return blocks


def public_text(nb: nbformat.NotebookNode) -> str:
    """The solutions notebook's sources outside solution and hidden-tests blocks, normalised."""
    kept = []
    for cell in nb.cells:
        if cell.cell_type in ("code", "markdown"):
            kept += [item for item in bn.parse_regions(cell.source)[0] if isinstance(item, str)]
        else:
            kept.append(cell.source)
    return normalise("\n".join(kept))


def leaked_lines(solution: nbformat.NotebookNode, student_json: dict) -> list[str]:
    """Non-trivial solution lines that appear anywhere in the student notebook and nowhere public."""
    public = public_text(solution)
    text = normalise("\n".join(all_strings(student_json)))
    return [f"cell {cell_id}: {line.strip()}" for cell_id, lines in solution_blocks(solution)
            for line, n in lines if n in text and n not in public]


@pytest.mark.parametrize("solution_path, student_path", PAIRS)
def test_no_student_notebook_contains_a_solution_line(solution_path, student_path):
    solution = nbformat.read(str(solution_path), as_version=4)
    student_json = json.loads(student_path.read_text(encoding="utf-8"))
    leaks = leaked_lines(solution, student_json)
    assert not leaks, f"{student_path.name} gives away solution lines:\n" + "\n".join(leaks)
    if bn.BEGIN_SOLUTION in solution_path.read_text(encoding="utf-8"):  # the search had something to look for
        assert any(lines for _, lines in solution_blocks(solution))


def _fixture_pair() -> tuple[nbformat.NotebookNode, dict]:
    """The fixture's solutions notebook, and its student notebook as plain JSON (each source one str)."""
    student = json.loads(json.dumps(nbformat.read(str(FIXTURE_STUDENT), as_version=4)))
    return nbformat.read(str(FIXTURE), as_version=4), student


def _cell(nb_json: dict, cell_id: str) -> dict:
    return next(c for c in nb_json["cells"] if c["id"] == cell_id)


@pytest.mark.parametrize("where", ["markdown prose, respaced", "a code comment", "a stream output", "an html output",
                                   "cell metadata", "notebook metadata", "an attachment name"])
def test_a_solution_line_is_found_wherever_it_is(where):
    """The fixture's solution line `self.count = self.count + by`, planted in each place a student could read it."""
    solution, student = _fixture_pair()
    line = "self.count   =   self.count+by"
    cell = _cell(student, "demo")
    if where == "markdown prose, respaced":
        _cell(student, "ex2-md")["source"] += f"\nHint: write `{line}`."
    elif where == "a code comment":
        cell["source"] += f"\n# {line}"
    elif where == "a stream output":
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"{line}\n"}]
    elif where == "an html output":
        cell["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {"text/html": f"<pre>{line}</pre>"}}]
    elif where == "cell metadata":
        cell["metadata"]["note"] = line
    elif where == "notebook metadata":
        student["metadata"]["solution"] = [line]
    else:
        _cell(student, "ex2-md")["attachments"] = {line: {"text/plain": "x"}}
    assert leaked_lines(solution, student) == ["cell ex2-counter: self.count = self.count + by"]


def test_trivial_and_public_lines_are_not_leaks():
    solution, student = _fixture_pair()
    _cell(student, "demo")["source"] += "\nreturn result_of_the_square"  # a return of a bare name: trivial
    assert leaked_lines(solution, student) == []
    public = copy.deepcopy(solution)
    public.cells[0].source += "\n\nHint: `self.count = self.count + by`"  # shown outside the blocks: public
    _cell(student, "demo")["source"] += "\nself.count = self.count + by"
    assert leaked_lines(public, student) == [] and leaked_lines(solution, student) != []


@pytest.mark.parametrize("line, trivial", [
    ("return out, weights", True), ("return (out, weights)", True), ("else:", True), ("i += 1", True),
    ("merged = {}", True), ("return pe", True), ("norm = 2 * d  # gain and bias", True),
    ("out = weights @ v", False), ("d_k = q.shape[-1]", False), ("return self.count", False),
    ("real = tokens != pad_id  # (B, T) True for a real token", False), ("return x + self.dropout(h)", False),
])
def test_what_is_trivial(line, trivial):
    assert is_trivial(normalise(without_comment(line))) is trivial


def test_without_comment_keeps_hashes_in_strings():
    assert without_comment('s = "a # b"  # why') == 's = "a # b"  '
    assert without_comment("x = '#' + y") == "x = '#' + y"
    assert without_comment('t = """# not a comment"""') == 't = """# not a comment"""'


# --------------------------------------------------------------------------- check messages

RECORDER = textwrap.dedent('''
    """pytest plugin: record the message of every CheckFailed, with the test and the check that raised it."""
    import json, os, sys
    import pytest
    from transformer_lib.checks import _feedback

    RECORDS, TEST = [], [None]
    _init = _feedback.CheckFailed.__init__

    def _recording_init(self, message, student_error=None):
        frame, check = sys._getframe(1), None
        while frame is not None:  # the outermost check_* function of transformer_lib.checks on the stack
            if frame.f_code.co_name.startswith("check_") and \\
                    frame.f_globals.get("__name__", "").startswith("transformer_lib.checks"):
                check = frame.f_code.co_name
            frame = frame.f_back
        RECORDS.append({"test": TEST[0], "check": check, "message": str(message)})
        _init(self, message, student_error)

    _feedback.CheckFailed.__init__ = _recording_init

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(item):
        TEST[0] = item.nodeid
        yield

    def pytest_sessionfinish(session):
        with open(os.environ["CHECK_MESSAGES"], "w", encoding="utf-8") as f:
            json.dump(RECORDS, f)
''')


@pytest.fixture(scope="module")
def check_messages(tmp_path_factory) -> list[dict]:
    """The message of every CheckFailed raised by tests/test_checks*.py: [{test, check, message}] (about 10 s)."""
    folder = tmp_path_factory.mktemp("recorder")
    (folder / "check_message_recorder.py").write_text(RECORDER, encoding="utf-8")
    out = folder / "messages.json"
    env = {**os.environ, "CHECK_MESSAGES": str(out),
           "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_checks*.py"))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                             "-p", "check_message_recorder", *files], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def test_every_check_was_run_on_wrong_answers(check_messages):
    from transformer_lib import checks

    exported = {name for name in checks.__all__ if name.startswith("check_")}
    seen = {record["check"] for record in check_messages}
    assert exported <= seen, f"checks never seen failing on a wrong answer: {sorted(exported - seen)}"
    assert len(check_messages) >= 4 * len(exported)


def _statements(body: list) -> list[ast.stmt]:
    """Simple statements of a module, recursively (bodies of defs, classes, ifs, loops...), docstrings and
    statements holding messages (raise, f-strings, string literals over 12 characters) left out."""
    out = []
    for node in body:
        nested = [getattr(node, f) for f in ("body", "orelse", "finalbody") if isinstance(getattr(node, f, None), list)]
        nested += [handler.body for handler in getattr(node, "handlers", [])]
        if nested:
            out += [s for block in nested for s in _statements(block)]
            continue
        if isinstance(node, (ast.Raise, ast.Import, ast.ImportFrom, ast.Assert, ast.Pass)) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            continue
        if any(isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, str)
                                                 and len(n.value) > 12) for n in ast.walk(node)):
            continue
        out.append(node)
    return out


@functools.cache
def reference_code() -> tuple[dict[str, str], list[tuple[str, set[str]]]]:
    """({normalised statement: where}, [(solution block, its normalised non-trivial lines)]), minus what the
    student notebooks show."""
    shown = normalise("\n".join(s for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
                                for s in all_strings(json.loads(path.read_text(encoding="utf-8")))))
    statements: dict[str, str] = {}
    for path in sorted((ROOT / "transformer_lib").rglob("*.py")):
        for node in _statements(ast.parse(path.read_text(encoding="utf-8")).body):
            n = normalise(ast.unparse(node))
            if not is_trivial(n) and n not in shown:
                statements.setdefault(n, f"{path.relative_to(ROOT)}:{node.lineno}")
    blocks = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        for cell_id, lines in solution_blocks(nbformat.read(str(path), as_version=4)):
            secret = {n for _, n in lines if n not in shown}
            statements.update({n: f"{path.name} cell {cell_id}" for n in secret if n not in statements})
            if secret:
                blocks.append((f"{path.name} cell {cell_id}", secret))
    return statements, blocks


def quoted_reference(message: str, statements: dict[str, str], blocks) -> list[str]:
    """Why `message` gives the reference away ([] if it does not)."""
    text = normalise(message)
    quoted = sorted((where, n) for n, where in statements.items() if n in text)
    problems = [f"{len(quoted)} statements of reference code: {quoted}"] if len(quoted) > 1 else []
    problems += [f"every line of the solution block {name}: {sorted(lines)}" for name, lines in blocks
                 if all(n in text for n in lines)]
    return problems


def test_messages_do_not_quote_the_reference(check_messages):
    statements, blocks = reference_code()
    assert len(statements) > 500 and blocks  # the library and the solutions were read
    problems = {}
    for record in check_messages:
        found = quoted_reference(record["message"], statements, blocks)
        if found:
            problems.setdefault(record["check"], (record["test"], found, record["message"]))
    assert not problems, "\n\n".join(f"{check} ({test}): {found}\n{message}"
                                     for check, (test, found, message) in problems.items())


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?(?![\w.])|\b(?:nan|inf)\b")


def shown_reference_values(message: str) -> list[str]:
    """Lines of `message` that show more of a reference tensor than a few values ([] if none)."""
    too_many = []
    for line in message.splitlines():
        if "expected" not in line:
            continue
        shown = re.split(r"\bgot\b", line.split("expected", 1)[1])[0]  # "expected X, got Y" on one line
        numbers = _NUMBER.findall(shown)
        mask = all(float(x) in (0.0, 1.0) for x in numbers)
        if len(numbers) > (MAX_MASK_ENTRIES if mask else MAX_VALUES):
            too_many.append(f"{len(numbers)} values: {line.strip()[:200]}")
    return too_many


def test_messages_show_only_a_few_reference_values(check_messages):
    problems = {}
    for record in check_messages:
        found = shown_reference_values(record["message"])
        if found:
            problems.setdefault(record["check"], (record["test"], found))
    assert not problems, "\n".join(f"{check} ({test}): {found}" for check, (test, found) in problems.items())


def test_the_message_checks_can_fail():
    """A message printing the reference's source, or a whole reference tensor, is caught."""
    import inspect

    import torch

    from transformer_lib import attention, masks

    statements, blocks = reference_code()
    source = inspect.getsource(attention.scaled_dot_product_attention)
    assert quoted_reference(f"softmax: case 'x' (1 of 7): the reference is\n{source}", statements, blocks)
    assert not quoted_reference("scores not divided by sqrt(d_k)\n  out = weights @ v", statements, blocks)
    values = torch.linspace(0, 1, 13).tolist()
    assert shown_reference_values(f"  expected {values}\n  got      {values}")
    assert not shown_reference_values(f"  expected {values[:12]}")
    assert not shown_reference_values(f"  expected {masks.causal_mask(8).int().tolist()}")
    assert shown_reference_values(f"  expected {masks.causal_mask(9).int().tolist()}")
