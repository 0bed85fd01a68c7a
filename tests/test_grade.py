"""Tests of ``python -m transformer_lib.grade``: grading a folder of submissions, and surviving what students do.

One run of the command line (module-scoped, ``--jobs 2``) grades a folder holding one submission per case:
a solved notebook, monkeypatching attacks, an endless loop, a kernel killed by ``os._exit``, memory and CPU
limits, edited and deleted check cells, an untouched exercise, reuse of the reference, a file that is not
JSON, a notebook of no assignment, and a real course notebook (02) handed in under the name of 03. Most
cases use the small course of tests/fixtures/grade/course.py (about 3 s a notebook); each test then reads its
rows of the CSV. A huge output, ``--me`` and the notebook time limit have tests of their own; the static
analysis ("uses the reference implementation", patching) is tested without kernels.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
import torch
from checking import one_error_line

from transformer_lib import checks, grade
from transformer_lib.data import sha256_file
from transformer_lib.grade.notebook import load_course
from transformer_lib.grade.references import REFERENCES, resolve_path
from transformer_lib.grade.report import COLUMNS
from transformer_lib.grade.run import MAX_CELL_OUTPUT, run_job
from transformer_lib.grade.static import analyse, notebook_env

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "grade"))
import course as mini  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MEMORY_MB = 3000
NOTEBOOK_TIMEOUT = 180

WRONG_SOFTMAX = mini.exercise_source("softmax", """    e = torch.exp(x - x.amax(dim=0, keepdim=True))  # wrong axis
    return e / e.sum(dim=0, keepdim=True)
""")
UNSCALED = mini.exercise_source("scaled_dot_product_attention", """    scores = q @ k.transpose(-2, -1)  # not scaled
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
""")
UPPER = mini.exercise_source("causal_mask", "    return torch.triu(torch.ones(size, size, dtype=torch.bool))\n")

# Each attack alone makes its check pass when the notebook simply runs (test_the_attacks_work_without_the_grader).
ATTACKS = {
    "carol": {  # patch the check, patch the reference the check compares with, redefine `checks`
        "softmax": WRONG_SOFTMAX + "\nchecks.check_softmax = lambda *a, **k: print('softmax: all 7 cases pass')\n",
        "scaled_dot_product_attention": "import transformer_lib.attention as reference\n\n" + UNSCALED
        + "\nreference.scaled_dot_product_attention = scaled_dot_product_attention\n",
        "causal_mask": UPPER + """
class checks:  # the name the check cell calls
    @staticmethod
    def check_causal_mask(fn):
        print("causal_mask: all 3 cases pass")
""",
    },
    "dave": {  # patch torch while the check runs, an import hook serving a fake checks module, patch torch
        "softmax": mini.exercise_source("softmax", "    torch.allclose = lambda *args, **kwargs: True\n    return x\n"),
        "scaled_dot_product_attention": """import importlib.machinery
import sys
import types

def scaled_dot_product_attention(q, k, v, mask=None):
    return v, v

class FakeChecks:  # serves transformer_lib.checks with a check that always passes
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "transformer_lib.checks" else None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        fake = lambda fn: print("scaled_dot_product_attention: all 7 cases pass")
        module.__getattr__ = lambda a: fake if a == "check_scaled_dot_product_attention" else getattr(real, a)
        return module

    def exec_module(self, module):
        pass

real = sys.modules.pop("transformer_lib.checks")
sys.meta_path.insert(0, FakeChecks())
import transformer_lib.checks as checks
""",
        "causal_mask": UPPER + "\ntorch.allclose = lambda *args, **kwargs: True\ntorch.equal = lambda *a, **k: True\n",
    },
}
LOOP = mini.exercise_source("softmax", "    while True:\n        pass\n")


def _submissions(folder: Path) -> None:
    """One submission per case; see the module docstring."""
    def save(nb, student: str, name: str = "97.ipynb") -> None:
        path = folder / student / name if student else folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))

    save(mini.solved(), "alice")
    for student, cells in ATTACKS.items():
        nb = mini.student()
        for name, source in cells.items():
            mini.set_exercise(nb, name, source)
        save(nb, student)
    nb = mini.solved()  # erin: an endless loop; the reference imported
    mini.set_exercise(nb, "softmax", LOOP)
    mini.set_exercise(nb, "scaled_dot_product_attention",
                      "from transformer_lib.attention import scaled_dot_product_attention\n")
    save(nb, "erin")
    nb = mini.solved()  # frank: the kernel dies; the reference reused in the two others
    mini.set_exercise(nb, "softmax", mini.exercise_source("softmax", "    return torch.softmax(x, dim)\n"))
    mini.set_exercise(nb, "scaled_dot_product_attention", "import os\n\n" + mini.exercise_source(
        "scaled_dot_product_attention", "    os._exit(1)\n"))
    mini.set_exercise(nb, "causal_mask", mini.exercise_source("causal_mask", "    return masks.causal_mask(size)\n"))
    save(nb, "frank")
    nb = mini.student()  # kate: the limits, seen from inside the kernel; edited and deleted check cells
    mini.set_exercise(nb, "softmax", "import resource\n\n" + mini.exercise_source("softmax", (
        "    limits = [resource.getrlimit(r)[0] for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU)]\n"
        "    raise ValueError(f'limits {limits}')\n")))
    mini.set_exercise(nb, "scaled_dot_product_attention", mini.exercise_source(
        "scaled_dot_product_attention", "    big = torch.empty(2**31)  # 8 GiB of address space\n    return q, q\n"))
    mini.set_check(nb, "scaled_dot_product_attention", "print('scaled_dot_product_attention: all 7 cases pass')")
    mini.set_check(nb, "causal_mask", None)
    save(nb, "kate")
    real, solution = (nbformat.read(str(ROOT / folder / "02_attention_from_scratch.ipynb"), as_version=4)
                      for folder in ("notebooks", "solutions"))
    save(mini.bn.fill_in_notebook(real, solution), "olga", "03_scaled_dot_product_attention.ipynb")  # 02 named 03
    (folder / "gina").mkdir()
    (folder / "gina" / "97.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "print(1)"', "utf-8")
    other = mini.student()
    for cell in other.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.grade_id = "99-" + cell.metadata.nbgrader.grade_id[3:]
    save(other, "", "hal.ipynb")  # a flat file: the student is its stem
    (folder / "ivan").mkdir()  # a student who handed in nothing


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("course")
    mini.write_course(folder)
    shutil.copy(ROOT / "notebooks" / "02_attention_from_scratch.ipynb", folder)
    return folder


@pytest.fixture(scope="module")
def graded(course_dir, tmp_path_factory):
    """Run the command line once over every case; return its rows by (student, exercise) and what it left."""
    base = tmp_path_factory.mktemp("grading")
    subs, out, tmp = base / "submitted", base / "out", base / "tmp"
    subs.mkdir()
    tmp.mkdir()
    _submissions(subs)
    before = _digest(subs)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "transformer_lib.grade", str(subs), "--out", str(out / "grades.csv"),
         "--report-dir", str(out / "reports"), "--course", str(course_dir), "--timeout-cell", "10",
         "--timeout-notebook", str(NOTEBOOK_TIMEOUT), "--memory-mb", str(MEMORY_MB), "--jobs", "2"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TMPDIR": str(tmp)}, check=False)
    seconds = time.perf_counter() - start
    with open(out / "grades.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by = {(r["student"], r["grade_id"].split("check_")[-1] or None): r for r in rows if r["status"] != "missing"}
    return {"result": result, "rows": rows, "by": by, "before": before, "after": _digest(subs), "subs": subs,
            "out": out, "tmp": tmp, "seconds": seconds}


def _row(graded, student: str, exercise: str | None) -> dict:
    return graded["by"][(student, exercise)]


def _flags(row: dict) -> set[str]:
    # course-files-modified is left out: in a shared working tree someone may edit the library during the run
    return set(filter(None, row["flags"].split(";"))) - {"course-files-modified"}


EXERCISES = list(mini.CHECKS)


# -- the run as a whole ------------------------------------------------------------------------------------------


def test_the_run_succeeds_and_writes_one_row_per_exercise(graded):
    result = graded["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(graded["rows"][0]) == COLUMNS
    assert re.search(r"^wrote .*grades\.csv \(\d+ rows, 9 notebooks, 10 students, 13 assignments not handed in\)",
                     result.stdout, re.MULTILINE)
    students = {r["student"] for r in graded["rows"]}
    assert students == {"alice", "carol", "dave", "erin", "frank", "kate", "olga", "gina", "hal", "ivan"}
    for student in students - {"olga", "gina", "hal", "ivan"}:
        rows = [r for r in graded["rows"] if r["student"] == student and r["status"] != "missing"]
        assert [r["grade_id"] for r in rows] == list(mini.CHECKS.values()), student
        assert [float(r["max_points"]) for r in rows] == list(map(float, mini.POINTS.values()))  # from the metadata
        assert all(float(r["points"]) == (float(r["max_points"]) if r["status"] == "passed" else 0) for r in rows)


def test_the_submissions_folder_is_left_as_it_was(graded):
    assert graded["after"] == graded["before"]


def test_no_process_and_no_temporary_file_is_left_behind(graded):
    assert list(graded["tmp"].iterdir()) == []  # each submission's working directory is removed
    leftovers = []
    for proc in psutil.process_iter(["cwd"]):
        if (proc.info.get("cwd") or "").startswith(str(graded["tmp"])):
            leftovers.append(proc)
    assert not leftovers, leftovers


def test_a_markdown_report_per_student(graded):
    reports = {p.stem: p.read_text(encoding="utf-8") for p in (graded["out"] / "reports").glob("*.md")}
    assert set(reports) == {r["student"] for r in graded["rows"]}
    assert "| `97-check_softmax` | passed | 1 / 1 | softmax: all 7 cases pass |" in reports["alice"]
    assert "**4 of 7 points**" in reports["alice"]
    assert "## alice/97.ipynb: 97_grading, 4 of 4 points" in reports["alice"]
    assert "**0 of 7 points**" in reports["kate"]  # 4 of 97 and 3 of 02, which kate did not hand in
    assert "uses the reference implementation" in reports["frank"]
    assert "the check cell was deleted; the original check ran" in reports["kate"]


# -- the cases ---------------------------------------------------------------------------------------------------


def test_a_solved_notebook_passes_every_check(graded):
    for exercise in EXERCISES:
        row = _row(graded, "alice", exercise)
        assert (row["status"], _flags(row)) == ("passed", set()), row
        assert re.fullmatch(r"\w+: all \d+ cases pass", row["message"])


def test_an_untouched_exercise_is_not_started(graded):
    row = _row(graded, "kate", "causal_mask")  # its check cell deleted, too: the course's check ran
    assert row["status"] == "not started" and row["points"] == "0"
    assert row["message"].startswith("the exercise is not done yet: write `causal_mask`")


@pytest.mark.parametrize("student", list(ATTACKS))
def test_monkeypatching_does_not_fool_the_checks(graded, student):
    """Each wrong answer is judged against the true reference, whatever its cell patched."""
    rows = [_row(graded, student, exercise) for exercise in EXERCISES]
    assert all("patches-runtime" in _flags(r) for r in rows)
    expected = {"softmax": "softmax over the wrong axis", "scaled_dot_product_attention": "not divided by sqrt(d_k)",
                "causal_mask": "upper triangle"}
    for exercise, row in zip(EXERCISES, rows):
        if (student, exercise) == ("dave", "softmax"):  # patched torch.allclose while the check ran
            assert row["status"] == "error" and "changed torch.allclose while the check ran" in row["message"]
        elif (student, exercise) == ("dave", "scaled_dot_product_attention"):
            assert row["status"] == "failed" and "weights has shape (5, 8)" in row["message"]
        else:
            assert row["status"] == "failed" and expected[exercise] in row["message"], row


def test_the_attacks_work_without_the_grader():
    """Run as a plain script (what `Run All` or nbval would do), every attack makes its wrong answer pass."""
    program = ("import json, sys\nns = {}\nfor source in json.loads(sys.argv[1]):\n"
               "    exec(source, ns)  # a failing check would raise here\n")
    for student, cells in ATTACKS.items():
        nb = mini.student()
        for name, source in cells.items():
            mini.set_exercise(nb, name, source)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        result = subprocess.run([sys.executable, "-c", program, json.dumps(code)], capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(re.findall(r"^\w+: all \d+ cases pass$", result.stdout, re.MULTILINE)) == 3, result.stdout


def test_an_endless_loop_times_out_and_the_rest_is_graded(graded):
    row = _row(graded, "erin", "softmax")
    assert row["status"] == "timeout" and "ran longer than 10 s (--timeout-cell)" in row["message"]
    assert "kernel-died" in _flags(row)  # stopped, and the others ran in a fresh kernel
    assert _row(graded, "erin", "causal_mask")["status"] == "passed"


def test_a_huge_output_is_cut_as_it_arrives(tmp_path):
    """A cell printing 100 MB: its text is cut to MAX_CELL_OUTPUT characters, and the cells after it run."""
    cells = [nbformat.v4.new_code_cell(source) for source in ("print('x' * 100_000_000)", "print('after')")]
    for i, cell in enumerate(cells):
        cell.metadata["grading"] = {"role": "pristine"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(tmp_path / "graded.ipynb"))
    job = {"notebook": str(tmp_path / "graded.ipynb"), "cwd": str(tmp_path), "cell_timeout": 60}
    result = asyncio.run(run_job(job))
    printed = result["records"]["0"]["stdout"]
    assert printed.startswith("x" * MAX_CELL_OUTPUT) and printed.endswith("[... output cut by the grader ...]\n")
    assert len(printed) < MAX_CELL_OUTPUT + 100
    assert result["records"]["1"]["stdout"] == "after\n" and result["finished"]


def test_a_dead_kernel_fails_that_exercise_only(graded):
    row = _row(graded, "frank", "scaled_dot_product_attention")
    assert row["status"] == "error" and "kernel-died" in _flags(row)
    assert "the kernel exited with code 1" in row["message"]
    assert [_row(graded, "frank", e)["status"] for e in ("softmax", "causal_mask")] == ["passed", "passed"]


def test_reusing_the_reference_is_flagged_and_still_graded(graded):
    for student, exercise in [("frank", "softmax"), ("frank", "causal_mask"), ("erin", "scaled_dot_product_attention")]:
        row = _row(graded, student, exercise)
        assert row["status"] == "passed" and "uses-reference" in _flags(row), row
    assert all("uses-reference" not in _flags(r) for r in graded["rows"] if r["student"] == "alice")


def test_the_limits_reach_the_kernel(graded):
    row = _row(graded, "kate", "softmax")  # the student's code reports its own limits
    limits = json.loads(re.search(r"limits (\[.*?\])", row["message"]).group(1))
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert limits == [MEMORY_MB * 2**20, NOTEBOOK_TIMEOUT * threads + 30]
    row = _row(graded, "kate", "scaled_dot_product_attention")  # 8 GiB, lazily: fine without the limit
    assert row["status"] == "failed" and "can't allocate memory" in row["message"]
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != MEMORY_MB * 2**20  # the grader's own are not lowered


def test_edited_and_deleted_check_cells_are_reported_and_the_original_runs(graded):
    row = _row(graded, "kate", "scaled_dot_product_attention")  # its check cell printed the success line
    assert row["status"] == "failed" and "check-edited" in _flags(row)
    row = _row(graded, "kate", "causal_mask")
    assert row["status"] == "not started" and "check-deleted" in _flags(row)
    assert _flags(_row(graded, "kate", "softmax")) == {"system-access"}  # it imports resource


def test_a_notebook_is_identified_by_its_metadata_not_its_name(graded):
    rows = [r for r in graded["rows"] if r["student"] == "olga" and r["status"] != "missing"]
    assert {r["assignment"] for r in rows} == {"02_attention_from_scratch"}
    assert [r["status"] for r in rows] == ["passed"] * 3 and all("name-mismatch" in _flags(r) for r in rows)


def test_a_file_that_is_not_a_notebook_is_not_graded(graded):
    row = _row(graded, "gina", None)
    assert row["status"] == "not graded" and row["message"].startswith("not a notebook: the file is not valid JSON")


def test_what_a_student_did_not_hand_in_is_missing(graded):
    """Every assignment someone handed in (here 97 and 02) is owed by the whole class, even a student with an
    empty folder (ivan): a "missing" row, 0 points, for each of its exercises."""
    def missing(student: str) -> dict[str, list[dict]]:
        rows = [r for r in graded["rows"] if r["student"] == student and r["status"] == "missing"]
        return {a: [r for r in rows if r["assignment"] == a] for a in dict.fromkeys(r["assignment"] for r in rows)}

    course_02 = [r for r in graded["rows"] if r["student"] == "olga" and r["status"] != "missing"]
    assert list(missing("alice")) == ["02_attention_from_scratch"] and list(missing("olga")) == ["97_grading"]
    assert [r["grade_id"] for r in missing("alice")["02_attention_from_scratch"]] == [r["grade_id"] for r in course_02]
    assert [r["max_points"] for r in missing("alice")["02_attention_from_scratch"]] == \
        [r["max_points"] for r in course_02]
    assert [r["grade_id"] for r in missing("olga")["97_grading"]] == list(mini.CHECKS.values())
    for row in missing("alice")["02_attention_from_scratch"] + missing("olga")["97_grading"]:
        assert (row["points"], row["notebook"]) == ("0", "")
        assert row["message"] == "no notebook of this assignment was handed in"
    assert sorted(missing("ivan")) == sorted(missing("gina")) == ["02_attention_from_scratch", "97_grading"]
    assert all("none that could be read" in r["message"] for rows in missing("gina").values() for r in rows)
    rows = graded["rows"]
    assert [r["student"] for r in rows] == sorted(r["student"] for r in rows)  # each student's rows together
    report = (graded["out"] / "reports" / "ivan.md").read_text(encoding="utf-8")
    assert "## 97_grading: not handed in, 0 of 4 points" in report and "**0 of " in report


def test_a_notebook_of_no_assignment_is_not_graded(graded):
    row = _row(graded, "hal", None)
    assert row["status"] == "not graded" and row["message"].startswith("no grade_id of any assignment")
    assert "97_grading" in row["message"]


# -- a student's own progress, and the notebook time limit -----------------------------------------------------------


def test_me_prints_a_table_and_a_notebook_past_its_time_limit_is_stopped(course_dir, tmp_path, capsys):
    nb = mini.student()
    mini.set_exercise(nb, "softmax", WRONG_SOFTMAX)
    mini.set_exercise(nb, "causal_mask", "import time\n\ntime.sleep(600)\n")
    path = tmp_path / "notebooks" / "97_grading.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, str(path))
    start = time.perf_counter()
    assert grade.main([str(path.parent), "--me", "--course", str(course_dir), "--timeout-notebook", "12",
                       "--jobs", "1"]) == 0
    assert time.perf_counter() - start < 12 + 15
    out = capsys.readouterr().out
    assert "97_grading.ipynb: 0 of 4 points" in out
    assert re.search(r"^  failed +97-check_softmax\n {15}softmax: case '2-D, dim=-1' \(2 of 7\): softmax over the "
                     r"wrong\s+axis", out, re.MULTILINE), out
    assert re.search(r"^  not started +97-check_scaled_dot_product_attention\n  timeout +97-check_causal_mask\n"
                     r" {15}the notebook ran past its time limit", out, re.MULTILINE), out
    assert list(tmp_path.glob("*.csv")) == []  # --me writes nothing


# -- the command line's errors -------------------------------------------------------------------------------------


def test_a_missing_folder_exits_2_withone_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        grade.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "grades.csv")])
    assert one_error_line(capsys, excinfo) == f"error: SUBMISSIONS_DIR {tmp_path / 'nowhere'} does not exist"


def test_output_inside_the_submissions_is_refused(tmp_path, capsys):
    (tmp_path / "alice").mkdir()
    with pytest.raises(SystemExit) as excinfo:
        grade.main([str(tmp_path), "--out", str(tmp_path / "grades.csv")])
    assert "inside SUBMISSIONS_DIR" in one_error_line(capsys, excinfo)
    with pytest.raises(SystemExit) as excinfo:
        grade.main([str(tmp_path)])
    assert "give --out grades.csv" in one_error_line(capsys, excinfo)


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as excinfo:
        grade.main(["--help"])
    out = capsys.readouterr().out
    assert excinfo.value.code == 0 and "usage: python -m transformer_lib.grade" in out and "--timeout-notebook" in out


def test_students_are_the_first_folder_level_or_the_file_stem(tmp_path):
    for path in ["alice/02.ipynb", "alice/ps1/03.ipynb", "bob.ipynb", ".ipynb_checkpoints/x.ipynb",
                 "carol/.ipynb_checkpoints/02-checkpoint.ipynb"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    found = [(student, name) for student, name, _ in grade.find_submissions(tmp_path)]
    assert found == [("alice", "alice/02.ipynb"), ("alice", "alice/ps1/03.ipynb"), ("bob", "bob.ipynb")]


# -- reading the code: uses the reference, patches the runtime -------------------------------------------------------

ENV = ["import torch\nfrom torch import nn\nfrom transformer_lib import attention, checks, multihead\n"
       "import transformer_lib.attention"]
SDPA = "def scaled_dot_product_attention(q, k, v, mask=None):\n    return {}(q, k, v, mask)"
CELLS = {
    "from-import": ("from transformer_lib.attention import scaled_dot_product_attention", {"uses-reference"}),
    "from-import-as": ("from transformer_lib.attention import scaled_dot_product_attention as f\n" + SDPA.format("f"),
                       {"uses-reference"}),
    "module-attribute": (SDPA.format("attention.scaled_dot_product_attention"), {"uses-reference"}),
    "import-as": ("import transformer_lib.attention as m\n" + SDPA.format("m.scaled_dot_product_attention"),
                  {"uses-reference"}),
    "full-path": (SDPA.format("transformer_lib.attention.scaled_dot_product_attention"), {"uses-reference"}),
    "alias": ("scaled_dot_product_attention = attention.scaled_dot_product_attention", {"uses-reference"}),
    "through-the-checks": (SDPA.format("checks.attention.attention.scaled_dot_product_attention"), {"uses-reference"}),
    "getattr": (SDPA.format("getattr(attention, 'scaled_dot_product_attention')"), {"uses-reference"}),
    "import-module": ("import importlib\n" + SDPA.format(
        "importlib.import_module('transformer_lib.attention').scaled_dot_product_attention"),
        {"uses-reference", "patches-runtime"}),
    "torch-built-in": (SDPA.format("torch.nn.functional.scaled_dot_product_attention"), {"uses-reference"}),
    "checker-helper": ("from transformer_lib.checks.attention import sdpa_variants", {"uses-reference"}),
    "own-code": ("def scaled_dot_product_attention(q, k, v, mask=None):\n    s = q @ k.transpose(-2, -1)\n"
                 "    return torch.softmax(s, -1) @ v, s", set()),
    "shadowed-by-a-parameter": ("def scaled_dot_product_attention(q, k, v, mask=None, attention=None):\n"
                                "    return attention.scaled_dot_product_attention(q, k, v)", set()),
    "computed-name": (SDPA.format("getattr(attention, 'scaled_' + 'dot_product_attention')"), {"dynamic-code"}),
    "exec": ("exec('from transformer_lib.attention import scaled_dot_product_attention')", {"dynamic-code"}),
    "patch-check": ("checks.check_scaled_dot_product_attention = lambda *a, **k: None", {"patches-runtime"}),
    "patch-via-import": ("import transformer_lib.checks as c\nc.check_softmax = print", {"patches-runtime"}),
    "patch-reference": ("transformer_lib.attention.scaled_dot_product_attention = print", {"patches-runtime"}),
    "redefine-checks": ("checks = None", {"patches-runtime"}),
    "redefine-checks-class": ("class checks:\n    pass", {"patches-runtime"}),
    "patch-torch-in-a-function": ("def f():\n    torch.allclose = torch.is_tensor", {"patches-runtime"}),
    "patch-a-local-import": ("def f():\n    import torch as t\n    t.allclose = t.is_tensor", {"patches-runtime"}),
    "patch-a-local-alias": ("def f():\n    t = torch\n    t.allclose = t.is_tensor", {"patches-runtime"}),
    "local-import-of-the-reference": ("def scaled_dot_product_attention(q, k, v, mask=None):\n"
                                      "    import transformer_lib.attention as m\n    f = m.scaled_dot_product_attention\n"
                                      "    return f(q, k, v, mask)", {"uses-reference"}),
    "a-parameter-is-not-torch": ("def f(torch):\n    torch.allclose = 1", set()),
    "patch-torch": ("setattr(torch, 'allclose', lambda *a, **k: True)", {"patches-runtime"}),
    "patch-tensor-class": ("torch.Tensor.__eq__ = lambda a, b: True", {"patches-runtime"}),
    "tensor-subclass": ("class T(torch.Tensor):\n    @classmethod\n"
                        "    def __torch_function__(cls, f, t, a=(), k=None):\n        return True",
                        {"patches-runtime"}),
    "sys-modules": ("import sys\nsys.modules['transformer_lib.checks'] = None", {"patches-runtime"}),
    "ipython": ("get_ipython().ast_transformers.append(None)", {"patches-runtime"}),
    "processes": ("import subprocess\nsubprocess.run(['ls'])", {"system-access"}),
    "files": ("open('/etc/passwd').read()", {"system-access"}),
    "module-methods-are-fine": ("class M(nn.Module):\n    def f(self):\n        return list(self.modules())", set()),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_what_an_exercise_cell_does_is_read_from_its_code(name):
    source, flags = CELLS[name]
    found = analyse(source, "check_scaled_dot_product_attention", notebook_env(ENV))
    assert set(found.flags) == flags, found.notes
    assert all(re.match(r"line \d+: ", note) for note in found.notes) and len(found.notes) >= len(flags)


@pytest.mark.parametrize("source, flagged", [
    ("F.cross_entropy(logits.flatten(0, 1), target.flatten(), label_smoothing=smoothing)", True),
    ("torch.nn.CrossEntropyLoss(ignore_index=pad_id, label_smoothing=0.1)(logits, target)", True),
    ("nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=pad_id)", False),
    ("-F.log_softmax(logits, -1).gather(-1, target[..., None])", False),
])
def test_cross_entropy_is_reuse_in_the_label_smoothing_exercise_only_with_label_smoothing(source, flagged):
    """Plain cross-entropy is a fair part of a label-smoothed loss; torch's ``label_smoothing=`` is the exercise."""
    env = notebook_env(["import torch\nfrom torch import nn\nimport torch.nn.functional as F"])
    cell = f"def label_smoothed_cross_entropy(logits, target, *, pad_id=0, smoothing=0.1):\n    return {source}"
    found = analyse(cell, "check_label_smoothed_cross_entropy", env)
    assert ("uses-reference" in found.flags) == flagged, found.notes
    assert not analyse(cell, "check_softmax", env).flags  # in another exercise, the same call is no reuse
    if flagged:
        assert "label_smoothing=...)`, torch's version of this exercise" in found.notes[0]


def test_subclassing_and_methods_of_the_reference_are_flagged():
    env = notebook_env(ENV)
    found = analyse("class MultiHeadAttention(multihead.MultiHeadAttention):\n    pass", "check_multi_head_attention",
                    env)
    assert found.flags == ["uses-reference"] and "subclasses `multihead.MultiHeadAttention`" in found.notes[0]
    method = analyse("def softmax(x, dim=-1):\n    return x.softmax(dim)", "check_softmax", env)
    assert method.flags == ["uses-reference"]
    # the student's own function of the same name, from an earlier exercise, is not the reference
    env = notebook_env([*ENV, "def scaled_dot_product_attention(q, k, v, mask=None):\n    return q, k"])
    assert analyse("def safe_attention(q, k, v, mask=None):\n    return scaled_dot_product_attention(q, k, v)",
                   "check_safe_attention", env).flags == []


def test_every_course_check_has_its_reference():
    """Each check the course calls has an entry; its first object is what the check compares against (named in the
    check's source) or the library's function of the exercise's own name, and every entry resolves."""
    course = load_course(grade.COURSE_DIR)
    called = {e.check for a in course for e in a.exercises}
    assert called and called <= set(REFERENCES), called - set(REFERENCES)
    for check, paths in REFERENCES.items():
        assert all(resolve_path(p) is not None for p in paths), check
        source = Path(sys.modules[getattr(checks, check).__module__].__file__).read_text(encoding="utf-8")
        module, name = paths[0].rsplit(".", 1)
        short = {"torch": "torch", "torch.nn": "nn"}.get(module, module.rsplit(".", 1)[-1])
        assert f"{short}.{name}" in source or f"check_{name}" == check, (check, paths[0])


def test_every_check_prints_the_line_the_grader_counts_as_a_pass(capsys):
    checks.check_softmax(lambda x, dim=-1: torch.softmax(x, dim=dim))
    assert re.fullmatch(r"softmax: all \d+ cases pass\n", capsys.readouterr().out)
    for name in checks.__all__:
        if name.startswith("check_"):
            assert "run_cases(" in Path(sys.modules[getattr(checks, name).__module__].__file__).read_text(), name
