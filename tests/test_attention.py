"""Tests of transformer_lib.attention: Eq. (1), masks, fully masked rows, parity with torch, errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from transformer_lib.attention import dot_product_attention, scaled_dot_product_attention
from transformer_lib.masks import causal_mask, padding_mask


def qkv(B=2, H=3, T_q=5, T_k=7, d_k=8, d_v=8):
    return torch.randn(B, H, T_q, d_k), torch.randn(B, H, T_k, d_k), torch.randn(B, H, T_k, d_v)


@pytest.mark.parametrize("lead", [(), (2,), (2, 3)])
def test_shapes_any_leading_dims(lead):
    q, k, v = torch.randn(*lead, 5, 8), torch.randn(*lead, 7, 8), torch.randn(*lead, 7, 8)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (*lead, 5, 8)
    assert weights.shape == (*lead, 5, 7)


def test_d_v_may_differ_from_d_k():
    q, k, v = qkv(d_k=8, d_v=3)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 3)
    assert weights.shape == (2, 3, 5, 7)


def test_weights_are_a_distribution_and_out_is_their_average_of_v():
    q, k, v = qkv()
    out, weights = scaled_dot_product_attention(q, k, v)
    assert (weights >= 0).all()
    assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    assert_close(out, weights @ v)


def test_matches_eq_1_written_out():
    q, k, v = qkv()
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1) @ v  # Eq. (1)
    assert_close(scaled_dot_product_attention(q, k, v)[0], expected)


def test_broadcasts_leading_dims_of_q_against_k():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(1, 3, 7, 8), torch.randn(1, 3, 7, 4)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 4) and weights.shape == (2, 3, 5, 7)


def _parity_mask(kind):
    if kind == "none":
        return None
    if kind == "padding":
        tokens = torch.tensor([[4, 5, 6, 0, 0, 0, 0], [4, 5, 6, 7, 8, 9, 1]])
        return padding_mask(tokens, pad_id=0)  # (2, 1, 1, 7)
    if kind == "causal":
        return causal_mask(7)[:5]  # (5, 7)
    return torch.rand(2, 3, 5, 7) > 0.3  # arbitrary, full shape


@pytest.mark.parametrize("kind", ["none", "padding", "causal", "random"])
def test_parity_with_torch_sdpa(kind):
    """F.scaled_dot_product_attention uses the same bool convention: True = may attend."""
    q, k, v = qkv(d_v=4)
    mask = _parity_mask(kind)
    if mask is not None and kind == "random":
        mask[..., 0] = True  # no fully masked rows here (tested separately)
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_masked_keys_get_exactly_zero_weight_and_do_not_influence_out():
    q, k, v = qkv()
    mask = torch.ones(7, dtype=torch.bool)
    mask[4:] = False  # (T_k,) broadcasts
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert (weights[..., 4:] == 0).all()
    k2, v2 = k.clone(), v.clone()
    k2[..., 4:, :] = 1e4  # huge scores on masked keys must change nothing
    v2[..., 4:, :] = 1e4
    out2, _ = scaled_dot_product_attention(q, k2, v2, mask)
    assert_close(out, out2)


def test_dot_product_attention_is_unscaled():
    q, k, v = qkv()
    out, weights = dot_product_attention(q, k, v)
    assert_close(weights, torch.softmax(q @ k.transpose(-2, -1), dim=-1))
    assert_close(out, weights @ v)
    scaled_out, _ = scaled_dot_product_attention(q, k, v)
    assert_close(scaled_out, dot_product_attention(q / math.sqrt(8), k, v)[0])


def test_dot_product_attention_worked_example_of_notebook_02():
    x = torch.tensor([[1.0, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]])
    out, weights = dot_product_attention(x, x, x)
    # scores x x^T = [[2, 0, 2], [0, 8, 4], [2, 4, 4]]; row 3 is softmax([2, 4, 4])
    assert_close(weights[2], torch.softmax(torch.tensor([2.0, 4, 4]), 0))
    assert_close(weights[2, 1], weights[2, 2])
    assert weights[2, 0] < 0.07


# -- fully masked rows: documented behaviour = zero weights, zero output, no NaN ------------------


@pytest.mark.parametrize("fn", [scaled_dot_product_attention, dot_product_attention])
def test_fully_masked_row_gives_zeros_not_nan(fn):
    q, k, v = qkv()
    mask = torch.ones(2, 3, 5, 7, dtype=torch.bool)
    mask[0, 1, 2] = False  # query 2 of head 1, batch 0: no key allowed
    q.requires_grad_(True)
    out, weights = fn(q, k, v, mask)
    assert not torch.isnan(out).any() and not torch.isnan(weights).any()
    assert (weights[0, 1, 2] == 0).all()
    assert (out[0, 1, 2] == 0).all()
    # the other rows are untouched: still distributions
    assert_close(weights[1].sum(-1), torch.ones(3, 5))
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    assert (q.grad[0, 1, 2] == 0).all()


def test_plain_masked_softmax_would_give_nan_there():
    """Why the special case exists: softmax over a row of -inf is 0/0."""
    assert torch.isnan(torch.softmax(torch.full((3,), float("-inf")), dim=-1)).all()


# -- dropout on the weights ------------------------------------------------------------------------


def test_dropout_p_zero_is_deterministic_and_positive_drops_weights():
    q, k, v = qkv()
    out0, w0 = scaled_dot_product_attention(q, k, v, dropout_p=0.0)
    out1, w1 = scaled_dot_product_attention(q, k, v)
    assert torch.equal(out0, out1)
    _, wd = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    dropped = wd == 0
    assert dropped.any()
    assert_close(wd[~dropped], (w0 * 2)[~dropped])  # survivors are scaled by 1 / (1 - p)


# -- clear errors -----------------------------------------------------------------------------------


def test_float_additive_mask_is_rejected_with_a_hint():
    q, k, v = qkv()
    additive = torch.zeros(5, 7).masked_fill(~causal_mask(7)[:5], float("-inf"))
    with pytest.raises(TypeError, match=r"mask must be a bool tensor .*\(2, 3, 5, 7\).*additive_mask == 0"):
        scaled_dot_product_attention(q, k, v, additive)


def test_float_zero_one_mask_gets_both_hints():
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"additive_mask == 0.*0/1 mask \(1 = may attend\), use `mask\.bool\(\)`"):
        scaled_dot_product_attention(q, k, v, causal_mask(7)[:5].float())


def test_int_mask_is_rejected_with_a_hint():
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"mask must be a bool tensor.*mask\.bool\(\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(5, 7, dtype=torch.long))


@pytest.mark.parametrize("shape", [(5, 6), (2, 3, 4, 7), (1, 2, 3, 5, 7), (3, 1, 1, 7)])
def test_mask_of_wrong_size_is_rejected(shape):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"mask must be a bool tensor .*broadcastable to \(\.\.\., T_q, T_k\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(shape, dtype=torch.bool))


def test_q_k_d_k_mismatch():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"q .* and k .* same last dim d_k"):
        scaled_dot_product_attention(q, k[..., :4], v)


def test_k_v_length_mismatch():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"k .* and v .*same T_k"):
        scaled_dot_product_attention(q, k, v[..., :6, :])


def test_wrong_ndim_and_dtype():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., T_q, d_k\)"):
        scaled_dot_product_attention(torch.randn(8), k, v)
    with pytest.raises(TypeError, match=r"k must be a floating-point tensor"):
        scaled_dot_product_attention(q, k.long(), v)
    with pytest.raises(TypeError, match=r"v must be a torch.Tensor"):
        scaled_dot_product_attention(q, k, v.tolist())


def test_incompatible_batch_dims():
    with pytest.raises(ValueError, match="broadcastable"):
        scaled_dot_product_attention(torch.randn(2, 5, 8), torch.randn(3, 7, 8), torch.randn(3, 7, 8))


@pytest.mark.parametrize("p", [-0.1, 1.0, "0.1"])
def test_bad_dropout_p(p):
    q, k, v = qkv()
    with pytest.raises((ValueError, TypeError), match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=p)
