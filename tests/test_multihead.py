"""Tests of transformer_lib.multihead: split/merge, MultiHeadAttention, parity with nn.MultiheadAttention."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from transformer_lib.masks import causal_mask, padding_mask, to_torch_attn_mask
from transformer_lib.multihead import MultiHeadAttention, merge_heads, split_heads, to_torch_multihead

B, T_q, T_k, D, H = 2, 5, 7, 16, 4


def test_split_heads_shape_and_layout():
    x = torch.randn(B, T_q, D)
    heads = split_heads(x, H)
    assert heads.shape == (B, H, T_q, D // H)
    for h in range(H):  # head h holds dims h*d_head .. (h+1)*d_head of every position
        assert torch.equal(heads[:, h], x[..., h * 4: (h + 1) * 4])


def test_merge_heads_inverts_split_heads():
    x = torch.randn(B, T_q, D)
    assert torch.equal(merge_heads(split_heads(x, H)), x)
    y = torch.randn(B, H, T_q, 3)
    assert merge_heads(y).shape == (B, T_q, H * 3)
    assert torch.equal(split_heads(merge_heads(y), H), y)


def test_split_merge_errors():
    with pytest.raises(ValueError, match=r"n_heads must divide d_model.*d_model=16, n_heads=3"):
        split_heads(torch.randn(B, T_q, D), 3)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model\)"):
        split_heads(torch.randn(T_q, D), H)
    with pytest.raises(ValueError, match=r"x must have shape \(B, H, T, d_head\)"):
        merge_heads(torch.randn(B, T_q, D))


def test_mha_shapes_self_and_cross_attention():
    mha = MultiHeadAttention(D, H)
    x, mem = torch.randn(B, T_q, D), torch.randn(B, T_k, D)
    out, weights = mha(x, mem, mem)
    assert out.shape == (B, T_q, D) and weights.shape == (B, H, T_q, T_k)
    assert mha(x, x, x)[1].shape == (B, H, T_q, T_q)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert isinstance(getattr(mha, name), nn.Linear)
    assert mha.d_head == 4


def test_last_weights_kept_in_eval_mode_only_unless_asked():
    x, mem = torch.randn(B, T_q, D), torch.randn(B, T_k, D)
    mha = MultiHeadAttention(D, H)
    assert mha.last_weights is None
    _, weights = mha.eval()(x, mem, mem)
    assert torch.equal(mha.last_weights, weights)  # eval mode: kept, for plots
    assert not mha.last_weights.requires_grad
    mha.train()(x, mem, mem)
    assert mha.last_weights is None  # a training step does not hold on to them (not even the old ones)
    keep = MultiHeadAttention(D, H, dropout=0.5, keep_weights=True).train()
    _, weights = keep(x, mem, mem)
    assert torch.equal(keep.last_weights, weights.detach()) and not keep.last_weights.requires_grad
    assert (keep.last_weights == 0).any()  # the weights actually used, after dropout


def test_mha_without_bias():
    mha = MultiHeadAttention(D, H, bias=False)
    assert all(getattr(mha, n).bias is None for n in ("q_proj", "k_proj", "v_proj", "out_proj"))
    x = torch.randn(B, T_q, D)
    assert mha(x, x, x)[0].shape == (B, T_q, D)


def _masks():
    src = torch.tensor([[3, 4, 5, 6, 0, 0, 0], [3, 4, 5, 6, 7, 8, 9]])
    pad = padding_mask(src, 0)  # (B, 1, 1, T_k)
    causal = causal_mask(T_k)[:T_q]  # (T_q, T_k)
    return {"none": None, "causal": causal, "padding": pad, "both": pad & causal}


@pytest.mark.parametrize("kind", ["none", "causal", "padding", "both"])
def test_parity_with_nn_multihead_attention(kind, copy_mha):
    ref = nn.MultiheadAttention(D, H, batch_first=True).eval()
    mha = MultiHeadAttention(D, H).eval()
    copy_mha(mha, ref)
    query, key, value = torch.randn(B, T_q, D), torch.randn(B, T_k, D), torch.randn(B, T_k, D)
    mask = _masks()[kind]
    if mask is None:
        attn_mask = None
    elif mask.ndim == 2:
        attn_mask = to_torch_attn_mask(mask)  # (T_q, T_k), True = NOT allowed
    else:
        attn_mask = to_torch_attn_mask(mask, shape=(B, H, T_q, T_k))  # (B * H, T_q, T_k)
    out, weights = mha(query, key, value, mask)
    ref_out, ref_weights = ref(query, key, value, attn_mask=attn_mask, average_attn_weights=False)
    assert_close(out, ref_out)
    assert_close(weights, ref_weights)  # per head (B, H, T_q, T_k)
    _, ref_avg = ref(query, key, value, attn_mask=attn_mask)  # averaged over heads
    assert_close(weights.mean(dim=1), ref_avg)


def test_fully_masked_row_in_mha_gives_zero_weights_and_bias_output():
    mha = MultiHeadAttention(D, H)
    x = torch.randn(B, T_q, D, requires_grad=True)
    mask = torch.ones(B, 1, T_q, T_q, dtype=torch.bool)
    mask[1, :, 3] = False  # query 3 of batch 1 sees nothing, in every head
    out, weights = mha(x, x, x, mask)
    assert not torch.isnan(out).any()
    assert (weights[1, :, 3] == 0).all()
    assert_close(out[1, 3], mha.out_proj.bias.detach())  # attention output 0, then W^O 0 + b^O
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mha.parameters())


def test_dropout_only_in_training_mode():
    mha = MultiHeadAttention(D, H, dropout=0.5)
    x = torch.randn(B, T_q, D)
    _, w_train = mha(x, x, x)
    assert (w_train == 0).any()
    mha.eval()
    out1, w1 = mha(x, x, x)
    out2, w2 = mha(x, x, x)
    assert torch.equal(out1, out2) and (w1 > 0).all()


def test_mha_errors():
    with pytest.raises(ValueError, match=r"n_heads must divide d_model.*d_model=10, n_heads=4"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(D, H, dropout=1.5)
    mha = MultiHeadAttention(D, H)
    x, mem = torch.randn(B, T_q, D), torch.randn(B, T_k, D)
    with pytest.raises(ValueError, match=r"query must have shape \(B, T_q, d_model\) with d_model = 16"):
        mha(torch.randn(B, T_q, 8), mem, mem)
    with pytest.raises(ValueError, match=r"query must have shape \(B, T_q, d_model\) \(3 dims\)"):
        mha(torch.randn(T_q, D), mem, mem)
    with pytest.raises(ValueError, match=r"key and value must have the same shape"):
        mha(x, mem, mem[:, :-1])
    with pytest.raises(ValueError, match=r"same batch size B"):
        mha(x, mem[:1], mem[:1])
    with pytest.raises(TypeError, match=r"value must be a floating-point tensor"):
        mha(x, mem, mem.long())
    with pytest.raises(ValueError, match=r"mask must be .*\(B, H, T_q, T_k\) = \(2, 4, 5, 7\); got shape \(5, 5\)"):
        mha(x, mem, mem, causal_mask(T_q))
    with pytest.raises(TypeError, match=r"mask must be a bool tensor.*additive_mask == 0"):
        mha(x, mem, mem, torch.zeros(T_q, T_k))


def test_mha_checks_at_the_door_only(check_calls):
    """Called directly, MultiHeadAttention checks its input once; split_heads and the attention inside do not."""
    mha = MultiHeadAttention(D, H)
    x, mem, mask = torch.randn(B, T_q, D), torch.randn(B, T_k, D), causal_mask(T_k)[:T_q]
    check_calls.clear()
    mha(x, mem, mem, mask)
    assert check_calls["check_tensor"] == 3  # query, key, value
    assert check_calls["validate_mask"] == 1


# ------------------------------------------------------------------------------------ to_torch_multihead
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "both"])
@pytest.mark.parametrize("bias", [True, False])
def test_to_torch_multihead_gives_the_same_outputs_and_weights(kind, bias):
    mha = MultiHeadAttention(D, H, bias=bias).eval()
    theirs = to_torch_multihead(mha)
    assert isinstance(theirs, nn.MultiheadAttention) and theirs.batch_first and not theirs.training
    assert (theirs.in_proj_bias is None) == (not bias)
    query, key, value = torch.randn(B, T_q, D), torch.randn(B, T_k, D), torch.randn(B, T_k, D)
    mask = _masks()[kind]
    attn_mask = None if mask is None else to_torch_attn_mask(mask, shape=(B, H, T_q, T_k))
    out, weights = mha(query, key, value, mask)
    their_out, their_weights = theirs(query, key, value, attn_mask=attn_mask, average_attn_weights=False)
    assert_close(their_out, out)
    assert_close(their_weights, weights)


def test_to_torch_multihead_copies_and_round_trips(copy_mha):
    mha = MultiHeadAttention(D, H, dropout=0.1).train()
    theirs = to_torch_multihead(mha)
    assert theirs.training and theirs.dropout == 0.1 and theirs.num_heads == H and theirs.embed_dim == D
    back = MultiHeadAttention(D, H)
    copy_mha(back, theirs)  # the tests' own copy in the other direction
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), mha.state_dict().values()))
    with torch.no_grad():
        theirs.in_proj_weight.zero_()  # a copy: changing it leaves ours alone
    assert mha.q_proj.weight.abs().sum() > 0
    x = torch.randn(B, T_q, D)
    theirs.eval()(x, x, x)[0].sum().backward()
    assert all(p.grad is not None for p in theirs.parameters())  # trainable in its own right


def test_to_torch_multihead_keeps_dtype():
    mha = MultiHeadAttention(D, H).double().eval()
    theirs = to_torch_multihead(mha)
    x = torch.randn(B, T_q, D, dtype=torch.float64)
    assert theirs.in_proj_weight.dtype == torch.float64
    assert_close(theirs(x, x, x)[0], mha(x, x, x)[0])


def test_to_torch_multihead_errors():
    with pytest.raises(TypeError, match=r"mha must be a MultiHeadAttention with nn.Linear attributes q_proj, .*got Linear"):
        to_torch_multihead(nn.Linear(D, D))
    no_heads = MultiHeadAttention(D, H)
    del no_heads.n_heads
    with pytest.raises(TypeError, match=r"mha must have an attribute n_heads"):
        to_torch_multihead(no_heads)
    mixed = MultiHeadAttention(D, H)
    mixed.out_proj = nn.Linear(D, D, bias=False)
    with pytest.raises(ValueError, match=r"all with or all without a bias; got .*out_proj \(16, 16\) no bias"):
        to_torch_multihead(mixed)
