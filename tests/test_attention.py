"""Tests of transformer_lib.attention: Eq. (1), masks, fully masked rows, parity with torch, errors."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from transformer_lib.attention import SelfAttention, dot_product_attention, scaled_dot_product_attention
from transformer_lib.masks import causal_mask, padding_mask

# The worked example of notebook 02: three inputs of four features, and the three projections.
X = torch.tensor([[1.0, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]])  # (T, d_model) = (3, 4)
W_KEY = torch.tensor([[0.0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]])  # (d_model, d_k) = (4, 3)
W_QUERY = torch.tensor([[1.0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]])  # (d_model, d_k)
W_VALUE = torch.tensor([[0.0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]])  # (d_model, d_v) = (4, 3)


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


def _masks_with_empty_rows(kind):
    if kind == "rows":
        mask = torch.rand(2, 3, 5, 7) > 0.3
        mask[..., 0] = True
        mask[0, 1, 2] = False  # one query row of one head
        mask[0, 2] = False  # every row of head 2 in batch 0
        mask[1] = False  # every head and every row of batch 1
        return mask
    tokens = torch.tensor([[4, 5, 6, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]])  # source 1 is all padding
    return padding_mask(tokens, pad_id=0)  # (2, 1, 1, 7)


@pytest.mark.skipif(torch.__version__ < "2.5", reason="F.scaled_dot_product_attention gives NaN there before 2.5")
@pytest.mark.parametrize("kind", ["rows", "padding"])
def test_fully_masked_rows_match_torch_sdpa_values_and_gradients(kind):
    """Since PyTorch 2.5 F.scaled_dot_product_attention zeroes fully masked rows too: same output, same gradients."""
    q, k, v = (t.requires_grad_() for t in qkv(d_v=4))
    mask = _masks_with_empty_rows(kind)
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(out, ref)
    assert (out[1] == 0).all()  # batch 1 has no allowed key anywhere
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad_out)
    for name, g, g_ref in zip("qkv", grads, ref_grads):
        assert torch.isfinite(g).all(), name
        assert_close(g, g_ref, msg=lambda m, name=name: f"gradient of {name}: {m}")
        assert (g[1] == 0).all(), name  # nothing flows through an empty row


# -- dropout on the weights ------------------------------------------------------------------------


def test_dropout_p_zero_is_deterministic_and_positive_drops_weights():
    q, k, v = qkv()
    out0, w0 = scaled_dot_product_attention(q, k, v, dropout_p=0.0)
    out1, w1 = scaled_dot_product_attention(q, k, v)
    assert torch.equal(out0, out1)
    out_d, wd = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    dropped = wd == 0
    assert dropped.any()
    assert_close(wd[~dropped], (w0 * 2)[~dropped])  # survivors are scaled by 1 / (1 - p)
    assert_close(out_d, wd @ v)  # the weights returned are the ones used


# -- scale ------------------------------------------------------------------------------------------


def test_scale_none_is_one_over_sqrt_d_k():
    q, k, v = qkv()
    out, weights = scaled_dot_product_attention(q, k, v)
    out_s, weights_s = scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(8))
    assert_close(out, out_s)
    assert_close(weights, weights_s)
    assert not torch.allclose(out, scaled_dot_product_attention(q, k, v, scale=1.0)[0])


@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_explicit_scale_matches_torch_sdpa(scale):
    q, k, v = qkv(d_v=4)
    out, _ = scaled_dot_product_attention(q, k, v, causal_mask(7)[:5], scale=scale)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(7)[:5], scale=scale))


def test_dot_product_attention_is_scale_one():
    q, k, v = qkv()
    out, weights = dot_product_attention(q, k, v)
    out1, weights1 = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert torch.equal(out, out1) and torch.equal(weights, weights1)


def test_the_public_function_body_is_eq_1():
    """show_source(scaled_dot_product_attention) shows Eq. (1) itself, not the door's wrapper or a private helper."""
    src = inspect.getsource(scaled_dot_product_attention)
    assert "def scaled_dot_product_attention(" in src
    assert "math.sqrt(q.shape[-1])" in src and "k.transpose(-2, -1)" in src and "softmax(scores" in src
    assert "weights @ v" in src


def test_checks_run_once_at_the_door(check_calls):
    """dot_product_attention checks q, k, v, then calls scaled_dot_product_attention, which does not re-check."""
    q, k, v = qkv()
    dot_product_attention(q, k, v)
    assert check_calls["check_tensor"] == 3 and check_calls["validate_mask"] == 1
    check_calls.clear()
    scaled_dot_product_attention(q, k, v)  # called directly: it checks
    assert check_calls["check_tensor"] == 3


# -- SelfAttention: the module version of notebook 02 ------------------------------------------------


def _worked_example_module():
    attn = SelfAttention(d_model=4, d_k=3)
    with torch.no_grad():
        attn.W_q.copy_(W_QUERY)
        attn.W_k.copy_(W_KEY)
        attn.W_v.copy_(W_VALUE)
    return attn


def test_self_attention_on_the_worked_example_of_notebook_02():
    out, weights = _worked_example_module()(X)
    Q = torch.tensor([[1.0, 0, 2], [2, 2, 2], [2, 1, 3]])  # X @ W_query, as in notebook 02
    K = torch.tensor([[0.0, 1, 1], [4, 4, 0], [2, 3, 1]])  # X @ W_key
    V = torch.tensor([[1.0, 2, 3], [2, 8, 0], [2, 6, 3]])  # X @ W_value
    expected = torch.softmax(Q @ K.T / math.sqrt(3), dim=-1)  # Eq. (1) with d_k = 3
    assert_close(weights, expected)
    assert_close(out, expected @ V)
    # query 1's scores are [2, 4, 4]; divided by sqrt(3) they give [0.136, 0.432, 0.432], not [0.06, 0.47, 0.47]
    assert_close(weights[0], torch.tensor([0.1361, 0.4319, 0.4319]), atol=1e-4, rtol=0)


def test_self_attention_is_eq_1_on_its_three_projections():
    """Random weights too: the worked example's Q K^T happens to be symmetric, so it cannot tell W_q from W_k."""
    attn = SelfAttention(d_model=6, d_k=4, d_v=5)
    x = torch.randn(2, 7, 6)
    q, k, v = x @ attn.W_q, x @ attn.W_k, x @ attn.W_v  # (2, 7, 4), (2, 7, 4), (2, 7, 5)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(4), dim=-1)  # (2, 7, 7)
    out, weights = attn(x)
    assert_close(weights, expected)
    assert_close(out, expected @ v)


def test_self_attention_worked_example_in_a_batch_with_a_mask():
    attn = _worked_example_module()
    out, weights = attn(torch.stack([X, X.flip(0)]), causal_mask(3))  # (2, 3, 4), mask (3, 3)
    assert out.shape == (2, 3, 3) and weights.shape == (2, 3, 3)
    assert (weights[:, 0, 1:] == 0).all()  # the first input sees only itself
    assert_close(out[:, 0], torch.stack([X[0], X[2]]) @ W_VALUE)  # ... so its output is its own value
    assert_close(out[0, 2], attn(X)[0][2])  # the last row sees everything: as without a mask


@pytest.mark.parametrize("lead", [(), (2,), (2, 3)])
def test_self_attention_shapes_and_parameters(lead):
    attn = SelfAttention(d_model=6, d_k=4, d_v=5)
    assert attn.W_q.shape == attn.W_k.shape == (6, 4) and attn.W_v.shape == (6, 5)
    assert SelfAttention(d_model=6, d_k=4).W_v.shape == (6, 4)  # d_v defaults to d_k
    out, weights = attn(torch.randn(*lead, 7, 6))
    assert out.shape == (*lead, 7, 5) and weights.shape == (*lead, 7, 7)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (attn.W_q, attn.W_k, attn.W_v))


def test_self_attention_errors():
    attn = SelfAttention(d_model=4, d_k=3)
    wrong_width = r"x must have shape \(\.\.\., T, d_model\) with d_model = 4; got shape \(3, 5\)"
    with pytest.raises(ValueError, match=wrong_width):
        attn(torch.randn(3, 5))
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        attn(torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"mask must be .*\(\.\.\., T, T\) = \(3, 3\); got shape \(4, 4\)"):
        attn(X, causal_mask(4))
    with pytest.raises(ValueError, match="d_k must be a positive int"):
        SelfAttention(d_model=4, d_k=0)


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


def test_bad_scale():
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"scale must be a float \(or None for 1/sqrt\(d_k\)\); got str"):
        scaled_dot_product_attention(q, k, v, scale="0.5")
