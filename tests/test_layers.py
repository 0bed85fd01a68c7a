"""Tests of transformer_lib.layers: FeedForward, EncoderLayer, DecoderLayer; parity with torch's layers."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from transformer_lib.layers import DecoderLayer, EncoderLayer, FeedForward
from transformer_lib.masks import causal_mask, padding_mask, to_torch_attn_mask

B, S, T, D, H, D_FF = 2, 7, 5, 16, 4, 32
SRC = torch.tensor([[3, 4, 5, 6, 0, 0, 0], [3, 4, 5, 6, 7, 8, 9]])  # (B, S) with padding


def test_feed_forward_is_eq_2():
    ff = FeedForward(D, D_FF)
    x = torch.randn(B, T, D)
    out = ff(x)
    assert out.shape == (B, T, D)
    assert_close(out, ff.linear2(torch.relu(ff.linear1(x))))  # max(0, x W1 + b1) W2 + b2
    assert ff.linear1.weight.shape == (D_FF, D) and ff.linear2.weight.shape == (D, D_FF)


def test_feed_forward_is_position_wise():
    ff = FeedForward(D, D_FF)
    x = torch.randn(B, T, D)
    x2 = x.clone()
    x2[:, 3] += 1.0
    out, out2 = ff(x), ff(x2)
    assert_close(out[:, :3], out2[:, :3])
    assert_close(out[:, 4:], out2[:, 4:])
    assert not torch.allclose(out[:, 3], out2[:, 3])


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_encoder_layer_parity_with_torch(norm_first, with_mask, copy_layer):
    ref = nn.TransformerEncoderLayer(D, H, D_FF, dropout=0.1, activation="relu", batch_first=True,
                                     norm_first=norm_first).eval()
    ours = EncoderLayer(D, H, D_FF, dropout=0.1, norm_first=norm_first).eval()
    copy_layer(ours, ref)
    x = torch.randn(B, S, D)
    mask = padding_mask(SRC, 0) if with_mask else None  # (B, 1, 1, S)
    ref_mask = to_torch_attn_mask(mask, shape=(B, H, S, S)) if with_mask else None  # (B * H, S, S)
    expected = ref(x, src_mask=ref_mask)
    out = ours(x, mask)
    assert_close(out, expected)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_parity_with_torch(norm_first, copy_layer):
    ref = nn.TransformerDecoderLayer(D, H, D_FF, dropout=0.1, activation="relu", batch_first=True,
                                     norm_first=norm_first).eval()
    ours = DecoderLayer(D, H, D_FF, dropout=0.1, norm_first=norm_first).eval()
    copy_layer(ours, ref)
    x, memory = torch.randn(B, T, D), torch.randn(B, S, D)
    tgt_mask = causal_mask(T)  # (T, T)
    src_mask = padding_mask(SRC, 0)  # (B, 1, 1, S)
    expected = ref(x, memory, tgt_mask=to_torch_attn_mask(tgt_mask),
                   memory_mask=to_torch_attn_mask(src_mask, shape=(B, H, T, S)))
    assert_close(ours(x, memory, src_mask=src_mask, tgt_mask=tgt_mask), expected)
    assert ours.self_attn.last_weights.shape == (B, H, T, T)
    assert ours.cross_attn.last_weights.shape == (B, H, T, S)
    assert (ours.cross_attn.last_weights[0, :, :, 4:] == 0).all()  # padding never attended


def test_post_norm_output_is_normalised_pre_norm_is_not():
    x = 5 * torch.randn(B, S, D) + 3
    post = EncoderLayer(D, H, D_FF)(x)
    assert_close(post.mean(-1), torch.zeros(B, S), atol=1e-5, rtol=0)  # LayerNorm is the last op
    assert_close(post.std(-1, unbiased=False), torch.ones(B, S), atol=1e-3, rtol=0)
    pre = EncoderLayer(D, H, D_FF, norm_first=True)(x)
    assert pre.mean(-1).abs().max() > 0.5  # residual stream keeps the input's offset


def test_residual_connection_is_there():
    """With both sub-layers zeroed, pre-norm is the identity and post-norm is LayerNorm(x)."""
    for norm_first in (False, True):
        layer = EncoderLayer(D, H, D_FF, norm_first=norm_first)
        with torch.no_grad():
            layer.self_attn.out_proj.weight.zero_()
            layer.self_attn.out_proj.bias.zero_()
            layer.feed_forward.linear2.weight.zero_()
            layer.feed_forward.linear2.bias.zero_()
        x = torch.randn(B, S, D)
        expected = x if norm_first else layer.norm2(layer.norm1(x))
        assert_close(layer(x), expected)


def test_dropout_only_in_training():
    layer = EncoderLayer(D, H, D_FF, dropout=0.5)
    x = torch.randn(B, S, D)
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    assert torch.equal(layer(x), layer(x))


def test_layer_errors():
    enc, dec = EncoderLayer(D, H, D_FF), DecoderLayer(D, H, D_FF)
    x, memory = torch.randn(B, T, D), torch.randn(B, S, D)
    with pytest.raises(ValueError, match=r"x must have shape \(B, S, d_model\) with d_model = 16"):
        enc(torch.randn(B, S, 8))
    with pytest.raises(ValueError, match=r"mask must be .*\(B, H, S, S\) = \(2, 4, 5, 5\)"):
        enc(x, torch.ones(B, 1, 1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"memory must have shape \(B, S, d_model\) with B = 2"):
        dec(x, memory[:1])
    with pytest.raises(ValueError, match=r"memory must have shape \(B, S, d_model\) with d_model = 16"):
        dec(x, torch.randn(B, S, 8))
    with pytest.raises(ValueError, match=r"tgt_mask must be .*\(B, H, T, T\) = \(2, 4, 5, 5\)"):
        dec(x, memory, tgt_mask=causal_mask(S))
    with pytest.raises(ValueError, match=r"src_mask must be .*\(B, H, T, S\) = \(2, 4, 5, 7\)"):
        dec(x, memory, src_mask=padding_mask(SRC[:, :4], 0))
    with pytest.raises(TypeError, match=r"tgt_mask must be a bool tensor"):
        dec(x, memory, tgt_mask=causal_mask(T).float())
    with pytest.raises(ValueError, match="n_heads must divide d_model"):
        EncoderLayer(D, 3, D_FF)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        FeedForward(D, D_FF)([1.0] * D)


def test_a_float_mask_given_to_a_layer_directly_is_caught_at_its_door():
    enc = EncoderLayer(D, H, D_FF)
    additive = torch.zeros(S, S).masked_fill(~causal_mask(S), float("-inf"))
    with pytest.raises(TypeError, match=r"mask must be a bool tensor .*\(B, H, S, S\) = \(2, 4, 7, 7\).*additive_mask"):
        enc(torch.randn(B, S, D), additive)


@pytest.mark.parametrize("norm_first", [False, True])
def test_layers_check_at_the_door_only(norm_first, check_calls):
    """A layer called directly checks its input once; its attention modules and feed-forward do not re-check."""
    enc, dec = EncoderLayer(D, H, D_FF, norm_first=norm_first), DecoderLayer(D, H, D_FF, norm_first=norm_first)
    x, memory = torch.randn(B, T, D), torch.randn(B, S, D)
    src_mask, tgt_mask = padding_mask(SRC, 0), causal_mask(T)
    check_calls.clear()
    enc(memory, src_mask)
    assert check_calls["check_tensor"] == 1 and check_calls["validate_mask"] == 1  # x and mask, nothing inside
    check_calls.clear()
    dec(x, memory, src_mask=src_mask, tgt_mask=tgt_mask)
    assert check_calls["check_tensor"] == 2 and check_calls["validate_mask"] == 2  # x, memory; the two masks
