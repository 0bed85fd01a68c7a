"""Check of Exercise 4.1, ``sinusoidal_positional_encoding(max_len, d_model)``, and its typical mistakes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .. import positional
from ._core import call, compare, run_cases, seeded

__all__ = ["check_sinusoidal_positional_encoding", "check_position_shift_matrix", "check_learned_positional_encoding"]


def pe_variant(max_len: int, d_model: int, *, swap: bool = False, halves: bool = False, exponent: str = "2i/d",
               start: int = 0, multiply: bool = False) -> Tensor:
    """Sinusoidal table; ``exponent`` names the power of 10000 (i = pair index, j = column index)."""
    pos = torch.arange(start, start + max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    col = torch.arange(d_model, dtype=torch.float64)  # (d_model,)
    i = col % (d_model // 2) if halves else torch.div(col, 2, rounding_mode="floor")  # (d_model,) pair index
    power = {"2i/d": 2 * i / d_model, "i/d": i / d_model, "j/d": col / d_model, "2j/d": 2 * col / d_model,
             "4i/d": 4 * i / d_model, "2i": 2 * i}[exponent]
    angle = pos * 10000.0 ** power if multiply else pos / 10000.0 ** power  # (max_len, d_model)
    use_sin = (col < d_model // 2) if halves else (col % 2 == 0)
    return torch.where(use_sin != swap, torch.sin(angle), torch.cos(angle)).float()



PE_MISTAKES = [
    ("sin and cos swapped: sin in even columns (2i), cos in odd columns (2i+1)", dict(swap=True)),
    ("sin in even columns, cos in odd columns, not first half/second half", dict(halves=True)),
    ("sin in even columns, cos in odd columns, not first half/second half (and sin, cos swapped)",
     dict(halves=True, swap=True)),
    ("wrong frequency: the exponent is 2i/d_model (i = column // 2), you used i/d_model", dict(exponent="i/d")),
    ("wrong frequency: columns 2i and 2i+1 share one frequency, 10000^(2i/d_model) with i = column // 2; "
     "you used the column index: 10000^(column/d_model)", dict(exponent="j/d")),
    ("wrong frequency: in 10000^(2i/d_model), i is the pair index column // 2, not the column index",
     dict(exponent="2j/d")),
    ("wrong frequency: torch.arange(0, d_model, 2) already gives 2i, do not multiply it by 2 again",
     dict(exponent="4i/d")),
    ("wrong frequency: divide the exponent by d_model: 10000^(2i/d_model)", dict(exponent="2i")),
    ("divide the position by the frequency term: pos / 10000^(2i/d_model), not pos * ...", dict(multiply=True)),
    ("positions start at 0, not 1", dict(start=1)),
]



def check_sinusoidal_positional_encoding(fn: Callable) -> None:
    """Check ``sinusoidal_positional_encoding(max_len, d_model) -> (max_len, d_model)`` (Sec. 3.5)."""
    with seeded():
        cases = [("max_len=10, d_model=8", (10, 8)), ("max_len=50, d_model=32", (50, 32)),
                 ("max_len=20, d_model=6", (20, 6)), ("a single position (max_len=1, d_model=4)", (1, 4))]
        run_cases("sinusoidal_positional_encoding", cases, lambda case: _pe_case(fn, *case))


def _pe_case(fn: Callable, max_len: int, d_model: int) -> None:
    got = call(fn, max_len, d_model, names=["max_len", "d_model"])
    expected = positional.sinusoidal_positional_encoding(max_len, d_model)
    variants = [(msg, lambda kw=kw: pe_variant(max_len, d_model, **kw)) for msg, kw in PE_MISTAKES]
    variants.append(("output is transposed: one row per position, shape (max_len, d_model)", lambda: expected.T))
    batched = "return the (max_len, d_model) table; add a batch dim only where you add it to the embeddings"
    compare(got, expected, what="the encoding", variants=variants, dtype=torch.float32, atol=1e-4,
            inputs=f"max_len={max_len}, d_model={d_model}",
            shape_hint=lambda shape: batched if shape == (1, max_len, d_model) else "",
            structural=[lambda g: "compare with PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), "
                                  "PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))"])




def check_position_shift_matrix(fn: Callable) -> None:
    """Check notebook 04's ``shift_matrix(k, d_model)``: PE[pos + k] = PE[pos] @ M_k (being written)."""
    raise NotImplementedError("check_position_shift_matrix is being written")


def check_learned_positional_encoding(cls: type) -> None:
    """Check notebook 04's stretch ``LearnedPositionalEncoding`` class (being written)."""
    raise NotImplementedError("check_learned_positional_encoding is being written")
