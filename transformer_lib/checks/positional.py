"""Checks of notebook 04 (positional encoding), each beside its catalogue of typical mistakes.

Exercise 4.1 ``sinusoidal_positional_encoding(max_len, d_model)``, Exercise 4.2 ``shift_matrix(k, d_model)``
(``PE[pos + k] = PE[pos] @ M_k``) and the stretch Exercise 4.3, a ``LearnedPositionalEncoding`` module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import positional
from ._core import Mistake, call, close, compare, describe, run_cases, seeded
from ._modules import ModelPair

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


# ------------------------------------------------------------------ Exercise 4.2: the shift matrix M_k
def shift_variant(k: int, d_model: int, *, transpose: bool = False, swap: bool = False, exponent: str = "2i/d",
                  multiply: bool = False, k_used: int | None = None, overlap: bool = False) -> Tensor:
    """``shift_matrix`` with one switchable mistake; ``exponent`` names the power of 10000 (i = pair index)."""
    i = torch.arange(d_model // 2, dtype=torch.float64)  # (d_model / 2,) pair index
    power = {"2i/d": 2 * i / d_model, "i/d": i / d_model, "4i/d": 4 * i / d_model, "2i": 2 * i,
             "2(i+1)/d": 2 * (i + 1) / d_model, "0": 0 * i}[exponent]
    angle = (k if k_used is None else k_used) * 10000.0 ** (power if multiply else -power)  # (d_model / 2,)
    c, s = (torch.sin(angle), torch.cos(angle)) if swap else (torch.cos(angle), torch.sin(angle))
    blocks = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (d_model / 2, 2, 2)
    blocks = blocks.transpose(-2, -1) if transpose else blocks
    m = torch.zeros(d_model, d_model, dtype=torch.float64)  # (d_model, d_model)
    for n, block in enumerate(blocks):
        at = n if overlap else 2 * n  # where pair n's block starts
        m[at:at + 2, at:at + 2] = block
    return m.float()


SHIFT_MISTAKES = [
    ("your M_k shifts by -k: its 2x2 blocks are transposed (they turn the other way). PE[pos] is a row vector "
     "on the left, PE[pos] @ M_k: [sin a, cos a] @ block must give [sin(a + k w), cos(a + k w)]; a rotation "
     "written for column vectors (block @ x) is the transpose", dict(transpose=True)),
    ("cos and sin swapped in the blocks: each block has cos(k w_i) on its diagonal and -sin(k w_i), sin(k w_i) "
     "off it", dict(swap=True)),
    ("wrong frequency: w_i = 1 / 10000^(2i/d_model) with i = 0, 1, ... the pair index; you used i/d_model",
     dict(exponent="i/d")),
    ("wrong frequency: torch.arange(0, d_model, 2) already gives 2i, do not multiply it by 2 again",
     dict(exponent="4i/d")),
    ("wrong frequency: divide the exponent by d_model: w_i = 1 / 10000^(2i/d_model)", dict(exponent="2i")),
    ("wrong frequency: w_i = 1 / 10000^(2i/d_model), an angle that shrinks with i; you multiplied by "
     "10000^(2i/d_model)", dict(multiply=True)),
    ("wrong frequency: the pairs are numbered from i = 0, so the first block turns by k * w_0 = k radians; "
     "yours starts at i = 1", dict(exponent="2(i+1)/d")),
    ("every block turns by the same angle k: pair i turns by w_i = 1 / 10000^(2i/d_model) per position, "
     "so by k * w_i over k positions", dict(exponent="0")),
    ("your matrix does not depend on k (it is M_1): the block of pair i turns by the angle k * w_i",
     dict(k_used=1)),
    ("the 2x2 block of pair i sits at rows and columns 2i and 2i+1; you put it at i and i+1, so the blocks "
     "overlap", dict(overlap=True)),
]


def check_position_shift_matrix(fn: Callable) -> None:
    """Check notebook 04's ``shift_matrix(k, d_model) -> M_k``, ``(d_model, d_model)``: PE[pos + k] = PE[pos] @ M_k."""
    with seeded():
        cases = [("k=1, d_model=4", (1, 4)), ("k=3, d_model=8", (3, 8)), ("k=-2, a shift back (d_model=8)", (-2, 8)),
                 ("k=0, no shift (d_model=6)", (0, 6)), ("k=10, d_model=16", (10, 16))]
        run_cases("shift_matrix", cases, lambda case: _shift_case(fn, *case))


def _shift_case(fn: Callable, k: int, d_model: int) -> None:
    got = call(fn, k, d_model, names=["k", "d_model"])
    expected = positional.shift_matrix(k, d_model)
    variants = [(msg, lambda kw=kw: shift_variant(k, d_model, **kw)) for msg, kw in SHIFT_MISTAKES]
    one_block = torch.block_diag(*torch.ones(d_model // 2, 2, 2)).bool()  # (d_model, d_model) where blocks may be

    def block_diagonal(g: Tensor) -> str | None:
        if g.detach().double().abs().masked_fill(one_block, 0).max() > 1e-4:
            return ("M_k must be block-diagonal: dims 2i, 2i+1 of PE[pos + k] come from dims 2i, 2i+1 of PE[pos] "
                    "only (one 2x2 block per pair, zeros elsewhere)")
        return ("each 2x2 block must turn (sin, cos) of pair i by the angle k * w_i, w_i = 1 / 10000^(2i/d_model): "
                "test PE[pos] @ M_k against PE[pos + k] on your own table")

    def shape_hint(shape: tuple[int, ...]) -> str:
        if shape == (d_model // 2, 2, 2):
            return "you returned the blocks: put them on the diagonal of one matrix (torch.block_diag(*blocks))"
        return "one 2x2 block per pair of dims, d_model / 2 of them, on the diagonal" if shape == (2, 2) else ""

    compare(got, expected, what="M_k", variants=variants, structural=[block_diagonal], shape_hint=shape_hint,
            inputs=f"k={k}, d_model={d_model}", atol=1e-5)


# ----------------------------------------------------------- Exercise 4.3 (stretch): learned positions
def learned_variant(x: Tensor, table: Tensor, *, start: int = 0, batch_axis: bool = False,
                    scale_x: bool = False) -> Tensor:
    """``x + table[:T]`` with one switchable mistake."""
    B, T, d_model = x.shape
    if batch_axis:
        return x + table[:B][:, None, :]  # (B, T, d_model) + (B, 1, d_model): row b on every token of sequence b
    return (x * math.sqrt(d_model) if scale_x else x) + table[start:start + T]  # (B, T, d_model) + (T, d_model)


LEARNED_MISTAKES = [
    ("positions start at 0: the first token gets row 0 of the table (torch.arange(T)), not row 1", dict(start=1)),
    ("you took the positions along the batch axis: x is (B, T, d_model), batch first, so the positions are "
     "torch.arange(x.shape[1]) and row t goes to token t of every sequence", dict(batch_axis=True)),
    ("this module only adds the positions: the sqrt(d_model) scale of Sec. 3.4 multiplies the token embeddings "
     "before it, in the model", dict(scale_x=True)),
]
_DROPOUT = "nn.Dropout(dropout) on the sum: return self.dropout(x + positions)"


def check_learned_positional_encoding(cls: type) -> None:
    """Check notebook 04's stretch ``LearnedPositionalEncoding(d_model, max_len, dropout=0.0)``.

    ``forward(x)``, x ``(B, T, d_model)``, adds rows 0 .. T-1 of ``embedding`` (an ``nn.Embedding(max_len,
    d_model)``), then dropout; the rows are learned: the gradient reaches them and no other row.
    """
    r = torch.randn
    with seeded():
        models = ModelPair(cls, positional.LearnedPositionalEncoding, "LearnedPositionalEncoding",
                           ["d_model", "max_len", "dropout"])
        cases = [
            ("T < max_len (B=2, T=5, d_model=8, max_len=12)", ((8, 12, 0.0), r(2, 5, 8), "eval")),
            ("T = max_len (B=3, T=6, d_model=4, max_len=6)", ((4, 6, 0.0), r(3, 6, 4), "eval")),
            ("one sequence (B=1, T=7, d_model=6, max_len=10)", ((6, 10, 0.0), r(1, 7, 6), "eval")),
            ("dropout=0.25 in eval mode: no dropout", ((8, 12, 0.25), r(2, 5, 8), "eval")),
            ("dropout=0.25 in training mode", ((8, 12, 0.25), r(2, 6, 8), "train")),
            ("the table learns: the gradient reaches rows 0 .. T-1 only", ((8, 12, 0.0), r(2, 5, 8), "grad")),
        ]
        run_cases("LearnedPositionalEncoding", cases, lambda case: _learned_case(models, *case))


def _learned_case(models: ModelPair, args: tuple, x: Tensor, mode: str) -> None:
    student, ref = _pair(models, args)
    table, p = ref.embedding.weight.detach(), args[2]  # (max_len, d_model)
    expected = x + table[: x.shape[1]]  # (B, T, d_model)
    if mode == "grad":
        weight = student.embedding.weight  # the names were checked when the weights were copied in
        with torch.enable_grad():
            student.zero_grad(set_to_none=True)
            upstream = torch.randn_like(x)  # (B, T, d_model) a random gradient from above
            out = _forward(student, x, args)
            if out.requires_grad:
                (out * upstream).sum().backward()
        if weight.grad is None:
            raise Mistake("no gradient reaches embedding.weight: the table must learn, so do not use .data, "
                          ".detach() or torch.no_grad() on it")
        grad = torch.zeros_like(table).index_add_(0, torch.arange(x.shape[1]), upstream.sum(0))  # (max_len, d_model)
        compare(weight.grad, grad, what="the gradient of embedding.weight", inputs=f"x={describe(x)}")
        return
    if mode == "train":
        student.train()
        try:
            got = _forward(student, x, args)
        finally:
            student.eval()
        _dropped_out(got, x, table[: x.shape[1]], p)
        return
    got = _forward(student, x, args)
    variants = [(msg, lambda kw=kw: learned_variant(x, table, **kw)) for msg, kw in LEARNED_MISTAKES]

    def in_eval(g: Tensor) -> str | None:
        if p > 0 and (g == 0).any() and close(g[g != 0], expected[g != 0] / (1 - p), 1e-4, 1e-4):
            return ("dropout is applied in eval mode too: F.dropout(x, p) needs training=self.training; "
                    "an nn.Dropout module switches off by itself in eval mode")
        return None

    compare(got, expected, variants=variants, structural=[in_eval], inputs=f"x={describe(x)}",
            shape_hint=lambda shape: "return x plus the positions" if shape == tuple(expected.shape[1:]) else "")


def _pair(models: ModelPair, args: tuple) -> tuple[nn.Module, nn.Module]:
    """The (student, reference) pair; a table that is not an ``nn.Embedding`` is told so."""
    try:
        return models.get(*args)
    except Mistake:
        if isinstance(models.cls, type):
            made = call(models.cls, *args, names=models.arg_names)
            if isinstance(getattr(made, "embedding", None), Tensor):
                raise Mistake("`embedding` must be an nn.Embedding(max_len, d_model), whose table is "
                              "embedding.weight, not a tensor or an nn.Parameter") from None
        raise


def _forward(student: nn.Module, x: Tensor, args: tuple) -> Tensor:
    """The student's forward; an error from the usual shape slips gets a pointed note."""
    try:
        return call(student, x, names=["x"])
    except Mistake as err:
        text, note = str(err), ""
        if "must match the size" in text or "index out of range" in text:
            note = (f"x is (B, T, d_model), batch first: add rows 0 .. T-1 of the table, T = x.shape[1] "
                    f"(here T = {x.shape[1]}, max_len = {args[1]})")
        elif "indices" in text:
            note = "nn.Embedding takes integer positions, torch.arange(T), not x"
        if not note:
            raise
        raise Mistake(f"{text}\n  note: {note}") from err.__cause__


def _dropped_out(got: Tensor, x: Tensor, rows: Tensor, p: float) -> None:
    """In training mode every entry must be 0 (dropped) or (x + rows) / (1 - p) (kept)."""
    total = x + rows  # (B, T, d_model)
    if not isinstance(got, Tensor) or tuple(got.shape) != tuple(total.shape):
        compare(got, total, inputs=f"x={describe(x)}")  # the usual message for a wrong type or shape
    got = got.detach()
    if close(got, total):
        raise Mistake(f"no dropout in training mode: {_DROPOUT}")
    if _entries(got, torch.zeros_like(total), total / (1 - p)) and (got == 0).any():
        return
    if _entries(got, rows.expand_as(x), x / (1 - p) + rows):
        raise Mistake(f"dropout is applied to x before the positions are added: {_DROPOUT}")
    if _entries(got, x, x + rows / (1 - p)):
        raise Mistake(f"dropout is applied to the positions only: {_DROPOUT}")
    kept = got != 0
    scale = (got[kept] / total[kept]).double()  # 1 / (1 - p) if the dropout is right
    if kept.any() and close(scale, scale.mean().expand_as(scale), 1e-4, 1e-4):
        raise Mistake(f"your dropout scales the kept entries by {scale.mean():.4g}, so its p is "
                      f"{1 - 1 / scale.mean():.3g}: use the `dropout` argument (p = {p} here), nn.Dropout(dropout)")
    raise Mistake("in training mode each entry of the output must be 0 (dropped) or (x + positions) / (1 - dropout) "
                  f"(kept): {_DROPOUT}")


def _entries(got: Tensor, *options: Tensor) -> bool:
    """Whether every entry of ``got`` equals the same entry of one of ``options``."""
    return bool(torch.stack([torch.isclose(got, o, atol=1e-4, rtol=1e-4) for o in options]).any(0).all())
