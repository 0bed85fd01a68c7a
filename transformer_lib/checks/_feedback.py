"""What a student sees when a check fails: a few lines, not a traceback through the checker.

IPython displays an exception that has a ``_render_traceback_()`` method as the lines that method
returns (and stores them as the error output's traceback). :class:`CheckFailed` shows the exercise,
the case, the diagnosis and expected vs got; if the student's own code raised, their frames follow,
and only theirs. :class:`ExerciseNotDone` is one line. Outside IPython (pytest, a script) both are
ordinary exceptions, an ``AssertionError`` and a ``NotImplementedError``, whose ``str()`` is the
whole message, so pytest, nbval and graders count them as failures as before.
"""

from __future__ import annotations

import types
from pathlib import Path

import torch

__all__ = ["CheckFailed", "ExerciseNotDone", "ERROR_HINTS"]

ERROR_HINTS = (  # (substring of a torch error message, hint for the student)
    ("view size is not compatible",
     "a transposed tensor is not contiguous: use .reshape(...) or .contiguous().view(...)"),
    ("cannot be multiplied", "a shape mismatch: write the shape next to each line, e.g. `# (B, H, T_q, T_k)`"),
    ("must match the size", "a shape mismatch: write each line's shape next to it (a sum without keepdim=True? "
                            "a transpose of the wrong dims?)"),
    ("unexpected keyword argument", "keep the signature given in the exercise"),
    ("Dimension out of range", "count dims from the end (e.g. k.transpose(-2, -1)) so any number of batch dims works"),
    ("positional argument", "keep the signature given in the exercise"),
)

_RED, _RESET = "\x1b[0;31m", "\x1b[0m"
_HIDDEN_DIRS = (str(Path(torch.__file__).parent), str(Path(__file__).resolve().parent.parent))  # torch, the library


class CheckFailed(AssertionError):
    """A check found a mistake. ``str()`` is the whole message; a notebook shows only these few lines.

    Args:
        message: the exercise, the case and the diagnosis, then indented detail lines.
        student_error: the exception the student's own code raised, if that was the failure.
    """

    def __init__(self, message: str, student_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.student_error = student_error

    def _render_traceback_(self) -> list[str]:
        first, *rest = str(self).splitlines()
        lines = [f"{_RED}{type(self).__name__}{_RESET}: {first}", *rest]
        if self.student_error is not None:
            lines += ["", "Where your code raised it (the checker's own frames are hidden):",
                      *_student_traceback(self.student_error)]
        return lines


class ExerciseNotDone(NotImplementedError):
    """The student's function still raises the stub's ``NotImplementedError``; shown as one line."""

    def _render_traceback_(self) -> list[str]:
        return [f"{_RED}{type(self).__name__}{_RESET}: {self}"]


def _student_traceback(err: BaseException) -> list[str]:
    """The traceback of ``err`` without the frames of torch and of this library, as IPython formats it."""
    frames, tb = [], err.__traceback__
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_HIDDEN_DIRS):
            frames.append(tb)
        tb = tb.tb_next
    kept = None
    for tb in reversed(frames):  # rebuild the chain from the student's frames only
        kept = types.TracebackType(kept, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            lines = shell.InteractiveTB.structured_traceback(type(err), err, kept, tb_offset=0)
            lines = [line for chunk in lines for line in chunk.splitlines()]
            return [line for line in lines[1:] if "Traceback (most recent call last)" not in line]  # no header
    except Exception:  # noqa: BLE001 - formatting must never hide the student's error
        pass
    import traceback

    return "".join(traceback.format_exception(type(err), err, kept)).splitlines()
