"""Auto-checks for the course exercises: ``check_<exercise>(student_function_or_class)``.

Each check runs the student's code on several seeded inputs, edge cases included, and compares it
with the library reference (or a torch built-in), never with the student's own output. On a mismatch
it raises an ``AssertionError`` that names the case and the most likely mistake, found by matching the
student's output against known-wrong variants of the reference (unscaled scores, inverted mask, heads
reshaped without transpose, ...). When every case passes it prints one line,
``<exercise>: all N cases pass``. Checks run in eval mode without autograd, with a fixed seed, and leave
the global random state as they found it. A class check instantiates the class itself and copies the
reference weights in (by the contract's attribute names, else by parameter shapes in order); it prints
one line saying which.

Example:
    >>> import torch
    >>> from transformer_lib import checks
    >>> checks.check_softmax(lambda x, dim=-1: torch.softmax(x, dim=dim))
    softmax: all 7 cases pass
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import permutations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import attention, layers, masks, multihead, positional
from ._checking import (MHA_MISTAKES, PE_MISTAKES, WRONG_AXIS, ModelPair, attend_variant, call, compare, compare_pair,
                        describe, layer_mistakes, mha_variant, pe_variant, run_cases, sdpa_variants, seeded,
                        sublayers_variant)

__all__ = [
    "check_softmax", "check_dot_product_attention", "check_scaled_dot_product_attention",
    "check_sinusoidal_positional_encoding", "check_padding_mask", "check_causal_mask", "check_split_heads",
    "check_merge_heads", "check_multi_head_attention", "check_feed_forward", "check_encoder_layer",
    "check_decoder_layer",
]

_MODULE_TOL = dict(atol=1e-4, rtol=1e-4)  # modules chain several matmuls and LayerNorms
_BOOL_MASK_HINT = ("masks are bool, True = may attend (a comparison such as `tokens != pad_id` is already bool); "
                   "if you built an additive 0/-inf mask, use `mask = additive_mask == 0`")


# ----------------------------------------------------------------------------------------------- softmax
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
        ("sum with keepdim=True, so the sums broadcast along dim", lambda: e / e.sum(dim)),
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


# ----------------------------------------------------------------------------------------------- attention
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
        ("out = weights @ v, with weights not transposed", lambda: (weights.transpose(-2, -1) @ v, weights)),
    ]
    compare_pair(got, (out, weights), variants=variants, inputs=f"q={describe(q)}, k={describe(k)}, v={describe(v)}")


# ----------------------------------------------------------------------------------------------- positions
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


# ----------------------------------------------------------------------------------------------- masks
def check_padding_mask(fn: Callable) -> None:
    """Check ``padding_mask(tokens, pad_id) -> (B, 1, 1, T)`` bool, True where ``tokens != pad_id``."""
    t = torch.tensor
    with seeded():
        cases = [
            ("pad_id=0", (t([[5, 7, 2, 0, 0], [3, 1, 4, 1, 5], [9, 0, 0, 0, 0]]), 0)),
            ("pad_id=3 (0 is a real token here)", (t([[4, 0, 5, 3, 3], [1, 2, 0, 6, 3]]), 3)),
            ("no padding (B=1, T=4)", (t([[1, 2, 3, 4]]), 0)),
            ("one token per sequence (T=1)", (t([[7], [0]]), 0)),
        ]
        run_cases("padding_mask", cases, lambda case: _padding_case(fn, *case))


def _padding_case(fn: Callable, tokens: Tensor, pad_id: int) -> None:
    got = call(fn, tokens, pad_id, names=["tokens", "pad_id"])
    expected = masks.padding_mask(tokens, pad_id)
    B, T = tokens.shape
    inverted = "True must mean MAY attend (a real token): use tokens != pad_id; your mask is True at the padding"
    ignored = "you ignored pad_id (hard-coded 0?): compare the tokens with the pad_id argument"
    variants = [(inverted, lambda: ~expected), (ignored, lambda: (tokens != 0)[:, None, None, :]),
                (f"{ignored}; and {inverted}", lambda: (tokens == 0)[:, None, None, :])]

    def shape_hint(shape: tuple[int, ...]) -> str:
        if shape in ((B, T), (B, 1, T)):
            return "must broadcast to (B, H, T_q, T_k): add two singleton dims -> (B,1,1,T)"
        if len(shape) == 4 and shape[-1] != T and T in shape:
            return "T must be the last axis (the keys): (B, 1, 1, T)"
        return "expected (B, 1, 1, T)"

    compare(got, expected, what="the mask", variants=variants, dtype=torch.bool, shape_hint=shape_hint,
            dtype_hint=_BOOL_MASK_HINT, inputs=f"tokens={tokens.tolist()}, pad_id={pad_id}")


def check_causal_mask(fn: Callable) -> None:
    """Check ``causal_mask(size) -> (T, T)`` bool, True on and below the diagonal."""
    with seeded():
        run_cases("causal_mask", [("size=4", 4), ("size=7", 7), ("size=1", 1)], lambda size: _causal_case(fn, size))


def _causal_case(fn: Callable, size: int) -> None:
    got = call(fn, size, names=["size"])
    expected = masks.causal_mask(size)
    ones = torch.ones(size, size, dtype=torch.bool)
    variants = [
        ("a token must be able to attend to itself: keep the diagonal (torch.tril(..., diagonal=0))",
         lambda: ones.tril(-1)),
        ("diagonal+1 leaks the next token: use torch.tril(..., diagonal=0)", lambda: ones.tril(1)),
        ("inverted: True must mean MAY attend, i.e. on and below the diagonal; yours is True above it (the future)",
         lambda: ~expected),
        ("transposed (upper triangle): rows are queries, columns keys; query i may attend to keys j <= i "
         "(lower triangle, torch.tril)", lambda: expected.T),
    ]
    shape_hint = lambda shape: "return a (T, T) mask; it broadcasts to (B, H, T, T) by itself"  # noqa: E731
    compare(got, expected, what="the mask", variants=variants, dtype=torch.bool, shape_hint=shape_hint,
            dtype_hint=_BOOL_MASK_HINT, inputs=f"size={size}")


# ----------------------------------------------------------------------------------------------- heads
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


# ----------------------------------------------------------------------------------------------- modules
def check_multi_head_attention(cls: type) -> None:
    """Check a ``MultiHeadAttention(d_model, n_heads, dropout=0.0, bias=True)`` class (Sec. 3.2.2)."""
    r, notes = torch.randn, []
    with seeded():
        models = ModelPair(cls, multihead.MultiHeadAttention, "MultiHeadAttention", notes, ["d_model", "n_heads"])
        x, q, key, value = r(2, 5, 12), r(2, 3, 12), r(2, 6, 12), r(2, 6, 12)
        pad = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]]).bool()[:, None, None, :]  # (B, 1, 1, T_k)
        cases = [
            ("self-attention (B=2, T=5, d_model=12, n_heads=3)", (12, 3, x, x, x, None)),
            ("cross-attention (T_q=3, T_k=6, key != value)", (12, 3, q, key, value, None)),
            ("cross-attention with a padding mask (B, 1, 1, T_k)", (12, 3, q, key, value, pad)),
            ("self-attention with a causal mask (T, T)", (12, 3, x, x, x, masks.causal_mask(5))),
            ("d_model=8, n_heads=4 (d_head=2)", (8, 4, r(1, 4, 8), r(1, 4, 8), r(1, 4, 8), None)),
        ]
        run_cases("MultiHeadAttention", cases, lambda case: _mha_case(models, *case), notes)


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
                 out_hint="merge the heads (transpose(1, 2), reshape) and apply out_proj", **_MODULE_TOL)


def check_feed_forward(cls: type) -> None:
    """Check a ``FeedForward(d_model, d_ff, dropout=0.0)`` class: Eq. (2), linear1 -> ReLU -> linear2."""
    notes: list[str] = []
    with seeded():
        models = ModelPair(cls, layers.FeedForward, "FeedForward", notes, ["d_model", "d_ff"])
        cases = [("B=2, T=5, d_model=8, d_ff=32", (8, 32, torch.randn(2, 5, 8))),
                 ("B=1, T=3, d_model=12, d_ff=20", (12, 20, 3 * torch.randn(1, 3, 12))),
                 ("one position (T=1)", (8, 32, torch.randn(3, 1, 8)))]
        run_cases("FeedForward", cases, lambda case: _ffn_case(models, *case), notes)


def _ffn_case(models: ModelPair, d_model: int, d_ff: int, x: Tensor) -> None:
    student, ref = models.get(d_model, d_ff, dropout=0.0)
    got = call(student, x, names=["x"])
    l1, l2 = ref.linear1, ref.linear2
    variants = [
        ("missing ReLU between the two linear layers (Eq. 2: max(0, x W1 + b1) W2 + b2)", lambda: l2(l1(x))),
        ("wrong activation: the paper's FFN uses ReLU (Eq. 2)", lambda: l2(F.gelu(l1(x)))),
        ("missing second linear (W2): the FFN maps d_ff back to d_model", lambda: torch.relu(l1(x))),
        ("no activation after the second linear: FFN(x) = max(0, x W1 + b1) W2 + b2",
         lambda: torch.relu(l2(torch.relu(l1(x))))),
        ("the residual belongs in the layer, not the FFN: return linear2(relu(linear1(x)))", lambda: x + ref(x)),
    ]
    compare(got, ref(x), variants=variants, inputs=f"x={describe(x)}", **_MODULE_TOL,
            shape_hint=lambda shape: "the FFN maps (B, T, d_model) to (B, T, d_model)")


def check_encoder_layer(cls: type) -> None:
    """Check an ``EncoderLayer(d_model, n_heads, d_ff, dropout=0.0, norm_first=False)`` class, post- and pre-norm."""
    notes: list[str] = []
    with seeded():
        models = ModelPair(cls, layers.EncoderLayer, "EncoderLayer", notes, ["d_model", "n_heads", "d_ff"])
        x = torch.randn(2, 5, 16)
        pad = masks.padding_mask(torch.tensor([[4, 5, 6, 0, 0], [1, 2, 3, 4, 0]]), 0)  # (B, 1, 1, S)
        cases = [("post-norm (norm_first=False), B=2, S=5, d_model=16, n_heads=4, d_ff=32", (False, x, None)),
                 ("post-norm with a padding mask", (False, x, pad)),
                 ("pre-norm (norm_first=True)", (True, x, None)),
                 ("pre-norm with a padding mask", (True, x, pad))]
        run_cases("EncoderLayer", cases, lambda case: _encoder_case(models, *case), notes)


def _encoder_case(models: ModelPair, norm_first: bool, x: Tensor, mask: Tensor | None) -> None:
    student, ref = models.get(16, 4, 32, dropout=0.0, norm_first=norm_first)
    got = call(student, x, names=["x"], **({} if mask is None else {"mask": mask}))

    def run(placement: str = "pre" if norm_first else "post", residual: tuple = (True, True), use_mask: bool = True,
            swap_norms: bool = False) -> Tensor:
        m = mask if use_mask else None
        norms = [ref.norm2, ref.norm1] if swap_norms else [ref.norm1, ref.norm2]
        blocks = [lambda h: ref.self_attn(h, h, h, mask=m)[0], ref.feed_forward]
        return sublayers_variant(x, blocks, norms, placement, residual)

    mistakes = layer_mistakes(norm_first, 2) + [
        ("the mask is not passed to self-attention", dict(use_mask=False)),
        ("norm1 and norm2 swapped: norm1 goes with self-attention, norm2 with the feed-forward", dict(swap_norms=True)),
    ]
    compare(got, ref(x, mask), variants=[(msg, lambda kw=kw: run(**kw)) for msg, kw in mistakes], **_MODULE_TOL,
            inputs=f"x={describe(x)}" + (f", mask={describe(mask)}" if mask is not None else ""))


def check_decoder_layer(cls: type) -> None:
    """Check a ``DecoderLayer(d_model, n_heads, d_ff, dropout=0.0, norm_first=False)`` class (Sec. 3.1)."""
    notes: list[str] = []
    with seeded():
        models = ModelPair(cls, layers.DecoderLayer, "DecoderLayer", notes, ["d_model", "n_heads", "d_ff"])
        x, memory, causal = torch.randn(2, 4, 16), torch.randn(2, 6, 16), masks.causal_mask(4)
        src = masks.padding_mask(torch.tensor([[4, 5, 6, 7, 0, 0], [1, 2, 3, 4, 5, 0]]), 0)  # (B, 1, 1, S)
        cases = [("post-norm, no masks (B=2, T=4, S=6, d_model=16, n_heads=4, d_ff=32)",
                  (False, x, memory, None, None)),
                 ("post-norm, causal tgt_mask", (False, x, memory, None, causal)),
                 ("post-norm, causal tgt_mask and src padding mask", (False, x, memory, src, causal)),
                 ("pre-norm (norm_first=True), both masks", (True, x, memory, src, causal))]
        run_cases("DecoderLayer", cases, lambda case: _decoder_case(models, *case), notes)


def _decoder_case(models: ModelPair, norm_first: bool, x: Tensor, memory: Tensor, src_mask: Tensor | None,
                  tgt_mask: Tensor | None) -> None:
    student, ref = models.get(16, 4, 32, dropout=0.0, norm_first=norm_first)
    given = {k: m for k, m in (("src_mask", src_mask), ("tgt_mask", tgt_mask)) if m is not None}
    got = call(student, x, memory, names=["x", "memory"], **given)

    def run(placement: str = "pre" if norm_first else "post", residual: tuple = (True,) * 3, tgt: bool = True,
            src: bool = True, kv_from_x: bool = False, own_causal: bool = False, order: tuple = (0, 1, 2)) -> Tensor:
        t_mask = masks.causal_mask(x.shape[1]) if own_causal else tgt_mask if tgt else None
        s_mask = src_mask if src else None
        blocks = [lambda h: ref.self_attn(h, h, h, mask=t_mask)[0],
                  lambda h: ref.cross_attn(h, h if kv_from_x else memory, h if kv_from_x else memory, mask=s_mask)[0],
                  ref.feed_forward]
        norms = [[ref.norm1, ref.norm2, ref.norm3][i] for i in order]
        return sublayers_variant(x, blocks, norms, placement, residual)

    mistakes = layer_mistakes(norm_first, 3) + [
        ("causal mask not used: self-attention must get tgt_mask, or the decoder sees future tokens", dict(tgt=False)),
        ("cross-attention ignores src_mask (the padding of the source)", dict(src=False)),
        ("cross-attention must take key and value from memory (the encoder output), the query from x: "
         "cross_attn(x, memory, memory, src_mask)", dict(kv_from_x=True)),
        ("your layer builds its own causal mask: use the tgt_mask argument (None = no mask)", dict(own_causal=True)),
        *(("norm layers in the wrong order: norm1 goes with self-attention, norm2 with cross-attention, norm3 with "
           "the feed-forward", dict(order=p)) for p in permutations(range(3)) if p != (0, 1, 2)),
    ]
    inputs = ", ".join(f"{n}={describe(t)}" for n, t in (("x", x), ("memory", memory), *given.items()))
    compare(got, ref(x, memory, src_mask=src_mask, tgt_mask=tgt_mask), **_MODULE_TOL, inputs=inputs,
            variants=[(msg, lambda kw=kw: run(**kw)) for msg, kw in mistakes])
