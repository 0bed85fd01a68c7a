"""Tests of transformer_lib.checks: the references pass, realistic wrong answers are rejected with the
right diagnosis, and correct alternative formulations pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from transformer_lib import checks
from transformer_lib.attention import SelfAttention, dot_product_attention, scaled_dot_product_attention
from transformer_lib.layers import DecoderLayer, EncoderLayer, FeedForward
from transformer_lib.masks import causal_mask, padding_mask
from transformer_lib.multihead import MultiHeadAttention, merge_heads, split_heads
from transformer_lib.positional import sinusoidal_positional_encoding


def reference_softmax(x, dim=-1):
    return torch.softmax(x, dim=dim)


REFERENCES = [
    (checks.check_softmax, reference_softmax, "softmax: all 7 cases pass"),
    (checks.check_dot_product_attention, dot_product_attention, "dot_product_attention: all 4 cases pass"),
    (checks.check_scaled_dot_product_attention, scaled_dot_product_attention,
     "scaled_dot_product_attention: all 7 cases pass"),
    (checks.check_sinusoidal_positional_encoding, sinusoidal_positional_encoding,
     "sinusoidal_positional_encoding: all 4 cases pass"),
    (checks.check_padding_mask, padding_mask, "padding_mask: all 4 cases pass"),
    (checks.check_causal_mask, causal_mask, "causal_mask: all 3 cases pass"),
    (checks.check_split_heads, split_heads, "split_heads: all 4 cases pass"),
    (checks.check_merge_heads, merge_heads, "merge_heads: all 4 cases pass"),
    (checks.check_multi_head_attention, MultiHeadAttention, "MultiHeadAttention: all 5 cases pass"),
    (checks.check_feed_forward, FeedForward, "FeedForward: all 3 cases pass"),
    (checks.check_encoder_layer, EncoderLayer, "EncoderLayer: all 4 cases pass"),
    (checks.check_decoder_layer, DecoderLayer, "DecoderLayer: all 4 cases pass"),
    (checks.check_self_attention, SelfAttention, "SelfAttention: all 4 cases pass"),
    (checks.check_safe_attention, scaled_dot_product_attention, "safe_attention: all 5 cases pass"),
]


@pytest.mark.parametrize(("check", "reference", "line"), REFERENCES, ids=lambda v: getattr(v, "__name__", ""))
def test_reference_passes_with_one_success_line(check, reference, line, capsys):
    lines = passes(check, reference, capsys)
    assert lines[-1] == line
    if isinstance(reference, type):  # one extra line: how the weights were copied
        assert len(lines) == 2 and "copied the reference weights into your module by name" in lines[0]
    else:
        assert len(lines) == 1


def test_every_check_is_exported():
    exported = [name for name in checks.__all__ if name.startswith("check_")]
    family_tests = "".join(path.read_text(encoding="utf-8") for path in Path(__file__).parent.glob("test_checks_*.py"))
    tested_elsewhere = {name for name in exported if name in family_tests}  # tests/test_checks_<family>.py
    untested = set(exported) - tested_elsewhere - {check.__name__ for check, _, _ in REFERENCES}
    assert not untested, f"checks with no test: {sorted(untested)}"


def test_checks_restore_the_global_rng_and_threads_and_are_deterministic(capsys):
    torch.manual_seed(123)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    checks.check_multi_head_attention(MultiHeadAttention)
    checks.check_scaled_dot_product_attention(scaled_dot_product_attention)
    with raises("scores not divided"):
        checks.check_scaled_dot_product_attention(make_attention(scale="none"))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    first = capsys.readouterr().out
    checks.check_multi_head_attention(MultiHeadAttention)
    checks.check_scaled_dot_product_attention(scaled_dot_product_attention)
    assert capsys.readouterr().out == first


def test_worked_example_of_notebook_02():
    x = torch.tensor([[1.0, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]])
    w_key = torch.tensor([[0.0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]])
    w_query = torch.tensor([[1.0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]])
    w_value = torch.tensor([[0.0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]])
    out, _ = dot_product_attention(x @ w_query, x @ w_key, x @ w_value)
    torch.testing.assert_close(out[0], torch.tensor([1.937, 6.683, 1.595]), atol=1e-3, rtol=0)


# ----------------------------------------------------------------------------------------------- softmax
def naive_softmax(x, dim=-1):
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)


@pytest.mark.parametrize("fn", [
    lambda x, dim=-1: F.softmax(x, dim=dim),
    lambda x, dim=-1: torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True)),
    lambda x, dim=-1: naive_softmax(x - x.max(dim=dim, keepdim=True).values, dim),
    lambda x, dim=-1: naive_softmax(x - x.amax(dim=dim, keepdim=True), dim).double().float(),
], ids=["F.softmax", "logsumexp", "stable by hand", "amax"])
def test_softmax_alternatives_pass(fn, capsys):
    assert passes(checks.check_softmax, fn, capsys) == ["softmax: all 7 cases pass"]


@pytest.mark.parametrize(("fn", "match"), [
    (naive_softmax, r"case 'large values.*overflow: subtract the max before exp \(softmax is shift-invariant\)"),
    (lambda x, dim=-1: naive_softmax(x - x.max(), dim), r"case 'large values.*not the max of the whole tensor"),
    (lambda x, dim=-1: torch.softmax(x, -1),
     r"case '2-D, dim=0'.*softmax over the wrong axis \(dim=1 instead of dim=0"),
    (lambda x, dim=-1: x / x.sum(dim, keepdim=True), r"forgot the exp"),
    (lambda x, dim=-1: torch.exp(x), r"forgot to normalise"),
    (lambda x, dim=-1: torch.sigmoid(x), r"does not sum to 1 along dim=-1: did you normalise over the wrong dimension"),
    (lambda x, dim=-1: torch.exp(x).sum(dim), r"should have shape \(3,\)"),
    (lambda x, dim=-1: naive_softmax(x, dim).tolist(), r"must be a torch.Tensor; got list"),
    (lambda x, dim=-1: torch.exp(x) / torch.exp(x).sum(dim), r"case '2-D, dim=-1'.*RuntimeError.*keepdim=True"),
])
def test_softmax_mistakes_are_diagnosed(fn, match):
    with raises(match):
        checks.check_softmax(fn)


def test_softmax_over_another_axis_is_named():
    def transposed_rows(x, dim=-1):  # normalises over the first axis whatever dim says (keeps shapes)
        return torch.softmax(x, dim=0) if x.ndim > 1 else torch.softmax(x, dim=-1)

    with raises(r"case '2-D, dim=-1'.*softmax over the wrong axis \(dim=0"):
        checks.check_softmax(transposed_rows)


# ----------------------------------------------------------------------------------------------- attention
def make_attention(*, scale="sqrt", dim=-1, mask_mode="before", fill=float("-inf"), out_first=True, tuple_out=True,
                   transpose_k=True, out_order="wv"):
    """A student attention function with one switchable mistake (defaults: correct, scaled)."""
    def attention(q, k, v, mask=None):
        kt = k.transpose(-2, -1) if transpose_k else k
        scores = q @ kt  # (..., T_q, T_k)
        d_k = q.shape[-1]
        scores = scores / {"sqrt": math.sqrt(d_k), "none": 1.0, "d_k": d_k, "d_v": math.sqrt(v.shape[-1])}[scale]
        if mask is not None and mask_mode == "before":
            scores = scores.masked_fill(~mask, fill)
        if mask is not None and mask_mode == "inverted":
            scores = scores.masked_fill(mask, fill)
        weights = torch.softmax(scores, dim=dim)
        if mask is not None and mask_mode == "after":
            weights = weights.masked_fill(~mask, 0.0)
        out = weights @ v if out_order == "wv" else v @ weights
        if not tuple_out:
            return out
        return (out, weights) if out_first else (weights, out)
    return attention


def einsum_attention(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = naive_softmax(scores)  # naive softmax is fine for these inputs
    return torch.einsum("...qk,...kd->...qd", weights, v), weights


def finfo_matmul_attention(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(k.size(-1)))
    if mask is not None:
        scores = torch.where(mask, scores, torch.finfo(scores.dtype).min)
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights


def torch_sdpa_attention(q, k, v, mask=None):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return out, scores.softmax(-1)


@pytest.mark.parametrize("fn", [
    make_attention(), make_attention(fill=-1e9), einsum_attention, finfo_matmul_attention, torch_sdpa_attention,
], ids=["masked_fill -inf", "masked_fill -1e9", "einsum + naive softmax", "matmul + finfo.min + where", "F.sdpa"])
def test_sdpa_alternatives_pass(fn, capsys):
    assert passes(checks.check_scaled_dot_product_attention, fn, capsys) == \
        ["scaled_dot_product_attention: all 7 cases pass"]


@pytest.mark.parametrize(("fn", "match"), [
    (make_attention(scale="none"), r"case 'single sequence.*scores not divided by sqrt\(d_k\)"),
    (make_attention(scale="d_k"), r"scores divided by d_k instead of sqrt\(d_k\)"),
    (make_attention(scale="d_v"), r"case 'd_v != d_k.*not sqrt\(d_v\)"),
    (make_attention(dim=-2),
     r"weights do not sum to 1 over the key axis: did you take softmax over the wrong dimension"),
    (make_attention(dim=0), r"did you take softmax over the wrong dimension"),
    (make_attention(mask_mode="inverted"), r"case 'padding mask.*your mask seems inverted: True means MAY attend"),
    (make_attention(mask_mode="inverted", fill=-1e9), r"case 'padding mask.*your mask seems inverted"),
    (make_attention(mask_mode="after"), r"case 'padding mask.*masked positions get nonzero weight / rows no longer "
                                        r"sum to 1: apply the mask to the scores before softmax"),
    (make_attention(mask_mode="ignored"), r"case 'padding mask.*the mask is ignored"),
    (make_attention(scale="none", mask_mode="inverted"), r"case 'single sequence.*scores not divided"),
    (make_attention(tuple_out=False), r"return a tuple \(out, weights\); you returned a single Tensor"),
    (make_attention(out_first=False), r"you returned \(weights, out\): return \(out, weights\), in that order"),
    (lambda q, k, v, mask=None: (make_attention()(q, k, v, mask)[0].transpose(-2, -1),
                                 make_attention()(q, k, v, mask)[1]),
     r"case 'single sequence.*out has shape \(8, 5\) but should have shape \(5, 8\)"),
])
def test_sdpa_mistakes_are_diagnosed(fn, match):
    with raises(match):
        checks.check_scaled_dot_product_attention(fn)


def test_sdpa_mask_multiplied_and_scaled_in_place():
    def multiply(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores * mask
        w = scores.softmax(-1)
        return w @ v, w

    def in_place(q, k, v, mask=None):
        q /= math.sqrt(q.shape[-1])
        return make_attention(scale="none")(q, k, v, mask)

    with raises(r"multiplying the scores by the mask makes masked scores 0"):
        checks.check_scaled_dot_product_attention(multiply)
    with raises(r"changed its input `q` in place"):
        checks.check_scaled_dot_product_attention(in_place)


@pytest.mark.filterwarnings("ignore:The use of `x.T`")
def test_student_exceptions_are_wrapped_with_case_and_cause():
    def k_dot_t(q, k, v, mask=None):  # k.T reverses every dim of a 3-D/4-D tensor
        w = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)
        return w @ v, w

    with raises(r"case 'batched \(B=2, H=3, T=4, d_k=8\)' \(2 of 7\): your code raised "
                                             r"RuntimeError") as info:
        checks.check_scaled_dot_product_attention(k_dot_t)
    assert isinstance(info.value.student_error, RuntimeError)
    assert "called with q=(2, 3, 4, 8) float32" in str(info.value)

    def no_mask_argument(q, k, v):
        return make_attention()(q, k, v)

    with raises(r"case 'padding mask.*TypeError.*unexpected keyword argument 'mask'.*"
                                             r"keep the signature") as info:
        checks.check_scaled_dot_product_attention(no_mask_argument)
    assert isinstance(info.value.student_error, TypeError)

    def not_done(q, k, v, mask=None):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="the exercise is not done yet: write `not_done`") as info:
        checks.check_scaled_dot_product_attention(not_done)
    assert isinstance(info.value, NotImplementedError) and not isinstance(info.value, AssertionError)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one line, nothing chained


def test_dot_product_attention(capsys):
    unscaled = make_attention(scale="none")
    assert passes(checks.check_dot_product_attention, unscaled, capsys) == ["dot_product_attention: all 4 cases pass"]

    def einsum_no_mask(q, k, v):  # notebook 02 may define it without a mask argument
        weights = torch.einsum("...qd,...kd->...qk", q, k).softmax(-1)
        return torch.einsum("...qk,...kd->...qd", weights, v), weights

    assert passes(checks.check_dot_product_attention, einsum_no_mask, capsys) == \
        ["dot_product_attention: all 4 cases pass"]
    for fn, match in [
        (make_attention(), r"case 'worked example.*you scaled by sqrt\(d_k\): this notebook's version is unscaled "
                           r"\(that comes in 03\)"),
        (make_attention(scale="none", dim=0), r"case 'worked example.*softmax over the wrong dimension"),
        (make_attention(scale="none", transpose_k=False), r"case 'worked example.*k not transposed"),
        (make_attention(scale="none", out_order="vw"), r"case 'worked example.*out = weights @ v, in that order"),
        (make_attention(scale="none", out_first=False), r"return \(out, weights\), in that order"),
        (lambda q, k, v: make_attention(scale="none")(k, q, v), r"case 'random.*scores are transposed"),
        (lambda q, k, v: make_attention(scale="none")(q.transpose(-2, -1), k.transpose(-2, -1), v),
         r"case 'worked example.*not q\^T @ k"),
    ]:
        with raises(match):
            checks.check_dot_product_attention(fn)


# ----------------------------------------------------------------------------------------------- positions
def make_pe(*, swap=False, halves=False, exponent=lambda i, d: 2 * i / d, dtype=torch.float32, transpose=False):
    def pe_fn(max_len, d_model):
        pe = torch.zeros(max_len, d_model, dtype=torch.float64)
        pos = torch.arange(max_len, dtype=torch.float64)[:, None]
        for i in range(d_model // 2):
            col_sin, col_cos = (i, i + d_model // 2) if halves else (2 * i, 2 * i + 1)
            angle = pos[:, 0] / 10000 ** exponent(i, d_model)
            pe[:, col_sin], pe[:, col_cos] = (torch.cos(angle), torch.sin(angle)) if swap else \
                (torch.sin(angle), torch.cos(angle))
        pe = pe.to(dtype)
        return pe.T if transpose else pe
    return pe_fn


def numpy_pe(max_len, d_model):  # the classic numpy formulation, converted at the end
    pos = np.arange(max_len)[:, None]
    i = np.arange(d_model)[None, :]
    angles = pos / np.power(10000, (2 * (i // 2)) / np.float32(d_model))
    angles[:, 0::2], angles[:, 1::2] = np.sin(angles[:, 0::2]), np.cos(angles[:, 1::2])
    return torch.tensor(angles, dtype=torch.float32)


def column_index_pe(max_len, d_model):  # exponent 2j/d_model with j the column index, not the pair index
    pos = torch.arange(max_len).float()[:, None]
    div = 10000 ** (2 * torch.arange(d_model).float() / d_model)
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos / div[0::2]), torch.cos(pos / div[1::2])
    return pe


def test_positional_encoding(capsys):
    for fn in (make_pe(), numpy_pe):
        assert passes(checks.check_sinusoidal_positional_encoding, fn, capsys) == \
            ["sinusoidal_positional_encoding: all 4 cases pass"]
    for fn, match in [
        (make_pe(swap=True), r"case 'max_len=10, d_model=8'.*sin and cos swapped"),
        (make_pe(halves=True), r"sin in even columns, cos in odd columns, not first half/second half"),
        (make_pe(exponent=lambda i, d: i / d), r"wrong frequency: the exponent is 2i/d_model .* you used i/d_model"),
        (make_pe(exponent=lambda i, d: 4 * i / d), r"arange\(0, d_model, 2\) already gives 2i"),
        (column_index_pe, r"i is the pair index column // 2, not the column index"),
        (make_pe(transpose=True), r"output is transposed: one row per position, shape \(max_len, d_model\)"),
        (make_pe(dtype=torch.float64), r"must have dtype torch.float32; got torch.float64"),
        (lambda m, d: make_pe()(m, d).numpy(), r"must be a torch.Tensor; got ndarray"),
        (lambda m, d: make_pe()(m, d).long(), r"must have dtype torch.float32; got torch.int64"),
        (lambda m, d: make_pe()(m, d)[None], r"shape \(1, 10, 8\) but should have shape \(10, 8\): return the "),
    ]:
        with raises(match):
            checks.check_sinusoidal_positional_encoding(fn)


# ----------------------------------------------------------------------------------------------- masks
def test_padding_mask(capsys):
    for fn in (lambda tokens, pad_id: tokens.ne(pad_id).unsqueeze(1).unsqueeze(2),
               lambda tokens, pad_id: (tokens != pad_id).view(tokens.shape[0], 1, 1, tokens.shape[1])):
        assert passes(checks.check_padding_mask, fn, capsys) == ["padding_mask: all 4 cases pass"]
    for fn, match in [
        (lambda t, p: (t == p)[:, None, None, :], r"case 'pad_id=0'.*True must mean MAY attend"),
        (lambda t, p: t != p, r"must broadcast to \(B, H, T_q, T_k\): add two singleton dims -> \(B,1,1,T\)"),
        (lambda t, p: (t != p)[:, None, None, :].long(), r"must have dtype torch.bool; got torch.int64"),
        (lambda t, p: (t != 0)[:, None, None, :], r"case 'pad_id=3 .*you ignored pad_id \(hard-coded 0\?\)"),
        (lambda t, p: (t != p)[:, :, None, None], r"T must be the last axis"),
        (lambda t, p: torch.zeros(t.shape).masked_fill(t == p, float("-inf"))[:, None, None, :],
         r"got torch.float32.*additive 0/-inf mask"),
    ]:
        with raises(match):
            checks.check_padding_mask(fn)


def test_causal_mask(capsys):
    for fn in (lambda size: torch.ones(size, size).tril().bool(),
               lambda size: torch.arange(size)[None, :] <= torch.arange(size)[:, None]):
        assert passes(checks.check_causal_mask, fn, capsys) == ["causal_mask: all 3 cases pass"]
    ones = lambda s: torch.ones(s, s, dtype=torch.bool)  # noqa: E731
    for fn, match in [
        (lambda s: ones(s).tril(-1), r"case 'size=4'.*a token must be able to attend to itself"),
        (lambda s: ones(s).tril(1), r"diagonal\+1 leaks the next token"),
        (lambda s: ones(s).triu(1), r"inverted: True must mean MAY attend"),
        (lambda s: ones(s).triu(), r"transposed \(upper triangle\)"),
        (lambda s: torch.ones(s, s).tril(), r"must have dtype torch.bool; got torch.float32"),
        (lambda s: ones(s).tril()[None, None], r"has shape \(1, 1, 4, 4\).*return a \(T, T\) mask"),
        (lambda s: ones(s).tril(-1) if s == 1 else ones(s).tril(), r"case 'size=1'.*attend to itself"),
    ]:
        with raises(match):
            checks.check_causal_mask(fn)


# ----------------------------------------------------------------------------------------------- heads
def test_split_and_merge_heads(capsys):
    def split_unflatten(x, n_heads):
        return x.unflatten(-1, (n_heads, -1)).permute(0, 2, 1, 3)

    def merge_contiguous(x):
        return x.transpose(1, 2).contiguous().view(x.shape[0], x.shape[2], -1)

    assert passes(checks.check_split_heads, split_unflatten, capsys) == ["split_heads: all 4 cases pass"]
    assert passes(checks.check_merge_heads, merge_contiguous, capsys) == ["merge_heads: all 4 cases pass"]
    assert passes(checks.check_merge_heads, lambda x: x.transpose(1, 2).flatten(2), capsys)
    for fn, match in [
        (lambda x, h: x.view(x.shape[0], h, x.shape[1], -1), r"reshaped without transpose"),
        (lambda x, h: x.view(*x.shape[:2], -1, h).permute(0, 3, 1, 2), r"wrong head ordering"),
        (lambda x, h: x.view(*x.shape[:2], h, -1), r"you forgot .transpose\(1, 2\)"),
    ]:
        with raises(match):
            checks.check_split_heads(fn)
    for fn, match in [
        (lambda x: x.reshape(x.shape[0], x.shape[2], -1), r"missing transpose before reshape"),
        (lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], -1), r"RuntimeError.*hint: a transposed tensor"),
        (lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1), r"heads interleaved"),
    ]:
        with raises(match):
            checks.check_merge_heads(fn)


# ----------------------------------------------------------------------------------------------- modules
class StudentMHA(nn.Module):
    """A student's multi-head attention (its own code, the contract's attribute names) with switchable mistakes."""

    mistakes: dict = {}

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        self.h, self.d_head = n_heads, d_model // n_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))

    def forward(self, query, key, value, mask=None):
        m = self.mistakes
        B, T_q, d_model = query.shape
        q, k, v = (w(t).view(B, -1, self.h, self.d_head).transpose(1, 2)
                   for w, t in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value)))
        scale = {"none": 1.0, "d_model": d_model ** 0.5}.get(m.get("scale"), self.d_head ** 0.5)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / scale
        if mask is not None and not m.get("ignore_mask"):
            scores = scores.masked_fill(mask if m.get("invert_mask") else ~mask, float("-inf"))
        weights = scores.softmax(-1)
        out = weights @ v  # (B, H, T_q, d_head)
        out = out.reshape(B, T_q, d_model) if m.get("merge_no_transpose") else \
            out.transpose(1, 2).reshape(B, T_q, d_model)
        out = out if m.get("no_out_proj") else self.out_proj(out)
        if m.get("only_out"):
            return out
        return out, (weights.mean(1) if m.get("average") else weights)


def student_mha(**mistakes):
    return type("MultiHeadAttention", (StudentMHA,), {"mistakes": mistakes})


def test_multi_head_attention_mistakes(capsys):
    lines = passes(checks.check_multi_head_attention, student_mha(), capsys)
    assert lines == ["MultiHeadAttention: copied the reference weights into your module by name (q_proj, k_proj, "
                     "v_proj, out_proj)", "MultiHeadAttention: all 5 cases pass"]
    for mistakes, match in [
        (dict(scale="none"),
         r"case 'self-attention \(B=2.*scores not scaled: divide each head's scores by sqrt\(d_head\)"),
        (dict(scale="d_model"), r"scaled by sqrt\(d_model\): scale each head's scores by sqrt\(d_head\)"),
        (dict(no_out_proj=True), r"no out_proj applied"),
        (dict(merge_no_transpose=True), r"heads merged without transpose"),
        (dict(ignore_mask=True), r"case 'cross-attention with a padding mask.*the mask is ignored"),
        (dict(invert_mask=True), r"case 'cross-attention with a padding mask.*your mask seems inverted"),
        (dict(average=True), r"return the per-head weights \(B, H, T_q, T_k\), not averaged over heads"),
        (dict(only_out=True), r"return a tuple \(out, weights\)"),
    ]:
        with raises(match):
            checks.check_multi_head_attention(student_mha(**mistakes))


def test_mask_inverted_with_a_finite_fill_is_named_in_every_masked_case():
    class InvertedFinite(StudentMHA):  # -1e9 instead of -inf: an inverted mask then gives no NaN anywhere
        def forward(self, query, key, value, mask=None):
            return super().forward(query, key, value, None if mask is None else ~mask)

    with raises(r"case 'cross-attention with a padding mask.*your mask seems inverted"):
        checks.check_multi_head_attention(InvertedFinite)

    def sdpa_4d_only(q, k, v, mask=None):  # transpose(2, 3) only works for 4-D inputs
        w = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(q.shape[-1]), dim=-1)
        return w @ v, w

    with raises(r"case 'single sequence.*IndexError.*hint: count dims from the end"):
        checks.check_scaled_dot_product_attention(sdpa_4d_only)


def test_class_checks_wrap_constructor_errors():
    class NoBias(nn.Module):
        def __init__(self, d_model, n_heads, dropout=0.0):
            super().__init__()

    with raises(r"case 'self-attention \(B=2.*your code raised TypeError.*'bias'.*keep the signature") as info:
        checks.check_multi_head_attention(NoBias)
    assert isinstance(info.value.student_error, TypeError)


def test_multi_head_attention_weights_that_cannot_be_copied():
    class Fused(nn.Module):
        def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
            super().__init__()
            self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)

    with raises(r"by attribute name, so name your layers as the exercise does\n  expected: q_proj, k_proj, v_proj, "
                r"out_proj\n  yours:    qkv, out \(not in the exercise\)"):
        checks.check_multi_head_attention(Fused)

    class Renamed(StudentMHA):  # right code, other names: told the names, never "differs from the reference"
        def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
            super().__init__(d_model, n_heads, dropout, bias)
            self.W_q, self.W_k, self.W_v, self.W_o = self.q_proj, self.k_proj, self.v_proj, self.out_proj
            del self.q_proj, self.k_proj, self.v_proj, self.out_proj

    with raises(r"expected: q_proj, k_proj, v_proj, out_proj\n  yours:    W_q, W_k, W_v, W_o \(not in the exercise\)"):
        checks.check_multi_head_attention(Renamed)

    class NoBias(StudentMHA):
        def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
            super().__init__(d_model, n_heads, dropout, bias=False)

    with raises(r"expected: q_proj.bias, k_proj.bias, v_proj.bias, out_proj.bias$"):
        checks.check_multi_head_attention(NoBias)

    class Narrow(StudentMHA):
        def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
            super().__init__(d_model, n_heads, dropout, bias)
            self.out_proj = nn.Linear(d_model, d_model // n_heads, bias=bias)

    with raises(r"wrong size \(out_proj.weight: expected \(12, 12\), yours \(4, 12\); out_proj.bias"):
        checks.check_multi_head_attention(Narrow)
    with raises(r"pass the class itself, not an instance"):
        checks.check_multi_head_attention(MultiHeadAttention(12, 3))
    with raises(r"is not an nn.Module"):
        checks.check_multi_head_attention(lambda d_model, n_heads, dropout=0.0, bias=True: object())


class StudentFFN(nn.Module):
    mistakes: dict = {}

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        m = self.mistakes
        h = self.linear1(x)
        h = {"none": h, "gelu": F.gelu(h)}.get(m.get("activation"), F.relu(h))
        y = h if m.get("no_linear2") else self.linear2(h)
        y = F.relu(y) if m.get("relu_out") else y
        return x + y if m.get("residual") else y


def test_feed_forward(capsys):
    lines = passes(checks.check_feed_forward, StudentFFN, capsys)
    assert lines == ["FeedForward: copied the reference weights into your module by name (linear1, linear2)",
                     "FeedForward: all 3 cases pass"]
    for mistakes, match in [
        (dict(activation="none"), r"missing ReLU between the two linear layers"),
        (dict(activation="gelu"), r"wrong activation: the paper's FFN uses ReLU"),
        (dict(no_linear2=True), r"missing second linear \(W2\)"),
        (dict(residual=True), r"the residual belongs in the layer, not the FFN"),
    ]:
        with raises(match):
            checks.check_feed_forward(type("FeedForward", (StudentFFN,), {"mistakes": mistakes}))


class StudentEncoderLayer(nn.Module):
    """Encoder layer written with nn.Module building blocks and switchable mistakes."""

    mistakes: dict = {}

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        self.self_attn, self.feed_forward = MultiHeadAttention(d_model, n_heads), FeedForward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.norm_first = norm_first if "force_pre" not in self.mistakes else self.mistakes["force_pre"]

    def forward(self, x, mask=None):
        m = self.mistakes
        attn_mask = None if m.get("drop_mask") else mask
        ln1, ln2 = (self.norm2, self.norm1) if m.get("swap_norms") else (self.norm1, self.norm2)
        res = 0 if m.get("no_residual") else 1
        if self.norm_first:
            h = ln1(x)
            x = res * x + self.self_attn(h, h, h, attn_mask)[0]
            return res * x + self.feed_forward(ln2(x))
        x = ln1(res * x + self.self_attn(x, x, x, attn_mask)[0])
        return ln2(res * x + self.feed_forward(x))


def student_encoder(**mistakes):
    return type("EncoderLayer", (StudentEncoderLayer,), {"mistakes": mistakes})


def test_encoder_layer(capsys):
    lines = passes(checks.check_encoder_layer, student_encoder(), capsys)
    assert lines[1] == "EncoderLayer: all 4 cases pass"

    class Renamed(StudentEncoderLayer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.attn, self.ffn, self.ln1, self.ln2 = self.self_attn, self.feed_forward, self.norm1, self.norm2
            del self.self_attn, self.feed_forward, self.norm1, self.norm2

    with raises(r"expected: self_attn, feed_forward, norm1, norm2\n  yours:    attn, ffn, ln1, ln2 \(not in the"):
        checks.check_encoder_layer(Renamed)
    for mistakes, match in [
        (dict(no_residual=True), r"case 'post-norm \(norm_first=False\).*missing residual connections"),
        (dict(force_pre=True), r"wrong norm placement: norm_first=False is the paper's post-norm"),
        (dict(force_pre=False), r"case 'pre-norm \(norm_first=True\)'.*wrong norm placement: norm_first=True means "
                                r"pre-norm"),
        (dict(drop_mask=True), r"case 'post-norm with a padding mask'.*the mask is not passed to self-attention"),
        (dict(swap_norms=True), r"norm1 and norm2 swapped"),
    ]:
        with raises(match):
            checks.check_encoder_layer(student_encoder(**mistakes))


class StudentDecoderLayer(nn.Module):
    """Decoder layer with the contract's attribute names and switchable mistakes."""

    mistakes: dict = {}

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        self.self_attn, self.cross_attn = MultiHeadAttention(d_model, n_heads), MultiHeadAttention(d_model, n_heads)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.norm_first = norm_first

    def forward(self, x, memory, src_mask=None, tgt_mask=None):
        m = self.mistakes
        tgt_mask = None if m.get("no_causal") else causal_mask(x.shape[1]) if m.get("own_causal") else tgt_mask
        src_mask = None if m.get("no_src") else src_mask
        kv = (lambda h: h) if m.get("kv_from_x") else (lambda h: memory)
        res = 0 if m.get("no_residual") else 1
        if m.get("norms_reversed"):
            norm1, norm2, norm3 = self.norm3, self.norm2, self.norm1
            x = norm1(x + self.self_attn(x, x, x, tgt_mask)[0])
            x = norm2(x + self.cross_attn(x, memory, memory, src_mask)[0])
            return norm3(x + self.feed_forward(x))
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.self_attn(h, h, h, tgt_mask)[0]
            x = x + self.cross_attn(self.norm2(x), kv(x), kv(x), src_mask)[0]
            return x + self.feed_forward(self.norm3(x))
        x = self.norm1(res * x + self.self_attn(x, x, x, tgt_mask)[0])
        x = self.norm2(res * x + self.cross_attn(x, kv(x), kv(x), src_mask)[0])
        return self.norm3(res * x + self.feed_forward(x))


def student_decoder(**mistakes):
    return type("DecoderLayer", (StudentDecoderLayer,), {"mistakes": mistakes})


def test_decoder_layer(capsys):
    lines = passes(checks.check_decoder_layer, student_decoder(), capsys)
    assert lines == ["DecoderLayer: copied the reference weights into your module by name (self_attn, cross_attn, "
                     "feed_forward, norm1, norm2, norm3)", "DecoderLayer: all 4 cases pass"]
    for mistakes, match in [
        (dict(no_causal=True), r"case 'post-norm, causal tgt_mask'.*causal mask not used"),
        (dict(kv_from_x=True), r"case 'post-norm, no masks.*cross-attention must take key and value from memory"),
        (dict(no_residual=True), r"missing residual connections"),
    ]:
        with raises(match):
            checks.check_decoder_layer(student_decoder(**mistakes))

    class AlwaysPostNorm(StudentDecoderLayer):
        def __init__(self, *args, norm_first=False, **kwargs):
            super().__init__(*args, **kwargs)

    with raises(r"case 'pre-norm.*wrong norm placement: norm_first=True means pre-norm"):
        checks.check_decoder_layer(AlwaysPostNorm)

    class ReturnsWeightsToo(StudentDecoderLayer):
        def forward(self, *args, **kwargs):
            return super().forward(*args, **kwargs), None

    with raises(r"output must be a single torch.Tensor; you returned a tuple of 2"):
        checks.check_decoder_layer(ReturnsWeightsToo)


# ------------------------------------------------------------------- every catalogued mistake is reachable
# A student who makes exactly one catalogued mistake must get exactly that diagnosis: this guards against
# cases that stop telling a mistake apart from the right answer.
from checking import passes, raises

from transformer_lib.checks import attention as attention_checks  # noqa: E402
from transformer_lib.checks import layers as layer_checks  # noqa: E402
from transformer_lib.checks import multihead as mha_checks  # noqa: E402
from transformer_lib.checks import positional as pe_checks  # noqa: E402


def sdpa_mistakes():
    yield from ((message, scale, "before") for message, scale in attention_checks.SCALE_MISTAKES)
    yield from ((message, None, mode) for mode, message in attention_checks.MASK_MISTAKES.items())


@pytest.mark.parametrize(("message", "scale", "mode"), list(sdpa_mistakes()))
def test_every_attention_mistake_is_diagnosed(message, scale, mode):
    def student(q, k, v, mask=None):
        d_k = q.shape[-1]
        return attention_checks.attend_variant(q, k, v, mask, scale=scale(d_k) if scale else d_k ** -0.5, mask_mode=mode)

    with pytest.raises(AssertionError) as info:
        checks.check_scaled_dot_product_attention(student)
    assert message in str(info.value)


@pytest.mark.parametrize(("message", "kwargs"), pe_checks.PE_MISTAKES)
def test_every_positional_encoding_mistake_is_diagnosed(message, kwargs):
    with pytest.raises(AssertionError) as info:
        checks.check_sinusoidal_positional_encoding(lambda m, d: pe_checks.pe_variant(m, d, **kwargs))
    assert message in str(info.value)


@pytest.mark.parametrize(("message", "kwargs"), mha_checks.MHA_MISTAKES)
def test_every_multi_head_attention_mistake_is_diagnosed(message, kwargs, capsys):
    class Mistaken(MultiHeadAttention):
        def forward(self, query, key, value, mask=None):
            return mha_checks.mha_variant(self, self.n_heads, query, key, value, mask, **kwargs)

    with pytest.raises(AssertionError) as info:
        checks.check_multi_head_attention(Mistaken)
    assert message in str(info.value)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("n", [2, 3])
def test_every_layer_mistake_is_diagnosed(n, norm_first, capsys):
    for message, kwargs in layer_checks.layer_mistakes(norm_first, n):
        switches = dict(placement="pre" if norm_first else "post", residual=(True,) * n) | kwargs

        class MistakenEncoder(EncoderLayer):
            def forward(self, x, mask=None):
                if self.norm_first != norm_first:
                    return super().forward(x, mask)
                blocks = [lambda h: self.self_attn(h, h, h, mask)[0], self.feed_forward]
                return layer_checks.sublayers_variant(x, blocks, [self.norm1, self.norm2], **switches)

        class MistakenDecoder(DecoderLayer):
            def forward(self, x, memory, src_mask=None, tgt_mask=None):
                if self.norm_first != norm_first:
                    return super().forward(x, memory, src_mask, tgt_mask)
                blocks = [lambda h: self.self_attn(h, h, h, tgt_mask)[0],
                          lambda h: self.cross_attn(h, memory, memory, src_mask)[0], self.feed_forward]
                return layer_checks.sublayers_variant(x, blocks, [self.norm1, self.norm2, self.norm3], **switches)

        check, cls = (checks.check_encoder_layer, MistakenEncoder) if n == 2 else \
            (checks.check_decoder_layer, MistakenDecoder)
        with pytest.raises(AssertionError) as info:
            check(cls)
        assert message in str(info.value), (message, str(info.value))


# ------------------------------------------------------------ each diagnosis, reached by a realistic mistake
# A diagnosis that no wrong answer can reach is dead code, and one that no test reaches may have stopped
# working: every catalogued message below is produced by the mistake a student would actually write.
def _self_attention(**mistakes):
    class SelfAttention(nn.Module):
        def __init__(self, d_model, d_k, d_v=None):
            super().__init__()
            d_v = d_k if d_v is None else d_v
            self.W_q, self.W_k = nn.Parameter(torch.randn(d_model, d_k)), nn.Parameter(torch.randn(d_model, d_k))
            self.W_v = nn.Parameter(torch.randn(d_model, d_v))

        def forward(self, x, mask=None):
            q, k, v = x @ self.W_q, x @ self.W_k, x @ self.W_v
            if mistakes.get("swap_qk"):
                q, k = k, q
            if mistakes.get("v_is_x"):
                v = x
            if mistakes.get("v_from_w_k"):
                v = x @ self.W_k
            scale = {"none": 1.0, "d_k": q.shape[-1], "d_v": v.shape[-1] ** 0.5, "times": q.shape[-1] ** -0.5}.get(mistakes.get("scale"),
                                                                                     q.shape[-1] ** 0.5)
            scores = q @ k.transpose(-2, -1) / scale
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            w = torch.softmax(scores, dim=-1)
            return w @ v, w

    return SelfAttention


def _safe_attention_large_negative(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)  # an empty row becomes uniform, not zero
    w = torch.softmax(scores, dim=-1)
    return w @ v, w


def _merge_without_reshape(x):
    return x.transpose(1, 2)


DIAGNOSES = [
    (checks.check_softmax, lambda x, dim=-1: x.exp() / x.exp().sum(), r"you divided by the sum of all elements"),
    (checks.check_softmax, lambda x, dim=-1: torch.log_softmax(x, dim=dim), r"you returned log-softmax"),
    (checks.check_dot_product_attention,
     lambda q, k, v: (torch.softmax(q @ k.transpose(-2, -1), -1).transpose(-2, -1) @ v,
                      torch.softmax(q @ k.transpose(-2, -1), -1)), r"you transposed the weights"),
    (checks.check_merge_heads, _merge_without_reshape, r"you forgot the reshape: the result must be \(B, T, H \* d_head\)"),
    (checks.check_padding_mask, lambda tokens, pad_id: (tokens == 0)[:, None, None, :],
     r"case 'pad_id=0.*True must mean MAY attend"),
    (checks.check_feed_forward, type("FeedForward", (StudentFFN,), {"mistakes": {"relu_out": True}}),
     r"no activation after the second linear"),
    (checks.check_decoder_layer, student_decoder(no_src=True),
     r"case 'post-norm, causal tgt_mask and src padding mask'.*cross-attention ignores src_mask"),
    (checks.check_decoder_layer, student_decoder(own_causal=True),
     r"case 'post-norm, no masks.*your layer builds its own causal mask"),
    (checks.check_decoder_layer, student_decoder(norms_reversed=True), r"norm layers in the wrong order"),
    (checks.check_self_attention, _self_attention(scale="none"), r"scores not divided by sqrt\(d_k\).*Eq. \(1\), scaled"),
    (checks.check_self_attention, _self_attention(scale="d_k"), r"scores divided by d_k instead of sqrt\(d_k\)"),
    (checks.check_self_attention, _self_attention(scale="d_v"), r"case 'batched, d_v != d_k.*not sqrt\(d_v\)"),
    (checks.check_self_attention, _self_attention(scale="times"), r"multiplied by sqrt\(d_k\) instead of divided"),
    (checks.check_self_attention, _self_attention(swap_qk=True), r"queries and keys swapped"),
    (checks.check_self_attention, _self_attention(v_from_w_k=True), r"the values must be x @ W_v; you used W_k"),
    (checks.check_self_attention, _self_attention(v_is_x=True), r"the values must be x @ W_v; you used x itself"),
    (checks.check_safe_attention, _safe_attention_large_negative, r"case 'query 1 may attend to no key.*uniform"),
    (checks.check_safe_attention, make_attention(), r"case 'query 1 may attend to no key.*weights has nan or inf values: "
                                                    r"a query row whose mask allows no key must get zero weights"),
    (checks.check_safe_attention,
     lambda q, k, v, mask=None: tuple(t.nan_to_num(0.0) for t in make_attention()(q, k, v, mask)),
     r"case 'gradients through an empty row.*the gradient of out.sum\(\) with respect to v has nan"),
]


@pytest.mark.parametrize(("check", "student", "match"), DIAGNOSES, ids=lambda v: v if isinstance(v, str) else "")
def test_each_diagnosis_is_reached_by_its_mistake(check, student, match):
    with raises(match):
        check(student)


def test_a_result_on_another_device_is_compared_on_the_cpu(monkeypatch):
    """A student on a GPU may return a CUDA or MPS tensor: it is brought to the CPU, not crashed on."""
    from transformer_lib.checks import _core

    moved = []
    real_cpu = torch.Tensor.cpu

    class OnGPU(torch.Tensor):  # a CPU tensor that says it lives elsewhere, as a CUDA tensor would
        @property
        def device(self):
            return torch.device("cuda", 0)

        def cpu(self):
            moved.append(True)
            return real_cpu(self).as_subclass(torch.Tensor)

    result = (torch.ones(2).as_subclass(OnGPU), torch.zeros(2).as_subclass(OnGPU))
    out = _core.call(lambda: result)
    assert len(moved) == 2 and all(type(t) is torch.Tensor for t in out)
    with raises(r"your code returned a tensor on the 'meta' device"):
        checks.check_softmax(lambda x, dim=-1: torch.empty_like(x, device="meta"))


@pytest.mark.skipif(not (torch.cuda.is_available() or torch.backends.mps.is_available()), reason="needs a GPU")
def test_a_student_working_on_the_gpu_passes(capsys):  # pragma: no cover - runs where a GPU is
    device = "cuda" if torch.cuda.is_available() else "mps"
    checks.check_softmax(lambda x, dim=-1: torch.softmax(x.to(device), dim=dim))
    assert capsys.readouterr().out.strip() == "softmax: all 7 cases pass"
