"""Checks of the learning-rate exercise of notebook 10: ``noam_lr``, Eq. (3) of the paper (Sec. 5.3)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .. import objective
from ._core import Mistake, call, compare, describe, run_cases, seeded

__all__ = ["check_noam_lr", "noam_variant"]


# ---------------------------------------------------------------------------------------- noam_lr, Eq. (3)
def noam_variant(steps: list[int], d_model: int, warmup: int, factor: float, *, pick: str = "min",
                 warm_exp: float = -1.5, decay_exp: float = -0.5, d_exp: float = -0.5, shift: int = 0,
                 precedence: bool = False, use_factor: bool = True, warmup_as: int | None = None,
                 d_model_as: int | None = None) -> Tensor:
    """Eq. (3) at ``steps`` (float64) with one switch turned to a typical mistake."""
    s = torch.tensor(steps, dtype=torch.float64) + shift  # (n,)
    w, d = float(warmup_as or warmup), float(d_model_as or d_model)
    decay = s**decay_exp  # (n,)
    warm = (s * w) ** warm_exp if precedence else s * w**warm_exp  # (n,)
    rate = torch.minimum(decay, warm) if pick == "min" else torch.maximum(decay, warm)
    return (factor if use_factor else 1.0) * d**d_exp * rate


NOAM_MISTAKES = [  # (diagnosis, noam_variant switches)
    ("min and max swapped: the rate is the SMALLER of step^-0.5 and step * warmup^-1.5 (a linear warm-up, then "
     "a 1/sqrt(step) decay)", dict(pick="max")),
    ("the warm-up term is step * warmup^-1.5, not step * warmup^-0.5: with -1.5 both terms are equal at "
     "step == warmup, where the rate peaks", dict(warm_exp=-0.5)),
    ("the warm-up term is step * warmup^-1.5, not step / warmup", dict(warm_exp=-1.0)),
    ("(step * warmup)^-1.5 is not step * warmup^-1.5: ** binds tighter than *, write step * warmup ** -1.5",
     dict(precedence=True)),
    ("missing the factor d_model^-0.5 (1/sqrt(d_model)): wider models get smaller rates", dict(d_exp=0.0)),
    ("d_model^-0.5 is 1/sqrt(d_model): you multiplied by sqrt(d_model)", dict(d_exp=0.5)),
    ("d_model^-0.5 is 1/sqrt(d_model), not 1/d_model", dict(d_exp=-1.0)),
    ("the decay term is step^-0.5 = 1/sqrt(step), not sqrt(step)", dict(decay_exp=0.5)),
    ("the decay term is step^-0.5 = 1/sqrt(step), not 1/step", dict(decay_exp=-1.0)),
    ("off by one: step is the update number, counted from 1; use step itself, not step + 1", dict(shift=1)),
    ("off by one: step is the update number, counted from 1; use step itself, not step - 1", dict(shift=-1)),
    ("you ignored factor: multiply the rate by it", dict(use_factor=False)),
    ("you ignored warmup (hard-coded 4000?): use the warmup argument", dict(warmup_as=4000)),
    ("you ignored d_model (hard-coded 512?): use the d_model argument", dict(d_model_as=512)),
]


def check_noam_lr(fn: Callable) -> None:
    """Check ``noam_lr(step, *, d_model, warmup=4000, factor=1.0) -> float``, Eq. (3), at several steps."""
    cases = [  # (d_model, warmup or None for the default, factor or None, steps)
        (512, None, None, [1, 2, 10, 1000, 3999, 4000, 4001, 16000, 100000]),
        (64, 10, 1.0, [1, 2, 3, 5, 9, 10, 11, 20, 40, 1000]),
        (256, 100, 2.0, [1, 50, 99, 100, 101, 400, 10000]),
        (1024, 1, 1.0, [1, 2, 3, 4, 100]),
    ]

    def name(d_model: int, warmup: int | None, factor: float | None, steps: list[int]) -> str:
        setting = f"d_model={d_model}, " + ("defaults (warmup=4000, factor=1.0)" if warmup is None else
                                            f"warmup={warmup}, factor={factor}")
        return f"{setting}, at steps {steps}" + (" (no warm-up)" if warmup == 1 else "")

    with seeded():
        run_cases("noam_lr", [(name(*c), c) for c in cases], lambda c: _noam_case(fn, *c))


def _noam_case(fn: Callable, d_model: int, warmup: int | None, factor: float | None, steps: list[int]) -> None:
    options = {"d_model": d_model} if warmup is None else {"d_model": d_model, "warmup": warmup, "factor": factor}
    w, f = warmup or 4000, factor or 1.0
    got = torch.tensor([_rate(fn, step, options) for step in steps], dtype=torch.float64)  # (n,)
    expected = torch.tensor([objective.noam_lr(s, d_model=d_model, warmup=w, factor=f) for s in steps],
                            dtype=torch.float64)  # (n,)
    variants = [(message, lambda kw=kw: noam_variant(steps, d_model, w, f, **kw)) for message, kw in NOAM_MISTAKES]

    def peak(rates: Tensor) -> str | None:
        top = steps[int(rates.argmax())]
        if w in steps and top != w:
            return (f"the rate must peak at step == warmup ({w}), where step^-0.5 = step * warmup^-1.5; yours peaks "
                    f"at step {top}")
        return None

    compare(got, expected, what="the learning rates", variants=variants, structural=[peak], atol=0.0, rtol=1e-5,
            inputs=f"steps={steps}, {options}")


def _rate(fn: Callable, step: int, options: dict[str, Any]) -> float:
    try:
        got = call(fn, step, names=["step"], **options)
    except Mistake as err:
        if not isinstance(err.__cause__, ZeroDivisionError):
            raise
        raise Mistake(f"{err}\n  hint: step counts from 1 (the first update); step - 1 is 0 there and 0^-0.5 is "
                      "infinite") from err.__cause__
    if isinstance(got, Tensor) and got.numel() == 1:
        return float(got)
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        raise Mistake(f"return the learning rate as a float; noam_lr({step}, ...) returned "
                      f"{type(got).__name__} {describe(got)}")
    return float(got)
