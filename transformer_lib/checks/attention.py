"""Checks of the attention exercises (notebooks 02, 03), with their catalogue of typical mistakes.

One mistake at a time is simulated by :func:`attend_variant`; the check names the variant that matches
the student's output (unscaled, scaled by d_k, mask inverted or applied after the softmax, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .. import attention, masks
from ._core import MODULE_TOL, Mistake, call, compare, compare_pair, describe, run_cases, seeded
from ._modules import ModelPair

__all__ = ["check_dot_product_attention", "check_scaled_dot_product_attention", "check_self_attention",
           "check_safe_attention"]


# ------------------------------------------------------------------------- what common mistakes compute
# Reimplementations with switchable mistakes: a check compares a wrong answer with them to name the mistake.

def attend_variant(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, scale: float = 1.0,
                   dim: int = -1, mask_mode: str = "before", scores: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Attention; ``mask_mode`` is "before" (right), "inverted", "multiply", "after" (softmax) or "ignored"."""
    scores = (q @ k.transpose(-2, -1) if scores is None else scores) * scale  # (..., T_q, T_k)
    if mask is not None and mask_mode == "before":
        scores = scores.masked_fill(~mask, float("-inf"))
    elif mask is not None and mask_mode == "inverted":
        scores = scores.masked_fill(mask, float("-inf"))
    elif mask is not None and mask_mode == "multiply":
        scores = scores * mask
    weights = torch.softmax(scores, dim=dim)  # (..., T_q, T_k)
    if mask is not None and mask_mode == "after":
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights  # (..., T_q, d_v)


# ------------------------------------------------------------------------------ the diagnoses, by exercise
SCALE_MISTAKES = [  # (diagnosis, the scale used, as a function of d_k)
    ("scores not divided by sqrt(d_k) (Eq. 1: softmax(Q K^T / sqrt(d_k)) V)", lambda d: 1.0),
    ("scores divided by d_k instead of sqrt(d_k)", lambda d: 1.0 / d),
    ("scores multiplied by sqrt(d_k) instead of divided", lambda d: math.sqrt(d)),
]
MASK_MISTAKES = {  # attend_variant's mask_mode -> diagnosis
    "ignored": "the mask is ignored: fill the scores with -inf where the mask is False",
    "inverted": "your mask seems inverted: True means MAY attend (scores.masked_fill(~mask, float('-inf')))",
    "after": "masked positions get nonzero weight / rows no longer sum to 1: apply the mask to the scores before "
             "softmax",
    "multiply": "multiplying the scores by the mask makes masked scores 0, not -inf: use "
                "scores.masked_fill(~mask, float('-inf'))",
}
WRONG_AXIS = "weights do not sum to 1 over the key axis: did you take softmax over the wrong dimension? (use dim=-1)"


def sdpa_variants(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> list[tuple[str, Callable]]:
    """One mistake at a time: each wrong scaling, each wrong use of the mask, softmax over each wrong axis.

    The unmasked cases come first, so a scaling mistake is named before any mask mistake.
    """
    d_k, ok = q.shape[-1], 1.0 / math.sqrt(q.shape[-1])
    scales = [(msg, f(d_k)) for msg, f in SCALE_MISTAKES]
    if v.shape[-1] != d_k:
        scales.append(("scale by sqrt(d_k), the size of q and k, not sqrt(d_v)", 1.0 / math.sqrt(v.shape[-1])))
    return [*((msg, lambda s=s: attend_variant(q, k, v, mask, scale=s)) for msg, s in scales),
            *((msg, lambda mode=mode: attend_variant(q, k, v, mask, scale=ok, mask_mode=mode))
              for mode, msg in (MASK_MISTAKES.items() if mask is not None else ())),
            *((WRONG_AXIS, lambda d=d: attend_variant(q, k, v, mask, scale=ok, dim=d)) for d in range(q.ndim - 1))]



def check_scaled_dot_product_attention(fn: Callable) -> None:
    """Check ``scaled_dot_product_attention(q, k, v, mask=None) -> (out, weights)`` (Eq. 1)."""
    r = torch.randn
    with seeded():
        pad = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]]).bool()[:, None, None, :]  # (B, 1, 1, T_k)
        # Each row allows and forbids at least one key, so even the inverted mask has no empty row.
        uneven = torch.tensor([[1, 0, 1, 1, 0], [0, 1, 1, 0, 0], [1, 1, 0, 0, 1], [0, 0, 0, 1, 1]]).bool()
        cases = [
            ("single sequence (T=5, d_k=8)", (r(5, 8), r(5, 8), r(5, 8), None)),
            ("batched (B=2, H=3, T=4, d_k=8)", (r(2, 3, 4, 8), r(2, 3, 4, 8), r(2, 3, 4, 8), None)),
            ("d_v != d_k (d_k=8, d_v=3)", (r(2, 5, 8), r(2, 5, 8), r(2, 5, 3), None)),
            ("T_q != T_k (T_q=3, T_k=6)", (r(2, 3, 8), r(2, 6, 8), r(2, 6, 4), None)),
            ("padding mask (B, 1, 1, T_k)", (r(2, 2, 4, 8), r(2, 2, 6, 8), r(2, 2, 6, 8), pad)),
            ("non-symmetric mask (T_q=4, T_k=5)", (r(2, 4, 8), r(2, 5, 8), r(2, 5, 6), uneven)),
            ("causal mask (T, T)", (r(2, 2, 5, 8), r(2, 2, 5, 8), r(2, 2, 5, 8), masks.causal_mask(5))),
        ]
        run_cases("scaled_dot_product_attention", cases, lambda case: _sdpa_case(fn, *case))


def _sdpa_case(fn: Callable, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> None:
    extra = {} if mask is None else {"mask": mask}
    got = call(fn, q, k, v, names="qkv", **extra)
    inputs = ", ".join(f"{n}={describe(t)}" for n, t in zip(["q", "k", "v", "mask"], (q, k, v, mask)) if t is not None)
    compare_pair(got, attention.scaled_dot_product_attention(q, k, v, mask), variants=sdpa_variants(q, k, v, mask),
                 mask=mask, inputs=inputs)


def check_dot_product_attention(fn: Callable) -> None:
    """Check notebook 02's unscaled ``dot_product_attention(q, k, v) -> (out, weights)``."""
    r = torch.randn
    with seeded():
        x = torch.tensor([[1.0, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]])  # (3, 4) three inputs
        w_key = torch.tensor([[0.0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]])  # (4, 3)
        w_query = torch.tensor([[1.0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]])  # (4, 3)
        w_value = torch.tensor([[0.0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]])  # (4, 3)
        cases = [
            ("worked example (x = [[1,0,1,0], [0,2,0,2], [1,1,1,1]])", (x @ w_query, x @ w_key, x @ w_value)),
            ("random (T=4, d_k=5, d_v=3)", (r(4, 5), r(4, 5), r(4, 3))),
            ("T_q != T_k (T_q=2, T_k=6)", (r(2, 5), r(6, 5), r(6, 3))),
            ("batched (B=2, T=4, d_k=6)", (r(2, 4, 6), r(2, 4, 6), r(2, 4, 6))),
        ]
        run_cases("dot_product_attention", cases, lambda case: _dpa_case(fn, *case))


def _dpa_case(fn: Callable, q: Tensor, k: Tensor, v: Tensor) -> None:
    got = call(fn, q, k, v, names="qkv")
    out, weights = attention.dot_product_attention(q, k, v)
    variants = [
        ("you scaled by sqrt(d_k): this notebook's version is unscaled (that comes in 03)",
         lambda: attend_variant(q, k, v, scale=1 / math.sqrt(q.shape[-1]))),
        ("k not transposed: scores = q @ k.transpose(-2, -1), shape (T_q, T_k)",
         lambda: attend_variant(q, k, v, scores=q @ k)),
        ("scores are transposed: q @ k.transpose(-2, -1) gives (T_q, T_k); you computed k @ q^T",
         lambda: attend_variant(q, k, v, scores=k @ q.transpose(-2, -1))),
        ("scores = q @ k^T (one row per query), not q^T @ k",
         lambda: attend_variant(q, k, v, scores=q.transpose(-2, -1) @ k)),
        *((WRONG_AXIS, lambda d=d: attend_variant(q, k, v, dim=d)) for d in range(q.ndim - 1)),
        ("out = weights @ v, in that order ((T_q, T_k) @ (T_k, d_v)); you computed v @ weights",
         lambda: (v @ weights, weights)),
        ("out = weights @ v: you transposed the weights (weights.T @ v mixes the values by the keys' columns)",
         lambda: (weights.transpose(-2, -1) @ v, weights)),
    ]
    compare_pair(got, (out, weights), variants=variants, inputs=f"q={describe(q)}, k={describe(k)}, v={describe(v)}")




# ----------------------------------------------------------------------------------- stretch: the module
def check_self_attention(cls: type) -> None:
    """Check notebook 02's stretch ``SelfAttention(d_model, d_k, d_v=None)``: Eq. (1) on x W_q, x W_k, x W_v.

    Its ``forward(x)`` is called without a mask (masks come in notebook 06).
    """
    r = torch.randn
    with seeded():
        models = ModelPair(cls, attention.SelfAttention, "SelfAttention", ["d_model", "d_k", "d_v"])
        x = torch.tensor([[1.0, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]])  # (3, 4) the worked example's inputs
        cases = [
            ("worked example inputs (T=3, d_model=4, d_k=d_v=3)", ((4, 3, 3), x, None)),
            ("batched, d_v != d_k (B=2, T=5, d_model=6, d_k=4, d_v=2)", ((6, 4, 2), r(2, 5, 6), None)),
            ("d_v left out: it defaults to d_k (d_model=8, d_k=4)", ((8, 4), r(2, 3, 8), None)),
            ("one sequence, d_v > d_k (T=6, d_model=5, d_k=2, d_v=3)", ((5, 2, 3), r(6, 5), None)),
        ]
        run_cases("SelfAttention", cases, lambda case: _self_attention_case(models, *case))


def _self_attention_case(models: ModelPair, args: tuple, x: Tensor, mask: Tensor | None) -> None:
    student, ref = models.get(*args)
    extra = {} if mask is None else {"mask": mask}
    got = call(student, x, names=["x"], **extra)
    q, k, v = x @ ref.W_q, x @ ref.W_k, x @ ref.W_v  # (..., T, d_k), (..., T, d_k), (..., T, d_v)
    ok = 1 / math.sqrt(q.shape[-1])
    variants = [(f"{msg} (the module computes Eq. (1), scaled)", lambda s=s: attend_variant(q, k, v, mask, scale=s))
                for msg, s in ((m, f(q.shape[-1])) for m, f in SCALE_MISTAKES)]
    variants += [
        ("queries and keys swapped: the scores are Q K^T with Q = x @ W_q and K = x @ W_k",
         lambda: attend_variant(k, q, v, mask, scale=ok)),
        ("the values must be x @ W_v; you used W_k", lambda: attend_variant(q, k, k, mask, scale=ok)),
        ("the values must be x @ W_v; you used x itself", lambda: attend_variant(q, k, x, mask, scale=ok)),
        *((msg, lambda mode=mode: attend_variant(q, k, v, mask, scale=ok, mask_mode=mode))
          for mode, msg in (MASK_MISTAKES.items() if mask is not None else ())),
        *((WRONG_AXIS, lambda d=d: attend_variant(q, k, v, mask, scale=ok, dim=d)) for d in range(x.ndim - 1)),
    ]
    if v.shape[-1] != q.shape[-1]:
        variants.append(("scale by sqrt(d_k), the size of queries and keys, not sqrt(d_v)",
                         lambda: attend_variant(q, k, v, mask, scale=v.shape[-1] ** -0.5)))
    inputs = f"x={describe(x)}" + (f", mask={describe(mask)}" if mask is not None else "")
    compare_pair(got, ref(x, **extra), variants=variants, mask=mask, inputs=inputs, **MODULE_TOL)


# ------------------------------------------------------------------------ stretch: rows with no key at all
_EMPTY_ROW = ("a query row whose mask allows no key must get zero weights and a zero output; the softmax of a row "
              "of -inf is 0/0 = nan: find those rows (mask.any(dim=-1, keepdim=True)) and set their weights to 0")


def check_safe_attention(fn: Callable) -> None:
    """Check notebook 03's stretch ``safe_attention(q, k, v, mask=None)``: zeros, not NaN, on fully masked rows."""
    r = torch.randn
    with seeded():
        empty = torch.tensor([[True, False, True, False], [False, False, False, False], [True, True, False, True]])
        left_pad = masks.padding_mask(torch.tensor([[0, 0, 5, 6], [3, 4, 5, 6]]), 0) & masks.causal_mask(4)
        cases = [
            ("no mask (B=2, T=4, d_k=8)", (r(2, 4, 8), r(2, 4, 8), r(2, 4, 8), None, False)),
            ("a mask with no empty row", (r(3, 8), r(4, 8), r(4, 5), empty | torch.eye(3, 4, dtype=torch.bool), False)),
            ("query 1 may attend to no key (T_q=3, T_k=4)", (r(3, 8), r(4, 8), r(4, 5), empty, False)),
            ("left padding & causal: the first two queries of sequence 1 have no key",
             (r(2, 2, 4, 8), r(2, 2, 4, 8), r(2, 2, 4, 8), left_pad, False)),
            ("gradients through an empty row are finite (zero)", (r(3, 8), r(4, 8), r(4, 5), empty, True)),
        ]
        run_cases("safe_attention", cases, lambda case: _safe_case(fn, *case))


def _safe_case(fn: Callable, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, grads: bool) -> None:
    extra = {} if mask is None else {"mask": mask}
    expected = attention.scaled_dot_product_attention(q, k, v, mask)
    ok = 1 / math.sqrt(q.shape[-1])
    variants = [*((msg, lambda s=s: attend_variant(q, k, v, mask, scale=s)) for msg, s in
                  ((m, f(q.shape[-1])) for m, f in SCALE_MISTAKES)),
                ("a query with no allowed key got uniform weights 1/T_k: a large negative number (-1e9) instead of "
                 "-inf makes an empty row uniform, not zero; set its weights to 0", lambda: _filled(q, k, v, mask, ok)),
                *((msg, lambda mode=mode: attend_variant(q, k, v, mask, scale=ok, mask_mode=mode))
                  for mode, msg in (MASK_MISTAKES.items() if mask is not None else ()))]
    inputs = ", ".join(f"{n}={describe(t)}" for n, t in zip(["q", "k", "v", "mask"], (q, k, v, mask)) if t is not None)
    if not grads:
        got = call(fn, q, k, v, names="qkv", **extra)
        compare_pair(got, expected, variants=variants, mask=mask, inputs=inputs, nonfinite_hint=_EMPTY_ROW)
        return
    with torch.enable_grad():
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        try:
            out, _ = fn(*leaves, **extra)
            out.sum().backward()
        except Exception as err:  # noqa: BLE001 - the student's error, diagnosed
            raise Mistake(f"backward through your function raised {type(err).__name__}: {err}") from err
        ref_leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        attention.scaled_dot_product_attention(*ref_leaves, mask)[0].sum().backward()
    for name, mine, ref in zip("qkv", leaves, ref_leaves):
        if mine.grad is None:
            raise Mistake(f"no gradient reaches {name}: do not detach it or compute under torch.no_grad()")
        compare(mine.grad, ref.grad, what=f"the gradient of out.sum() with respect to {name}", inputs=inputs,
                nonfinite_hint="the output is right but the gradient is nan: a nan in the forward pass, even one "
                               "you replace afterwards, can still reach the backward; zero the empty rows' weights "
                               "with masked_fill (or torch.where), not by arithmetic on nan")


def _filled(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float) -> tuple[Tensor, Tensor]:
    """Attention with masked scores set to -1e9 instead of -inf: empty rows become uniform."""
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
