"""Machinery shared by the checks of every exercise (not part of the course's public API).

A check builds seeded cases, calls the student's code through :func:`call` (which turns any exception
into a diagnosed :class:`Mistake`), and compares the result with the reference through :func:`compare`:
when they differ, the student's output is matched against known-wrong variants of the reference
("matches the unscaled variant"), then against structural properties ("rows sum to 1"), so the
message names the likely mistake. :func:`run_cases` turns a ``Mistake`` into the :class:`CheckFailed`
the student sees (a few lines: see :mod:`._feedback`), and prints one success line when every case passes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ._feedback import ERROR_HINTS, CheckFailed, ExerciseNotDone

__all__ = [
    "CheckFailed", "ExerciseNotDone", "Mistake", "seeded", "run_cases", "call", "describe", "close", "compare",
    "compare_pair", "weight_rows", "MODULE_TOL",
]

MODULE_TOL = dict(atol=1e-4, rtol=1e-4)  # modules chain several matmuls and LayerNorms

Variant = tuple[str, Callable[[], Any]]  # (diagnosis, thunk computing what that mistake returns)

class Mistake(Exception):
    """A diagnosed mistake in student code; :func:`run_cases` turns it into a :class:`CheckFailed`."""


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Seed torch, disable autograd and use one CPU thread inside; restore the caller's RNG state and threads.

    One thread: the tensors are tiny, and on a busy machine a second thread makes each op wait milliseconds.
    """
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.set_num_threads(1)
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def run_cases(exercise: str, cases: Sequence[tuple[str, Any]], run_case: Callable[[Any], None],
              notes: Sequence[str] = ()) -> None:
    """Run ``run_case(data)`` for each ``(name, data)`` in order; print the success line if all pass.

    A :class:`Mistake` becomes ``CheckFailed("<exercise>: case '<name>' (i of n): <diagnosis>")``, which
    carries the student's own exception, if there was one. ``notes`` are appended.
    """
    for i, (name, data) in enumerate(cases, start=1):
        try:
            run_case(data)
        except Mistake as err:
            extra = "".join(f"\n  note: {note}" for note in notes)
            failure = CheckFailed(f"{exercise}: case '{name}' ({i} of {len(cases)}): {err}{extra}", err.__cause__)
            raise failure from None  # the checker's own frames would only hide the diagnosis
    print(f"{exercise}: all {len(cases)} cases pass")


def describe(value: Any) -> str:
    """Short description of an argument: shape and dtype for tensors, the class for modules, repr otherwise."""
    if isinstance(value, Tensor):
        return f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, nn.Module):
        return f"a {type(value).__name__}"
    text = " ".join(repr(value).split())  # one line
    return text if len(text) <= 40 else text[:37] + "..."


def call(fn: Callable, *args: Any, names: Sequence[str] = (), **kwargs: Any) -> Any:
    """Call student code on copies of the arguments; wrap its exceptions; catch in-place changes."""
    named = [*zip([*names, *(f"argument {i + 1}" for i in range(len(names), len(args)))], args), *kwargs.items()]
    copies = [a.clone() if isinstance(a, Tensor) else a for _, a in named]
    called = ", ".join(f"{name}={describe(a)}" for name, a in named)
    try:
        result = fn(*copies[: len(args)], **dict(zip(kwargs, copies[len(args):])))
    except NotImplementedError:  # an exercise not done yet stops the check as itself, not as a "mistake"
        name = getattr(fn, "__name__", type(fn).__name__)  # a function, a class, or a module instance
        raise ExerciseNotDone(
            f"the exercise is not done yet: write `{name}` in place of `raise NotImplementedError()`, "
            "run its cell, then this one") from None
    except Exception as err:  # the student's exception, shown with the case and inputs, chained
        hints = [hint for key, hint in ERROR_HINTS if key in f"{type(err).__name__}: {err}"]
        hint = f"\n  hint: {hints[0]}" if hints else ""
        raise Mistake(f"your code raised {type(err).__name__}: {err}\n  called with {called}{hint}") from err
    for (name, original), passed in zip(named, copies):
        if isinstance(original, Tensor) and not torch.equal(original, passed.cpu()):
            raise Mistake(f"your code changed its input `{name}` in place (e.g. `{name} /= ...` or a `_` method): "
                          f"compute a new tensor instead")
    return _on_cpu(result)


def _on_cpu(result: Any) -> Any:
    """Bring tensors the student returned on a GPU (CUDA, MPS) to the CPU, where the reference is."""
    if isinstance(result, Tensor) and result.device.type != "cpu":
        if result.device.type == "meta":
            raise Mistake("your code returned a tensor on the 'meta' device, which holds no values: "
                          "compute it on the device of the inputs")
        return result.detach().cpu()
    if isinstance(result, (tuple, list)):
        return type(result)(_on_cpu(r) for r in result)
    return result


def close(got: Tensor, expected: Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Same shape and values (NaN equals NaN), whatever the dtypes."""
    return tuple(got.shape) == tuple(expected.shape) and torch.allclose(
        got.detach().double(), expected.detach().double(), rtol=rtol, atol=atol, equal_nan=True)


def _fmt(t: Tensor) -> str:
    """Values of a small tensor, rounded to 4 significant digits (bool as 0/1)."""
    t = t.detach()
    if t.dtype == torch.bool:
        return str(t.int().tolist()).replace(" ", "")
    if not t.is_floating_point():
        return str(t.tolist())

    def rounded(v: Any) -> Any:
        return [rounded(u) for u in v] if isinstance(v, list) else float(f"{v:.4g}")
    return str(rounded(t.double().tolist()))


def _difference(got: Tensor, expected: Tensor, what: str = "output") -> str:
    """'expected ... / got ...' for the row (last axis) where they differ most, or the whole tensor if small."""
    if tuple(got.shape) != tuple(expected.shape):
        return f"\n  expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    small = expected.numel() <= (64 if expected.dtype == torch.bool else 12)
    if small or expected.ndim == 0:
        return f"\n  expected {_fmt(expected)}\n  got      {_fmt(got)}"
    g, e = got.detach().double(), expected.detach().double()
    err = torch.where(g == e, 0.0, (g - e).abs()).nan_to_num(nan=float("inf"))
    index = torch.unravel_index(err.argmax(), err.shape)
    row, j = tuple(int(i) for i in index[:-1]), int(index[-1])
    start = max(0, min(j - 3, e.shape[-1] - 8))
    cols = slice(start, start + 8)
    where = ", ".join([*map(str, row), f"{start}:{min(start + 8, e.shape[-1])}" if e.shape[-1] > 8 else ":"])
    label = f"{what} at [{where}]"
    return f"\n  {label} expected {_fmt(expected[row][cols])}\n  {' ' * (len(label) + 6)}got {_fmt(got[row][cols])}"


def compare(got: Any, expected: Tensor, *, what: str = "output", variants: Sequence[Variant] = (),
            structural: Sequence[Callable[[Tensor], str | None]] = (), dtype: torch.dtype | None = None,
            shape_hint: Callable[[tuple[int, ...]], str] | None = None, dtype_hint: str = "", nonfinite_hint: str = "",
            inputs: str = "", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Raise a :class:`Mistake` naming the likely error unless ``got`` matches ``expected``.

    Diagnosis order: not a tensor; a known-wrong variant it matches; wrong shape; wrong dtype;
    NaN/inf; the first failing structural check; else the largest difference.
    """
    if isinstance(got, tuple):
        raise Mistake(f"{what} must be a single torch.Tensor; you returned a tuple of {len(got)}")
    if not isinstance(got, Tensor):
        raise Mistake(f"{what} must be a torch.Tensor; got {type(got).__name__}")
    wrong_dtype = f"{what} must have dtype {dtype}; got {got.dtype}" + (f". {dtype_hint}" if dtype_hint else "")
    if close(got, expected, atol, rtol):
        if dtype is not None and got.dtype != dtype:
            raise Mistake(wrong_dtype)
        return
    for message, make in variants:
        try:
            wrong = make()
        except Exception:  # that mistake is impossible for these shapes
            continue
        if isinstance(wrong, Tensor) and close(got, wrong, atol, rtol):
            raise Mistake(f"{message}{_difference(got, expected, what)}")
    if tuple(got.shape) != tuple(expected.shape):
        hint = shape_hint(tuple(got.shape)) if shape_hint else ""
        raise Mistake(f"{what} has shape {tuple(got.shape)} but should have shape {tuple(expected.shape)}"
                      + (f": {hint}" if hint else "") + (f"\n  inputs: {inputs}" if inputs else ""))
    if dtype is not None and got.dtype != dtype:
        raise Mistake(wrong_dtype)
    if got.is_floating_point() and not torch.isfinite(got).all() and torch.isfinite(expected).all():
        raise Mistake(f"{what} has nan or inf values" + (f": {nonfinite_hint}" if nonfinite_hint else "")
                      + _difference(got, expected, what))
    for check in structural:
        message = check(got)
        if message:
            raise Mistake(message + _difference(got, expected, what))
    raise Mistake(f"{what} differs from the reference{_difference(got, expected, what)}")


def compare_pair(result: Any, expected: tuple[Tensor, Tensor], *, variants: Sequence[tuple[str, Any]] = (),
                 weight_variants: Sequence[Variant] = (), mask: Tensor | None = None, inputs: str = "",
                 out_hint: str = "", nonfinite_hint: str = "", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Check an attention-style ``(out, weights)`` result: weights first, then out.

    ``variants`` are ``(diagnosis, thunk returning (out, weights))``; thunks that fail are skipped.
    """
    if isinstance(result, Tensor):
        raise Mistake(f"return a tuple (out, weights); you returned a single Tensor of shape {tuple(result.shape)}")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = f"a {type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list)) else \
            type(result).__name__
        raise Mistake(f"return a tuple (out, weights); you returned {got}")
    out, weights = result
    if (isinstance(out, Tensor) and isinstance(weights, Tensor) and close(out, expected[1], atol, rtol)
            and close(weights, expected[0], atol, rtol)):
        raise Mistake("you returned (weights, out): return (out, weights), in that order")
    lazy = [(message, functools.cache(make)) for message, make in variants]  # computed only on a mismatch
    pick = lambda i: [(m, lambda make=make: make()[i]) for m, make in lazy]  # noqa: E731
    compare(weights, expected[1], what="weights", variants=[*weight_variants, *pick(1)],
            structural=[weight_rows(mask)], inputs=inputs, atol=atol, rtol=rtol,
            nonfinite_hint=nonfinite_hint or "masked rows? apply the mask to the scores (masked_fill with -inf) "
                                             "before the softmax")
    # The weights are right (or compare() would have raised): only mistakes made after the softmax explain out.
    after = [(m, lambda make=make: make()[0]) for m, make in lazy if _gives(make, expected[1], atol, rtol)]
    compare(out, expected[0], what="out", variants=after, inputs=inputs, atol=atol, rtol=rtol,
            nonfinite_hint=nonfinite_hint,
            structural=[lambda got: f"the weights are right but out is not: {out_hint or 'out = weights @ v'}"])


def _gives(make: Callable[[], Any], weights: Tensor, atol: float, rtol: float) -> bool:
    """Whether the variant ``make`` computes these weights (False if it cannot run on these shapes)."""
    try:
        return close(make()[1], weights, atol, rtol)
    except Exception:  # noqa: BLE001 - that mistake is impossible for these shapes
        return False


def weight_rows(mask: Tensor | None) -> Callable[[Tensor], str | None]:
    """Structural check of attention weights: zero where masked, each row with an allowed key sums to 1."""
    def check(w: Tensor) -> str | None:
        rows = torch.ones(w.shape[:-1], dtype=torch.bool)  # the rows that must sum to 1
        if mask is not None:
            rows = torch.broadcast_to(mask, w.shape).any(-1)
            allowed, used = torch.broadcast_to(mask, w.shape), w.detach().double().abs() > 1e-6
            if used.any() and not used.logical_and(allowed).any():
                return "your mask seems inverted: True means MAY attend; only the masked positions get weight"
            if used.logical_and(~allowed).any():
                return ("masked positions get nonzero weight: fill the scores with -inf where the mask is False, "
                        "before the softmax")
        if not torch.allclose(w.detach().double().sum(-1)[rows], torch.ones(()).double(), atol=1e-4):
            if mask is not None:
                return "rows no longer sum to 1: apply the mask to the scores before softmax, not to the weights"
            return ("weights do not sum to 1 over the key axis: did you take softmax over the wrong dimension? "
                    "(softmax(scores, dim=-1))")
        return None
    return check
