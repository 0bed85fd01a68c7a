"""Grade a folder of submitted notebooks: ``python -m transformer_lib.grade SUBMISSIONS_DIR --out grades.csv``.

    python -m transformer_lib.grade submitted/ --out grades.csv    # instructors: a CSV and a report per student
    python -m transformer_lib.grade notebooks/ --me                # a student: a table of their own progress

Every ``.ipynb`` under SUBMISSIONS_DIR is graded (any file name; folders starting with ``.``, such as
``.ipynb_checkpoints``, are skipped). The student is the first folder level under SUBMISSIONS_DIR
(``submitted/alice/02.ipynb``, and nbgrader's ``submitted/alice/ps1/02.ipynb``, are alice's), or the file's
stem for a file directly in it (``submitted/alice.ipynb``). The assignment is recognised from the nbgrader
grade_ids in the notebook's cells, not from its name, among the pristine notebooks of ``--course`` (default:
this repository's ``notebooks/``). The notebook that runs is that pristine copy with only the exercise cells
taken from the submission (:mod:`transformer_lib.grade.notebook`), with hidden cells around each check that
keep it judging against the true reference (:mod:`transformer_lib.grade.guard`); what each exercise cell's
code does (uses the reference, patches the runtime) is read from its syntax tree
(:mod:`transformer_lib.grade.static`).

Each submission runs in its own process (:mod:`transformer_lib.grade.run`), in a fresh kernel, in a temporary
working directory holding only a copy of it, with limits on memory (``--memory-mb``, per process), CPU time,
each cell's time (``--timeout-cell``) and the whole notebook's wall-clock time (``--timeout-notebook``: then
the process and all its children are killed). The submissions folder is only read. ``grades.csv`` has one
row per student and exercise (``COLUMNS``: status, points from the check cell's nbgrader metadata, the first
line of the check's message, flags), ``missing`` ones included: each assignment someone handed in is owed by
the whole class (every folder under SUBMISSIONS_DIR is a student); the reports are Markdown, one per student.
Exit status: 0 when grading ran (even if students failed), 1 if the grader itself failed on some submission,
2 with one ``error:`` line on bad use.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from . import guard as _grade_guard
from .names import bind, parse
from .notebook import NotGraded, build_plan, identify, load_course, read_notebook
from .report import (COLUMNS, Row, file_name, mark_duplicates, markdown_report, missing_rows, rows_for, terminal_table,
                     write_csv)
from .static import analyse

__all__ = ["main", "find_submissions", "find_students", "grade_submission", "COLUMNS", "PACKAGE_DIR", "COURSE_DIR"]

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # transformer_lib/
COURSE_DIR = PACKAGE_DIR.parent / "notebooks"  # the pristine student notebooks of this repository


def find_submissions(folder: Path) -> list[tuple[str, str, Path]]:
    """``(student, path relative to folder, path)`` of every notebook under ``folder``, sorted."""
    if folder.is_file():
        return [(folder.stem, folder.name, folder)]
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        found.append((relative.parts[0] if len(relative.parts) > 1 else path.stem, relative.as_posix(), path))
    return found


def find_students(folder: Path, submissions: list[tuple[str, str, Path]]) -> list[str]:
    """The class: every folder directly under ``folder`` (an empty one is a student who handed in nothing), and
    every student of ``submissions``; sorted."""
    folders = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []
    return sorted({*folders, *(student for student, _, _ in submissions)})


def course_digest(course_dir: Path) -> str:
    """SHA-256 of the library's source and the pristine notebooks: grading must leave them as they were."""
    digest = hashlib.sha256()
    for path in sorted([*PACKAGE_DIR.rglob("*.py"), *Path(course_dir).glob("*.ipynb")]):
        digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _findings(plan) -> dict:
    """Static analysis of each exercise cell, in notebook order (earlier exercises' names are in scope)."""
    findings, env = {}, {}  # env: the names the cells so far bind
    exercises = {e.exercise_cell: e for e in plan.assignment.exercises}
    for i, cell in enumerate(plan.assignment.nb.cells):
        if cell.cell_type != "code":
            continue
        sources = [cell.source]
        if i in exercises:
            e = exercises[i]
            sources = plan.student_cells.get(e.grade_id) or []
            findings[e.check_id] = analyse("\n\n".join(sources), e.check, env)
        for tree in filter(None, map(parse, sources)):
            bind(tree, env)
    return findings


def _kill_tree(pid: int, workdir: Path) -> None:
    """Kill a process, its descendants, and any process still working in ``workdir`` (an orphaned kernel)."""
    import psutil

    procs = []
    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        pass
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if (cwd == str(workdir) or cwd.startswith(f"{workdir}{os.sep}")) and proc.pid != os.getpid():
            procs.append(proc)
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def _kernel_env(workdir: Path, threads: int) -> dict[str, str]:
    """What the grading process and its kernel get on top of the grader's environment."""
    return {
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "MALLOC_ARENA_MAX": "2",
        "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONDONTWRITEBYTECODE": "1",
        # temporary files, IPython's profile (no startup files of yours, no shared history) and the kernel's
        # connection file all stay in the working directory, removed afterwards
        "TMPDIR": str(workdir), "IPYTHONDIR": str(workdir / ".ipython"), "JUPYTER_RUNTIME_DIR": str(workdir / ".run"),
        # the kernel imports this very library, wherever the grader was started from
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_DIR.parent), os.environ.get("PYTHONPATH")])),
    }


def _run_worker(workdir: Path, job: dict, env: dict[str, str], wall_limit: float) -> tuple[dict, bool, str]:
    """Run grade/run.py on ``job`` with ``env`` on top of the grader's environment (its kernel inherits it);
    return (its result, whether it ran out of time, its last stderr line)."""
    (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    # Run the file, not `-m transformer_lib.grade.run`: importing the package would import torch for nothing.
    command = [sys.executable, "-c", f"import runpy; runpy.run_path({str(PACKAGE_DIR / 'grade' / 'run.py')!r}, "
               "run_name='__main__')", str(workdir / "job.json")]
    with open(workdir / "worker.log", "wb") as log:
        proc = subprocess.Popen(command,
                                cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **env})
        try:
            proc.wait(timeout=wall_limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_tree(proc.pid, workdir)
    result_file = workdir / "result.json"
    result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.exists() else {}
    tail = [line for line in (workdir / "worker.log").read_text(errors="replace").splitlines() if line.strip()]
    return result, timed_out, tail[-1] if tail else ""


def grade_submission(student: str, name: str, path: Path, course: list, options: argparse.Namespace
                     ) -> tuple[list[Row], list[str], bool]:
    """Grade one notebook: (rows, notes for the report, whether the grader itself failed)."""
    workdir = Path(tempfile.mkdtemp(prefix="grade-"))
    try:
        copy = workdir / "submission.ipynb"
        shutil.copyfile(path, copy)  # the kernel never sees the submissions folder
        try:
            submission = read_notebook(copy)
            assignment = identify(submission, course)
        except NotGraded as why:
            return [Row(student, name, "", "", "not graded", 0, 0, str(why))], [], False
        plan = build_plan(assignment, submission, stem=path.stem, guard_path=_grade_guard.__file__,
                          package_dir=str(PACKAGE_DIR))
        findings = _findings(plan)
        nbformat.write(plan.nb, str(workdir / "graded.ipynb"))
        threads = max(1, (os.cpu_count() or 1) // options.jobs)
        env = _kernel_env(workdir, threads)
        job = {"notebook": str(workdir / "graded.ipynb"), "cwd": str(workdir), "cell_timeout": options.timeout_cell,
               "memory_mb": options.memory_mb, "cpu_seconds": options.timeout_notebook * threads + 30}
        result, timed_out, last = _run_worker(workdir, job, env, options.timeout_notebook)
        if not result and not timed_out:
            message = f"the grader could not run this notebook: {last[:200]}"
            return [Row(student, name, assignment.name, e.check_id, "error", 0, e.points, message)
                    for e in assignment.exercises], plan.notes, True
        notes = list(plan.notes) + (["the notebook ran past --timeout-notebook and was stopped"] if timed_out else [])
        if result.get("refused"):
            notes.append(f"this system refused the {' and '.join(result['refused'])} limit: it was not enforced")
        return rows_for(student, name, plan, result, findings, timed_out), notes, False
    except Exception as err:  # noqa: BLE001 - one broken submission (or grader bug) must not stop the class
        return [Row(student, name, "", "", "error", 0, 0, f"grader error: {type(err).__name__}: {err}")], [], True
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number; got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m transformer_lib.grade",
                                     description="Grade a folder of submitted notebooks (or, with --me, your own).")
    parser.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR",
                        help="folder of submitted notebooks (one folder per student), or one notebook")
    parser.add_argument("--out", type=Path, metavar="CSV", help="the CSV to write (required unless --me)")
    parser.add_argument("--report-dir", type=Path, metavar="DIR", help="folder for one Markdown report per student "
                        "(default: next to --out, named after it: grades-reports/)")
    parser.add_argument("--me", action="store_true", help="a student grading their own notebooks: print a table "
                        "of which exercises pass, fail (and why) or are not started")
    parser.add_argument("--course", type=Path, default=COURSE_DIR, metavar="DIR",
                        help="the pristine student notebooks (default: notebooks/ of this repository)")
    parser.add_argument("--timeout-cell", type=_positive, default=120, metavar="S", help="seconds per cell (120)")
    parser.add_argument("--timeout-notebook", type=_positive, default=900, metavar="S",
                        help="wall-clock seconds per notebook, reruns included (900)")
    parser.add_argument("--memory-mb", type=_positive, default=4096, metavar="M",
                        help="address-space limit of the kernel and of its grading process, each (4096)")
    parser.add_argument("--jobs", type=_positive, default=max(1, (os.cpu_count() or 1) // 2), metavar="N",
                        help="notebooks graded at the same time (default: half the CPU cores)")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list, list]:
    if not args.submissions.exists():
        parser.exit(2, f"error: SUBMISSIONS_DIR {args.submissions} does not exist\n")
    if not args.me and args.out is None:
        parser.exit(2, "error: give --out grades.csv (or --me to see your own progress)\n")
    root = args.submissions.resolve()
    for option, target in (("--out", args.out), ("--report-dir", args.report_dir)):
        if target is not None and (target.resolve() == root or root in target.resolve().parents):
            parser.exit(2, f"error: {option} {target} is inside SUBMISSIONS_DIR, which grading never modifies\n")
    if not args.course.is_dir():
        parser.exit(2, f"error: no course notebooks at {args.course}; pass --course DIR\n")
    course = load_course(args.course)
    if not course:
        parser.exit(2, f"error: {args.course} holds no notebook with graded exercises\n")
    submissions = find_submissions(args.submissions)
    if not submissions:
        parser.exit(2, f"error: no .ipynb file in {args.submissions}\n")
    return course, submissions


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    course, submissions = _check_args(parser, args)
    if args.me:  # a student's own notebooks/ holds 00_setup too, which has nothing to grade
        no_exercises = {p.name for p in args.course.glob("*.ipynb")} - {f"{a.name}.ipynb" for a in course}
        submissions = [s for s in submissions if s[2].name not in no_exercises] or submissions
    results: dict[int, tuple] = {}
    started = time.perf_counter()

    def one(index: int) -> None:
        student, name, path = submissions[index]
        t0, before = time.perf_counter(), course_digest(args.course)
        rows, notes, failed = grade_submission(student, name, path, course, args)
        if course_digest(args.course) != before:  # a submission (or a person) wrote into the library or the course
            for row in rows:
                row.flags.append("course-files-modified")
            print(f"warning: the course files changed on disk while grading {name}", file=sys.stderr)
        results[index] = rows, notes, failed
        got, of = sum(r.points for r in rows), sum(r.max_points for r in rows)
        what = f"{rows[0].assignment}: {got:g} of {of:g} points" if rows[0].assignment else rows[0].message
        flags = sorted({f for r in rows for f in r.flags})
        print(f"[{len(results)}/{len(submissions)}] {name}: {what}{' (' + ', '.join(flags) + ')' if flags else ''}"
              f" in {time.perf_counter() - t0:.0f} s", flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, range(len(submissions))))
    rows = [row for i in range(len(submissions)) for row in results[i][0]]
    notes = {submissions[i][1]: results[i][1] for i in range(len(submissions))}
    mark_duplicates(rows)
    # each student's rows, then a "missing" row per exercise of what others handed in and they did not
    missing = [] if args.me else missing_rows(rows, course, find_students(args.submissions, submissions))
    rows = sorted(rows + missing, key=lambda r: r.student)  # stable: each student's rows keep their order
    if args.me:
        print(terminal_table(rows, notes, width=shutil.get_terminal_size((120, 20)).columns))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_csv(rows, args.out)
        report_dir = args.report_dir or args.out.with_name(f"{args.out.stem}-reports")
        report_dir.mkdir(parents=True, exist_ok=True)
        students = list(dict.fromkeys(r.student for r in rows))
        for student in students:
            mine = [r for r in rows if r.student == student]
            text = markdown_report(student, mine, {n: notes[n] for n in dict.fromkeys(r.notebook for r in mine) if n})
            (report_dir / f"{file_name(student)}.md").write_text(text, encoding="utf-8")
        gaps = len({(r.student, r.assignment) for r in missing})
        print(f"wrote {args.out} ({len(rows)} rows, {len(submissions)} notebooks, {len(students)} students, "
              f"{gaps} assignment{'s' * (gaps != 1)} not handed in) and "
              f"{len(students)} reports in {report_dir}/ in {time.perf_counter() - started:.0f} s")
    return 1 if any(results[i][2] for i in results) else 0

