"""The README is tested: its commands are the ones CI runs, and its Python examples run and print
what it says they print.

Markers in README.md (HTML comments, invisible when rendered):
  <!-- test-command -->         the next fenced block is the test command; .ci/run runs the same
  <!-- install-command -->      the next fenced block installs the course and opens notebook 00
  <!-- readme-test: run -->     the next ```python block is executed
  <!-- readme-test: output -->  the next fenced block is what the preceding run block prints
"""

from __future__ import annotations

import contextlib
import io
import random
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")

_BLOCK = r"\n```[a-z]*\n(.*?)```"


def _marked_blocks(marker: str) -> list[str]:
    return re.findall(re.escape(f"<!-- {marker} -->") + _BLOCK, README, re.DOTALL)


def _commands(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def _examples() -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each run block, in order."""
    parts = re.split(r"(<!-- readme-test: (?:run|output) -->" + _BLOCK + ")", README, flags=re.DOTALL)
    examples: list[list] = []
    for part in parts:
        match = re.fullmatch(r"<!-- readme-test: (run|output) -->" + _BLOCK, part or "", re.DOTALL)
        if not match:
            continue
        kind, body = match.groups()
        if kind == "run":
            examples.append([body, None])
        else:
            assert examples and examples[-1][1] is None, "an output block must follow a run block"
            examples[-1][1] = body
    return [tuple(e) for e in examples]


def test_readme_test_command_is_what_ci_runs():
    blocks = _marked_blocks("test-command")
    assert len(blocks) == 1, "README.md needs exactly one <!-- test-command --> block"
    ci = re.search(r"^TEST_COMMAND='([^']*)'$", CI_RUN, re.MULTILINE)
    assert ci, ".ci/run must set TEST_COMMAND='...'"
    assert _commands(blocks[0]) == [ci.group(1)]
    assert re.search(r"^\$TEST_COMMAND\b", CI_RUN, re.MULTILINE), ".ci/run must run $TEST_COMMAND"


def test_quick_start_install_command():
    blocks = _marked_blocks("install-command")
    assert len(blocks) == 1, "README.md needs exactly one <!-- install-command --> block"
    (command,) = _commands(blocks[0])
    assert "pip install -r requirements.txt -e ." in command
    opened = re.search(r"jupyter lab (\S+)", command)
    assert opened, "the install command should open the course in JupyterLab"
    if any((ROOT / "solutions").glob("*.ipynb")):
        assert (ROOT / opened.group(1)).is_file(), f"{opened.group(1)} does not exist; run the build"
    # the quick start section gives exactly two commands: install-and-open, and test
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert quick.count("<!-- install-command -->") == 1 and quick.count("<!-- test-command -->") == 1


def test_course_map_matches_the_notebooks():
    table = README.split("## Course map", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d\d) \|(.*)$", table, re.MULTILINE)
    assert [number for number, _ in rows] == [f"{i:02d}" for i in range(13)]
    linked = set(re.findall(r"\]\(notebooks/([^)]+\.ipynb)\)", table))
    solutions = {p.name for p in (ROOT / "solutions").glob("*.ipynb")}
    if solutions:
        assert linked == solutions, "README's course map links exactly the notebooks in solutions/"
        for name in linked:
            assert (ROOT / "notebooks" / name).is_file(), f"notebooks/{name} is missing; run the build"
    for number, rest in rows:
        written = any(name.startswith(number + "_") for name in solutions)
        assert ("(coming" in rest) != written or not solutions, f"row {number}: mark it 'coming' or link it"


@pytest.mark.parametrize("code, expected", _examples(), ids=[f"example{i}" for i, _ in enumerate(_examples())])
def test_readme_example_runs(code, expected):
    torch = pytest.importorskip("torch")
    python_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    random.setstate(python_state)
    if expected is not None:
        assert out.getvalue() == expected


def test_readme_has_examples():
    assert len(_examples()) >= 2


def test_requirements_cover_the_package_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["course"]
    required = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    names = {re.split(r"[<>=!~\[ ;]", line.strip(), maxsplit=1)[0].lower()
             for line in required.splitlines() if line.strip() and not line.startswith("#")}
    missing = [d for d in wanted if re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() not in names]
    assert not missing, f"in pyproject.toml but not in requirements.txt: {missing}"
