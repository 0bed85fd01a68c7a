"""The two paths of MultiHeadAttention agree: the explicit one (weights formed and returned) and the
fused one (``F.scaled_dot_product_attention``, fused Q/K/V projections), forward and gradients; layers and
models take the fused one whenever nobody keeps the weights."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from transformer_lib import multihead
from transformer_lib.layers import DecoderLayer, EncoderLayer
from transformer_lib.masks import causal_mask, padding_mask, to_torch_attn_mask
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.multihead import MultiHeadAttention, to_torch_multihead

B, T_q, T_k, D, H = 2, 5, 7, 16, 4


def _mask(kind: str, t_q: int, t_k: int) -> torch.Tensor | None:
    src = torch.tensor([[3, 4, 5, 6] + [0] * (t_k - 4), [3] * t_k])
    pad = padding_mask(src, 0)  # (B, 1, 1, T_k)
    causal = causal_mask(t_k)[:t_q]  # (T_q, T_k)
    if kind == "empty-row":  # query 2 of batch 1 may attend to nothing, in every head
        full = torch.ones(B, 1, t_q, t_k, dtype=torch.bool)
        full[1, :, 2] = False
        return full
    return {"none": None, "causal": causal, "padding": pad, "both": pad & causal}[kind]


def _inputs(role: str, dtype=torch.float64):
    x = torch.randn(B, T_q, D, dtype=dtype, requires_grad=True)
    if role == "self":  # query is key is value: one fused [W^Q; W^K; W^V] product
        return x, x, x, T_q
    mem = torch.randn(B, T_k, D, dtype=dtype, requires_grad=True)
    if role == "cross":  # key is value: one fused [W^K; W^V] product
        return x, mem, mem, T_k
    return x, mem, torch.randn(B, T_k, D, dtype=dtype, requires_grad=True), T_k  # three different tensors


def _run(mha, query, key, value, mask, need_weights):
    out, weights = mha(query, key, value, mask, need_weights=need_weights)
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum()  # not symmetric in outputs
    inputs = list({id(t): t for t in (query, key, value)}.values())
    grads = torch.autograd.grad(loss, inputs + list(mha.parameters()))
    return out, weights, grads


@pytest.mark.parametrize("role", ["self", "cross", "separate"])
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "both", "empty-row"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_path_equals_explicit_path_forward_and_gradients(role, kind, bias):
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, H, bias=bias).double()
    query, key, value, t_k = _inputs(role)
    if role == "self" and kind in ("padding", "both"):
        kind = "causal"  # a (T_q, T_q) self-attention: the padding masks here are built for T_k keys
    mask = _mask(kind, T_q, t_k)
    out, weights, grads = _run(mha, query, key, value, mask, need_weights=True)
    fast, none, fast_grads = _run(mha, query, key, value, mask, need_weights=False)
    assert weights.shape == (B, H, T_q, t_k) and none is None
    assert_close(fast, out)
    for got, want in zip(fast_grads, grads):
        assert_close(got, want)
    assert torch.isfinite(fast).all() and all(torch.isfinite(g).all() for g in fast_grads)


@pytest.mark.parametrize("kind", ["none", "causal", "padding", "both"])
def test_fused_path_matches_torch_multihead_attention(kind):
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, H).eval()
    theirs = to_torch_multihead(mha)
    query, key, value, t_k = _inputs("separate", dtype=torch.float32)
    mask = _mask(kind, T_q, t_k)
    attn_mask = None if mask is None else to_torch_attn_mask(mask, shape=(B, H, T_q, t_k))
    ours, _ = mha(query, key, value, mask, need_weights=False)
    their_out, _ = theirs(query, key, value, attn_mask=attn_mask, need_weights=False)
    assert_close(ours, their_out)
    g_ours = torch.autograd.grad(ours.sum(), (query, key, value))
    g_theirs = torch.autograd.grad(their_out.sum(), (query, key, value))
    for got, want in zip(g_ours, g_theirs):
        assert_close(got, want)


def test_fused_path_applies_dropout_in_training_only():
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, H, dropout=0.5)
    x = torch.randn(B, T_q, D)
    clean = mha.eval()(x, x, x, need_weights=False)[0]
    dropped = mha.train()(x, x, x, need_weights=False)[0]
    assert not torch.allclose(dropped, clean)  # training: attention dropout is on
    assert torch.equal(mha.eval()(x, x, x, need_weights=False)[0], clean)  # eval: deterministic


def test_need_weights_false_keeps_no_weights_and_is_validated():
    mha = MultiHeadAttention(D, H).eval()
    x = torch.randn(B, T_q, D)
    mha(x, x, x)
    assert mha.last_weights is not None
    mha(x, x, x, need_weights=False)
    assert mha.last_weights is None  # not the stale weights of an earlier call
    with pytest.raises(TypeError, match="need_weights must be True or False; got str 'no'"):
        mha(x, x, x, need_weights="no")
    with pytest.raises(TypeError, match="keep_weights must be None, True or False"):
        MultiHeadAttention(D, H, keep_weights="eval")


@pytest.fixture
def explicit_calls(monkeypatch):
    """Count calls of the explicit attention function inside MultiHeadAttention."""
    calls = []
    explicit = multihead.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return explicit(*args, **kwargs)

    monkeypatch.setattr(multihead, "scaled_dot_product_attention", spy)
    return calls


def test_layers_take_the_fused_path_unless_the_weights_are_kept(explicit_calls):
    enc, dec = EncoderLayer(D, H, 32), DecoderLayer(D, H, 32)
    x, mem = torch.randn(B, T_q, D), torch.randn(B, T_k, D)
    enc.train()(x), dec.train()(x, mem, tgt_mask=causal_mask(T_q))
    assert explicit_calls == []  # training: nobody keeps the weights
    enc.eval()(x), dec.eval()(x, mem, tgt_mask=causal_mask(T_q))
    assert len(explicit_calls) == 3  # eval: weights kept for plots (encoder self, decoder self and cross)
    assert dec.cross_attn.last_weights.shape == (B, H, T_q, T_k)
    for mha in (enc.self_attn, dec.self_attn, dec.cross_attn):
        mha.keep_weights = False
    enc(x), dec(x, mem, tgt_mask=causal_mask(T_q))
    assert len(explicit_calls) == 3 and dec.cross_attn.last_weights is None  # keep_weights=False: fused in eval too


@pytest.mark.parametrize("norm_first", [False, True])
def test_whole_model_is_the_same_on_both_paths(norm_first):
    torch.manual_seed(0)
    config = TransformerConfig.tiny(norm_first=norm_first)
    fused = Transformer(config).double()
    explicit = Transformer(config).double()
    explicit.load_state_dict(fused.state_dict())
    for module in explicit.modules():
        if isinstance(module, MultiHeadAttention):
            module.keep_weights = True  # forms and keeps the weights: the explicit path everywhere
    src = torch.tensor([[5, 6, 7, 8, 0, 0], [5, 6, 7, 8, 9, 10]])
    tgt = torch.tensor([[1, 5, 6, 0], [1, 7, 8, 9]])
    results = []
    for model in (fused, explicit):
        logits = model(src, tgt)  # (B, T, V)
        loss = logits.log_softmax(-1)[..., 3].sum()
        results.append((logits, torch.autograd.grad(loss, list(model.parameters()))))
    assert_close(results[0][0], results[1][0])
    for got, want in zip(results[0][1], results[1][1]):
        assert_close(got, want)


def test_fused_projection_is_one_product_in_self_attention(monkeypatch):
    """Self-attention multiplies by [W^Q; W^K; W^V] once; cross-attention by W^Q and [W^K; W^V]."""
    shapes = []
    linear = nn.functional.linear

    def spy(x, weight, bias=None):
        shapes.append(tuple(weight.shape))
        return linear(x, weight, bias)

    monkeypatch.setattr(multihead.F, "linear", spy)
    mha = MultiHeadAttention(D, H)
    x, mem = torch.randn(B, T_q, D), torch.randn(B, T_k, D)
    mha(x, x, x, need_weights=False)
    assert (3 * D, D) in shapes
    shapes.clear()
    mha(x, mem, mem, need_weights=False)
    assert (2 * D, D) in shapes
