"""Tests of transformer_lib.masks: values, shapes, combining (decoder_mask), the torch adapter, errors."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from transformer_lib.attention import scaled_dot_product_attention
from transformer_lib.masks import causal_mask, decoder_mask, padding_mask, to_torch_attn_mask, validate_mask
from transformer_lib.multihead import MultiHeadAttention


def test_padding_mask_values_and_shape():
    tokens = torch.tensor([[5, 6, 0, 0], [7, 0, 8, 9]])
    mask = padding_mask(tokens, pad_id=0)
    assert mask.shape == (2, 1, 1, 4) and mask.dtype == torch.bool
    assert mask[:, 0, 0].tolist() == [[True, True, False, False], [True, False, True, True]]


def test_padding_mask_other_pad_id():
    assert padding_mask(torch.tensor([[3, 1, 1]]), pad_id=1)[0, 0, 0].tolist() == [True, False, False]


def test_causal_mask_includes_the_diagonal():
    mask = causal_mask(4)
    assert mask.shape == (4, 4) and mask.dtype == torch.bool
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert causal_mask(1).tolist() == [[True]]


def test_causal_mask_device():
    assert causal_mask(3, device="cpu").device.type == "cpu"
    assert causal_mask(3, device=torch.device("meta")).device.type == "meta"


def test_combined_mask_shape_and_values():
    tgt = torch.tensor([[5, 6, 0], [7, 8, 9]])
    mask = padding_mask(tgt, 0) & causal_mask(3)  # (2, 1, 1, 3) & (3, 3)
    assert mask.shape == (2, 1, 3, 3)
    assert mask[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert torch.equal(mask[1, 0], causal_mask(3))


def test_causal_mask_hides_the_future_in_attention():
    q, k, v = torch.randn(1, 6, 4), torch.randn(1, 6, 4), torch.randn(1, 6, 4)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(6))
    v2 = v.clone()
    v2[:, 4:] += 10.0  # change the "future" positions 4, 5
    k2 = k.clone()
    k2[:, 4:] -= 3.0
    out2, _ = scaled_dot_product_attention(q, k2, v2, causal_mask(6))
    assert_close(out[:, :4], out2[:, :4])  # positions 0..3 cannot see 4, 5
    assert not torch.allclose(out[:, 4:], out2[:, 4:])
    assert torch.equal(weights[0] > 0, causal_mask(6))


def test_to_torch_attn_mask_flips_polarity_2d():
    mask = causal_mask(3)
    assert torch.equal(to_torch_attn_mask(mask), ~mask)


def test_to_torch_attn_mask_4d_expands_to_batch_times_heads():
    tokens = torch.tensor([[5, 0], [6, 7]])
    flipped = to_torch_attn_mask(padding_mask(tokens, 0), shape=(2, 3, 4, 2))
    assert flipped.shape == (6, 4, 2)
    assert flipped[:3].eq(torch.tensor([False, True])).all()  # batch 0, all 3 heads: key 1 is padding
    assert not flipped[3:].any()  # batch 1 has no padding


def test_to_torch_attn_mask_errors():
    with pytest.raises(ValueError, match=r"pass shape=\(B, H, T_q, T_k\)"):
        to_torch_attn_mask(torch.ones(2, 1, 1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape must be \(B, H, T_q, T_k\)"):
        to_torch_attn_mask(torch.ones(3, 3, dtype=torch.bool), shape=(3, 3))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        to_torch_attn_mask(torch.zeros(3, 3))


def test_validate_mask_accepts_broadcastable_and_none():
    shape = (2, 4, 5, 7)
    assert validate_mask(None, shape) is None
    for s in [(7,), (5, 7), (1, 7), (2, 1, 1, 7), (2, 4, 5, 7), (1, 1, 5, 1)]:
        m = torch.ones(s, dtype=torch.bool)
        assert validate_mask(m, shape) is m


def test_validate_mask_message_names_argument_and_expected_shape():
    with pytest.raises(ValueError) as err:
        validate_mask(torch.ones(2, 1, 1, 6, dtype=torch.bool), (2, 4, 5, 7), name="src_mask", dims="(B, H, T, S)")
    msg = str(err.value)
    assert "src_mask" in msg and "(B, H, T, S) = (2, 4, 5, 7)" in msg and "(2, 1, 1, 6)" in msg


def test_padding_mask_errors():
    with pytest.raises(TypeError, match=r"tokens must be an integer tensor of shape \(B, T\)"):
        padding_mask(torch.zeros(2, 3), 0)
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, T\)"):
        padding_mask(torch.tensor([1, 2, 0]), 0)
    with pytest.raises(TypeError, match="pad_id must be an int"):
        padding_mask(torch.tensor([[1, 2, 0]]), 0.0)


@pytest.mark.parametrize("size", [0, -1, 2.0, True])
def test_causal_mask_errors(size):
    with pytest.raises((ValueError, TypeError), match="size must be a positive int"):
        causal_mask(size)


# -- decoder_mask: padding & causal ------------------------------------------------------------------------


def test_decoder_mask_is_padding_and_causal():
    tgt = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 4]])
    mask = decoder_mask(tgt, pad_id=0)
    assert mask.shape == (2, 1, 4, 4) and mask.dtype == torch.bool
    assert torch.equal(mask, padding_mask(tgt, 0) & causal_mask(4))
    assert mask[0, 0].int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]  # pad rows keep a key
    assert torch.equal(mask[1, 0], causal_mask(4))


def test_decoder_mask_left_padding_leaves_rows_with_no_key():
    mask = decoder_mask(torch.tensor([[0, 0, 5, 6]]), pad_id=0)  # (1, 1, 4, 4)
    assert (~mask.any(dim=-1))[0, 0].tolist() == [True, True, False, False]


def test_decoder_mask_other_pad_id_and_device():
    assert decoder_mask(torch.tensor([[0, 3, 3]]), pad_id=3)[0, 0].int().tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 0]]
    assert decoder_mask(torch.zeros(2, 3, dtype=torch.long, device="meta"), 0).device.type == "meta"


def test_decoder_mask_errors():
    with pytest.raises(TypeError, match=r"tgt must be an integer tensor of shape \(B, T\)"):
        decoder_mask(torch.zeros(2, 3), 0)
    with pytest.raises(ValueError, match=r"tgt must have shape \(B, T\)"):
        decoder_mask(torch.tensor([1, 2, 0]), 0)
    with pytest.raises(TypeError, match="pad_id must be an int"):
        decoder_mask(torch.tensor([[1, 2, 0]]), None)


# -- to_torch_attn_mask: batch-major layout, parity with nn.MultiheadAttention ---------------------------


def test_to_torch_attn_mask_is_batch_major():
    mask = decoder_mask(torch.tensor([[5, 6, 0], [7, 8, 9]]), 0)  # (2, 1, 3, 3): the two sequences differ
    flipped = to_torch_attn_mask(mask, shape=(2, 4, 3, 3))  # (8, 3, 3)
    for b in range(2):
        for h in range(4):
            assert torch.equal(flipped[b * 4 + h], ~mask[b, 0])  # row b * H + h: sequence b, head h


def test_to_torch_attn_mask_gives_parity_with_nn_multihead_attention(copy_mha):
    B, H, T, D = 2, 2, 5, 8
    mask = decoder_mask(torch.tensor([[5, 6, 7, 0, 0], [4, 5, 6, 7, 8]]), 0)  # (B, 1, T, T), no empty row
    ref = nn.MultiheadAttention(D, H, batch_first=True).eval()
    mha = MultiHeadAttention(D, H).eval()
    copy_mha(mha, ref)
    x = torch.randn(B, T, D)
    with torch.no_grad():
        ref_out, _ = ref(x, x, x, attn_mask=to_torch_attn_mask(mask, shape=(B, H, T, T)))
        out, _ = mha(x, x, x, mask)
    assert_close(out, ref_out)


def test_to_torch_attn_mask_shape_errors():
    mask = torch.ones(2, 1, 1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"shape must be \(B, H, T_q, T_k\), four positive ints; got \(2, 2, 3, 3.0\)"):
        to_torch_attn_mask(mask, shape=(2, 2, 3, 3.0))
    with pytest.raises(ValueError, match=r"mask must be a bool tensor .* broadcastable to \(B, H, T_q, T_k\) = "
                                         r"\(2, 2, 3, 4\); got shape \(2, 1, 1, 3\)"):
        to_torch_attn_mask(mask, shape=(2, 2, 3, 4))
    with pytest.raises(TypeError, match=r"If you built a 0/1 mask, use `mask.bool\(\)`"):
        to_torch_attn_mask(mask.long(), shape=(2, 2, 3, 3))
