"""Checks of the multi-head exercises (notebook 05): ``split_heads``, ``merge_heads``, ``MultiHeadAttention``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import masks, multihead
from ._core import MODULE_TOL, call, compare, compare_pair, describe, run_cases, seeded
from ._modules import ModelPair
from .attention import attend_variant

__all__ = ["check_split_heads", "check_merge_heads", "check_multi_head_attention", "check_to_torch_multihead"]


def mha_variant(ref: nn.Module, n_heads: int, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, *,
                scale: str = "d_head", split_t: bool = True, merge_t: bool = True, out_proj: bool = True,
                mask_mode: str = "before", swap_kv: bool = False, query_only: bool = False) -> tuple[Tensor, Tensor]:
    """Multi-head attention with the reference module's projections."""
    key, value = (query, query) if query_only else (value, key) if swap_kv else (key, value)
    B, T_q, d_model = query.shape
    d_head = d_model // n_heads

    def split(t: Tensor) -> Tensor:  # (B, T, d_model) -> (B, H, T, d_head)
        T = t.shape[1]
        return t.view(B, T, n_heads, d_head).transpose(1, 2) if split_t else t.view(B, n_heads, T, d_head)

    q, k, v = split(ref.q_proj(query)), split(ref.k_proj(key)), split(ref.v_proj(value))
    s = {"d_head": d_head ** -0.5, "none": 1.0, "d_model": d_model ** -0.5}[scale]
    out, weights = attend_variant(q, k, v, mask, scale=s, mask_mode=mask_mode)  # (B, H, T_q, d_head)
    out = (out.transpose(1, 2) if merge_t else out).reshape(B, T_q, d_model)  # (B, T_q, d_model)
    return (ref.out_proj(out) if out_proj else out), weights



MHA_MISTAKES = [
    ("scores not scaled: divide each head's scores by sqrt(d_head)", dict(scale="none")),
    ("scaled by sqrt(d_model): scale each head's scores by sqrt(d_head) = sqrt(d_model / n_heads)",
     dict(scale="d_model")),
    ("no out_proj applied: the output projection W^O comes after merging the heads", dict(out_proj=False)),
    ("heads merged without transpose: transpose(1, 2) to (B, T_q, H, d_head) before reshape to (B, T_q, d_model)",
     dict(merge_t=False)),
    ("heads split without transpose: view as (B, T, H, d_head), then transpose(1, 2)", dict(split_t=False)),
    ("the mask is ignored: pass it to the attention", dict(mask_mode="ignored")),
    ("your mask seems inverted: True means MAY attend", dict(mask_mode="inverted")),
    ("key and value swapped: k = k_proj(key), v = v_proj(value)", dict(swap_kv=True)),
    ("keys and values must come from the key and value arguments, not from query", dict(query_only=True)),
]



def check_split_heads(fn: Callable) -> None:
    """Check ``split_heads(x, n_heads)``: ``(B, T, d_model) -> (B, H, T, d_head)``."""
    with seeded():
        cases = [("B=2, T=5, d_model=12, n_heads=3", (torch.randn(2, 5, 12), 3)),
                 ("B=1, T=7, d_model=8, n_heads=2", (torch.randn(1, 7, 8), 2)),
                 ("one head (n_heads=1)", (torch.randn(2, 4, 6), 1)),
                 ("d_head=1 (n_heads=d_model=4)", (torch.randn(3, 2, 4), 4))]
        run_cases("split_heads", cases, lambda case: _split_case(fn, *case))


def _split_case(fn: Callable, x: Tensor, n_heads: int) -> None:
    got = call(fn, x, n_heads, names=["x", "n_heads"])
    (B, T, d_model), H = x.shape, n_heads
    variants = [
        ("reshaped without transpose: view as (B, T, H, d_head), then .transpose(1, 2)",
         lambda: x.reshape(B, H, T, d_model // H)),
        ("wrong head ordering: head h owns the features [h*d_head:(h+1)*d_head], so view as (B, T, H, d_head), "
         "not (B, T, d_head, H)", lambda: x.reshape(B, T, d_model // H, H).permute(0, 3, 1, 2)),
        ("you forgot .transpose(1, 2): the result must be (B, H, T, d_head)", lambda: x.reshape(B, T, H, d_model // H)),
    ]
    compare(got, multihead.split_heads(x, n_heads), variants=variants, inputs=f"x={describe(x)}, n_heads={n_heads}",
            shape_hint=lambda shape: "expected (B, H, T, d_head) with d_head = d_model // n_heads")


def check_merge_heads(fn: Callable) -> None:
    """Check ``merge_heads(x)``: ``(B, H, T, d_head) -> (B, T, H * d_head)``, the inverse of split_heads."""
    with seeded():
        x = torch.randn(2, 5, 12)
        cases = [("B=2, H=3, T=5, d_head=4", (torch.randn(2, 3, 5, 4), None)),
                 ("B=1, H=2, T=7, d_head=4", (torch.randn(1, 2, 7, 4), None)),
                 ("one head (H=1)", (torch.randn(2, 1, 3, 6), None)),
                 ("round trip merge_heads(split_heads(x, 3)) == x", (multihead.split_heads(x, 3), x))]
        run_cases("merge_heads", cases, lambda case: _merge_case(fn, *case))


def _merge_case(fn: Callable, x: Tensor, original: Tensor | None) -> None:
    got = call(fn, x, names=["x"])
    B, H, T, d_head = x.shape
    variants = [
        ("missing transpose before reshape: transpose(1, 2) back to (B, T, H, d_head) first, then reshape to "
         "(B, T, H * d_head)", lambda: x.reshape(B, T, H * d_head)),
        ("heads interleaved: after transpose(1, 2) the tensor is (B, T, H, d_head); reshape that, so head h fills "
         "features [h*d_head:(h+1)*d_head]", lambda: x.permute(0, 2, 3, 1).reshape(B, T, H * d_head)),
        ("you forgot the reshape: the result must be (B, T, H * d_head)", lambda: x.transpose(1, 2)),
    ]
    expected = multihead.merge_heads(x) if original is None else original
    compare(got, expected, variants=variants, inputs=f"x={describe(x)}",
            shape_hint=lambda shape: "expected (B, T, H * d_head)")


def check_multi_head_attention(cls: type) -> None:
    """Check a ``MultiHeadAttention(d_model, n_heads, dropout=0.0, bias=True)`` class (Sec. 3.2.2)."""
    r = torch.randn
    with seeded():
        models = ModelPair(cls, multihead.MultiHeadAttention, "MultiHeadAttention", ["d_model", "n_heads"])
        x, q, key, value = r(2, 5, 12), r(2, 3, 12), r(2, 6, 12), r(2, 6, 12)
        pad = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]]).bool()[:, None, None, :]  # (B, 1, 1, T_k)
        cases = [
            ("self-attention (B=2, T=5, d_model=12, n_heads=3)", (12, 3, x, x, x, None)),
            ("cross-attention (T_q=3, T_k=6, key != value)", (12, 3, q, key, value, None)),
            ("cross-attention with a padding mask (B, 1, 1, T_k)", (12, 3, q, key, value, pad)),
            ("self-attention with a causal mask (T, T)", (12, 3, x, x, x, masks.causal_mask(5))),
            ("d_model=8, n_heads=4 (d_head=2)", (8, 4, r(1, 4, 8), r(1, 4, 8), r(1, 4, 8), None)),
        ]
        run_cases("MultiHeadAttention", cases, lambda case: _mha_case(models, *case))


def _mha_case(models: ModelPair, d_model: int, n_heads: int, query: Tensor, key: Tensor, value: Tensor,
              mask: Tensor | None) -> None:
    student, ref = models.get(d_model, n_heads, dropout=0.0, bias=True)
    extra = {} if mask is None else {"mask": mask}
    expected = ref(query, key, value, **extra)
    got = call(student, query, key, value, names=["query", "key", "value"], **extra)
    variants = [(msg, lambda kw=kw: mha_variant(ref, n_heads, query, key, value, mask, **kw))
                for msg, kw in MHA_MISTAKES]
    averaged = ("return the per-head weights (B, H, T_q, T_k), not averaged over heads", lambda: expected[1].mean(1))
    named = zip(["query", "key", "value", "mask"], (query, key, value, mask))
    inputs = ", ".join(f"{n}={describe(t)}" for n, t in named if t is not None)
    compare_pair(got, expected, variants=variants, weight_variants=[averaged], mask=mask, inputs=inputs,
                 out_hint="merge the heads (transpose(1, 2), reshape) and apply out_proj", **MODULE_TOL)




def check_to_torch_multihead(fn: Callable) -> None:
    """Check notebook 05's stretch ``to_torch_multihead(mha) -> nn.MultiheadAttention`` (being written)."""
    raise NotImplementedError("check_to_torch_multihead is being written")
