"""Turning what ran into grades: one row per exercise, the CSV, the Markdown report, the student's table."""

from __future__ import annotations

import csv
import re
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .run import TIMEOUT

__all__ = ["Row", "COLUMNS", "STATUSES", "rows_for", "missing_rows", "mark_duplicates", "write_csv", "markdown_report",
           "terminal_table", "first_line", "file_name"]

COLUMNS = ["student", "notebook", "assignment", "grade_id", "status", "points", "max_points", "message", "flags"]
STATUSES = ("passed", "failed", "not started", "error", "timeout", "not graded", "missing")
_SUCCESS = re.compile(r"^\S.*: all \d+ cases pass$", re.MULTILINE)  # what every check prints when it passes
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOT_DONE = ("ExerciseNotDone", "NotImplementedError")
_WRONG = ("CheckFailed", "AssertionError")


@dataclass
class Row:
    """One line of grades.csv: one exercise of one submission (or the whole submission, if not graded)."""

    student: str
    notebook: str
    assignment: str
    grade_id: str
    status: str
    points: float
    max_points: float
    message: str
    flags: list[str] = field(default_factory=list)
    detail: str = ""  # the check's whole message, for the report
    notes: list[str] = field(default_factory=list)  # for the report


def first_line(text: str) -> str:
    lines = [line.strip() for line in _ANSI.sub("", text or "").splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _status(check: dict | None, verify: dict | None, exercise: list[dict], death: dict | None,
            timed_out: bool, guard: dict | None = None) -> tuple[str, str, str]:
    """(status, message, detail) of one exercise from the records of its cells."""
    if guard is not None and guard.get("ename"):
        return "error", f"the grader could not restore the library before this check: {guard['ename']}", \
            guard.get("evalue", "")
    if death is not None:
        if death["reason"].startswith(TIMEOUT):
            return "timeout", f"{death['reason']}: an endless loop?", ""
        return "error", f"{death['reason']}, in this exercise or its check", ""
    if check is None:
        return ("timeout", "the notebook ran past its time limit (--timeout-notebook) before this check", "") \
            if timed_out else ("error", "the check did not run (the kernel stopped before it)", "")
    ename, evalue = check.get("ename"), _ANSI.sub("", check.get("evalue", ""))
    raised = [r for r in exercise if r.get("ename")]
    if ename in _NOT_DONE:
        return "not started", first_line(evalue), evalue
    if ename in _WRONG:
        return "failed", first_line(evalue), evalue
    if ename:
        if raised:
            cause = raised[-1]
            return "error", f"your exercise cell raised {cause['ename']}: {first_line(cause.get('evalue', ''))}", \
                evalue
        return "error", f"{ename}: {first_line(evalue)}", evalue
    if verify is not None and verify.get("ename"):
        return "error", first_line(verify.get("evalue", "")), verify.get("evalue", "")
    passed = _SUCCESS.findall(_ANSI.sub("", check.get("stdout", "")))
    if not passed:
        return "error", "the check printed no result", check.get("stdout", "")
    return "passed", passed[-1], ""


def rows_for(student: str, notebook: str, plan, result: dict, findings: dict, timed_out: bool) -> list[Row]:
    """The rows of one graded submission: ``plan`` (what ran), ``result`` (the worker's records),
    ``findings`` (check_id -> static Findings)."""
    records, cells = result.get("records", {}), plan.nb.cells
    deaths = {d["exercise"]: d for d in result.get("deaths", []) if d.get("exercise")}
    rows = []
    for e in plan.assignment.exercises:
        keys = {role: [str(i) for i, c in enumerate(cells) if c.metadata["grading"].get("check") == e.check_id
                       and c.metadata["grading"]["role"] == role] for role in ("exercise", "guard", "check", "verify")}
        check, verify, guard = (records.get(keys[role][0]) if keys[role] else None
                                for role in ("check", "verify", "guard"))
        exercise = [records[k] for k in keys["exercise"] if k in records]
        status, message, detail = _status(check, verify, exercise, deaths.get(e.grade_id), timed_out, guard)
        flags = list(plan.flags.get(e.check_id, []))
        found = findings.get(e.check_id)
        if found is not None:
            flags += [f for f in found.flags if f not in flags]
        if any(r is not None and r.get("ename") for r in (verify, guard)) and "patches-runtime" not in flags:
            flags.append("patches-runtime")
        if e.grade_id in deaths:
            flags.append("kernel-died")
        points = e.points if status == "passed" else 0
        rows.append(Row(student, notebook, plan.assignment.name, e.check_id, status, points, e.points, message,
                        flags, detail, list(found.notes) if found else []))
    return rows


def missing_rows(rows: list[Row], course: list, students: list[str]) -> list[Row]:
    """Rows for what was not handed in: a ``missing`` row (0 points) per exercise of every assignment that
    someone in the class handed in, for each of ``students`` who handed in no notebook of it."""
    handed = {(r.student, r.assignment) for r in rows if r.assignment}
    owed = [a for a in course if a.name in {name for _, name in handed}]  # course order
    unreadable = {r.student for r in rows if r.status == "not graded"}
    out = []
    for student in students:
        for a in owed:
            if (student, a.name) not in handed:
                why = "no notebook of this assignment was handed in" + (
                    " (or none that could be read: see the rows that were not graded)" if student in unreadable else "")
                out += [Row(student, "", a.name, e.check_id, "missing", 0, e.points, why) for e in a.exercises]
    return out


def mark_duplicates(rows: list[Row]) -> None:
    """Flag every row of an assignment that one student handed in more than once (in several notebooks)."""
    seen: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if row.assignment:
            seen.setdefault((row.student, row.assignment), set()).add(row.notebook)
    for row in rows:
        if len(seen.get((row.student, row.assignment), ())) > 1:
            row.flags.append("duplicate")


def file_name(student: str) -> str:
    """A safe file name for a student's report."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in student).lstrip(".") or "student"


def write_csv(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            data = {k: v for k, v in asdict(row).items() if k in COLUMNS}
            data["flags"] = ";".join(row.flags)
            writer.writerow(data)


_FLAG_TEXT = {
    "uses-reference": "**uses the reference implementation**: the exercise cell uses the library's (or torch's) "
                      "version of what it should implement",
    "check-edited": "the check cell was edited; the original check ran",
    "check-deleted": "the check cell was deleted; the original check ran",
    "exercise-missing": "no exercise cell with this grade_id: the course's stub ran",
    "patches-runtime": "the exercise cell changes the library, torch, the checks or the kernel; the check ran "
                       "against a pristine copy",
    "dynamic-code": "the exercise cell runs code it builds at run time (exec, eval, computed imports)",
    "system-access": "the exercise cell uses files, processes or the network",
    "kernel-died": "the kernel died in this exercise; the others ran in a fresh kernel without it",
    "name-mismatch": "the file name names another notebook than its cells do",
    "duplicate": "this student handed in this assignment more than once; every copy is graded",
    "course-files-modified": "the course's library or notebooks changed on disk while this was graded",
}


_NOTEBOOK_FLAGS = ("name-mismatch", "duplicate", "course-files-modified")  # the same on every row of a notebook


def _points(value: float) -> str:
    return f"{value:g}"


def _where(row: Row) -> tuple[str, str]:  # a report's sections: one per notebook, one per assignment not handed in
    return row.notebook, "" if row.notebook else row.assignment


def markdown_report(student: str, rows: list[Row], notes: dict[str, list[str]]) -> str:
    """A readable report of one student: per notebook, a table of exercises, then notes and messages."""
    lines = [f"# Grades: {student}", ""]
    total, possible = sum(r.points for r in rows), sum(r.max_points for r in rows)
    lines += [f"**{_points(total)} of {_points(possible)} points**", ""]
    for where in dict.fromkeys(_where(r) for r in rows):
        mine = [r for r in rows if _where(r) == where]
        got, of, notebook = sum(r.points for r in mine), sum(r.max_points for r in mine), mine[0].notebook
        title = f"{notebook}: {mine[0].assignment or 'not graded'}" if notebook else \
            f"{mine[0].assignment}: not handed in"
        lines += [f"## {title}, {_points(got)} of {_points(of)} points", ""]
        lines += ["| exercise | status | points | why | flags |", "|---|---|---|---|---|"]
        for r in mine:
            why = r.message.replace("|", "\\|")
            lines.append(f"| `{r.grade_id or '-'}` | {r.status} | {_points(r.points)} / {_points(r.max_points)} "
                         f"| {why} | {', '.join(r.flags)} |")
        extra = [f"- {n}" for n in notes.get(notebook, [])]
        extra += [f"- {_FLAG_TEXT[f]}" for f in _NOTEBOOK_FLAGS if f in mine[0].flags]
        for r in mine:
            extra += [f"- `{r.grade_id}`: {_FLAG_TEXT[f]}" for f in r.flags if f in _FLAG_TEXT
                      and f not in _NOTEBOOK_FLAGS]
            extra += [f"  - {n}" for n in r.notes]
        if extra:
            lines += ["", "Notes:", "", *extra]
        for r in mine:
            if r.detail and r.status != "passed" and "\n" in r.detail.strip():
                lines += ["", f"`{r.grade_id}` in full:", "", "```", r.detail.strip()[:3000], "```"]
        lines.append("")
    return "\n".join(lines)


def terminal_table(rows: list[Row], notes: dict[str, list[str]], width: int = 100) -> str:
    """What ``--me`` prints: per notebook, a line per exercise (status, grade_id, flags); under a failure, why."""
    out, wide = [], max((len(r.grade_id) for r in rows), default=0)
    indent = " " * 15
    for notebook in dict.fromkeys(r.notebook for r in rows):
        mine = [r for r in rows if r.notebook == notebook]
        got, of = sum(r.points for r in mine), sum(r.max_points for r in mine)
        out.append(f"{notebook}: {_points(got)} of {_points(of)} points")
        for r in mine:
            flags = f"  [{', '.join(r.flags)}]" if r.flags else ""
            out.append(f"  {r.status:<12} {r.grade_id:<{wide}}{flags}".rstrip())
            if r.status not in ("passed", "not started"):  # the status says all for those
                out.append(textwrap.fill(r.message, width=max(width, 40), initial_indent=indent,
                                         subsequent_indent=indent))
        out += [textwrap.fill(f"note: {n}", width=max(width, 40), initial_indent="  ", subsequent_indent="    ")
                for n in notes.get(notebook, [])]
    return "\n".join(out)
