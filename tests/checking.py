"""Helpers shared by the tests of the exercise checks (tests/test_checks*.py)."""

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
