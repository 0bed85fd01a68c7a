"""Check of Exercise 2.1, ``softmax(x, dim=-1)``, with its catalogue of typical mistakes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._core import call, compare, describe, run_cases, seeded

__all__ = ["check_softmax"]


def check_softmax(fn: Callable) -> None:
    """Check ``softmax(x, dim=-1)`` against ``torch.softmax``."""
    with seeded():
        big = torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -999.0, -998.0]])
        masked = torch.randn(3, 4).masked_fill(torch.tensor([[0, 1, 0, 0], [1, 1, 0, 1], [0, 0, 0, 1]]).bool(),
                                               float("-inf"))
        cases = [
            ("worked example [2, 4, 4]", (torch.tensor([2.0, 4.0, 4.0]), None)),
            ("2-D, dim=-1", (torch.randn(3, 5), -1)),
            ("3-D, default dim", (3 * torch.randn(2, 3, 4), None)),
            ("2-D, dim=0", (torch.randn(4, 3), 0)),
            ("3-D, dim=1", (torch.randn(2, 3, 4), 1)),
            ("masked entries (-inf) get weight 0", (masked, -1)),
            ("large values (around +-1000)", (big, -1)),
        ]
        run_cases("softmax", cases, lambda case: _softmax_case(fn, *case))


def _softmax_case(fn: Callable, x: Tensor, dim: int | None) -> None:
    got = call(fn, x, names=["x"]) if dim is None else call(fn, x, names=["x"], dim=dim)
    dim = -1 if dim is None else dim
    others = [d for d in range(x.ndim) if d != dim % x.ndim]
    e, shifted = x.exp(), (x - x.max()).exp()
    variants = [(f"softmax over the wrong axis (dim={d} instead of dim={dim}): use the `dim` argument",
                 lambda d=d: torch.softmax(x, d)) for d in others] + [
        ("overflow: subtract the max before exp (softmax is shift-invariant)", lambda: e / e.sum(dim, keepdim=True)),
        ("subtract the max along dim (x.max(dim, keepdim=True).values), not the max of the whole tensor: "
         "rows far below it underflow to 0/0", lambda: shifted / shifted.sum(dim, keepdim=True)),
        ("you forgot the exp: softmax(x) = exp(x) / sum(exp(x))", lambda: x / x.sum(dim, keepdim=True)),
        ("you forgot to normalise: divide exp(x) by its sum along dim", lambda: e),
        ("you divided by the sum of all elements: sum along dim only, with keepdim=True", lambda: e / e.sum()),
        ("you returned log-softmax", lambda: torch.log_softmax(x, dim)),
    ]

    def sums_to_one(got: Tensor) -> str | None:
        if torch.allclose(got.double().sum(dim), torch.ones(()).double(), atol=1e-4):
            return None
        for d in others:
            if torch.allclose(got.double().sum(d), torch.ones(()).double(), atol=1e-4):
                return f"softmax over the wrong axis: your output sums to 1 along dim={d}, not dim={dim}"
        return f"your output does not sum to 1 along dim={dim}: did you normalise over the wrong dimension?"

    compare(got, torch.softmax(x, dim), variants=variants, structural=[sums_to_one], dtype=x.dtype,
            inputs=f"x={describe(x)}, dim={dim}",
            nonfinite_hint="overflow: subtract the max before exp (softmax is shift-invariant)")


