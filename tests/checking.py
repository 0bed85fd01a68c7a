"""Helpers shared by the tests: of the exercise checks (tests/test_checks*.py) and of the command lines."""

from __future__ import annotations

import pytest


def raises(match: str):
    """``pytest.raises(AssertionError)`` whose pattern may span the lines of the message."""
    return pytest.raises(AssertionError, match="(?s)" + match)


def passes(check, obj, capsys) -> list[str]:
    """Run a check that must pass; return the lines it printed (the last is the success line)."""
    check(obj)
    lines = capsys.readouterr().out.splitlines()
    assert lines and lines[-1].endswith("cases pass"), lines
    return lines


def one_error_line(capsys, excinfo) -> str:
    """The single stderr line of a command line that exited with code 2."""
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()
