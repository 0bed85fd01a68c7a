"""No silent broadcasting of a mask (issue 11, part 5): a mask is read correctly or refused, never misapplied.

The rule (``transformer_lib._validation.validate_mask``): broadcasting aligns the LAST dims, so a 2-D mask is
``(T_q, T_k)`` and a 1-D mask ``(T_k,)``, both shared by every sequence and head; any other mask has all the
dims of the scores, ``(B, H, T_q, T_k)``. The failure this prevents: a ``(B, T)`` padding mask where
``(B, 1, 1, T)`` is expected broadcasts as ``(T_q, T_k)`` whenever ``B == T_q``, and a ``(B, T_q, T_k)`` mask
as ``(H, T_q, T_k)`` whenever ``B == H``: each sequence would get another sequence's padding, no error.

- ``src_mask`` (Transformer.encode/decode, DecoderLayer, IncrementalDecoder) is a padding mask by definition:
  it must be 4-D, so a ``(B, S)`` one is refused even where its shape happens to broadcast;
- a 3-D mask is refused wherever the scores are 4-D;
- a generic 2-D mask (``mask`` of attention, MultiHeadAttention, EncoderLayer; ``tgt_mask``) that does not
  broadcast because its first dim is the batch is refused with the fix in the message. One that does
  broadcast is a ``(T_q, T_k)`` mask, as documented (a causal mask): no shape can tell it from a ``(B, T)``
  padding mask when ``B == T_q``, which is why per-sequence masks are always 4-D in this library.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from transformer_lib.attention import scaled_dot_product_attention
from transformer_lib.cache import IncrementalDecoder
from transformer_lib.layers import DecoderLayer, EncoderLayer
from transformer_lib.masks import causal_mask, decoder_mask, padding_mask
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.multihead import MultiHeadAttention

D, H = 16, 2


def padded_batch(B: int, S: int) -> torch.Tensor:
    """``(B, S)`` ids, sequence ``b`` with ``b`` pads at its end (0 = pad), so every row's padding differs."""
    ids = torch.randint(3, 20, (B, S))
    for b in range(1, B):
        ids[b, S - min(b, S - 1):] = 0  # at least one real token per row
    return ids


@pytest.fixture
def model():
    return Transformer(TransformerConfig.tiny(d_model=D, n_heads=H, src_vocab_size=20, tgt_vocab_size=20)).eval()


# -- src_mask is a padding mask: 4 dims, or refused, whatever B, S and T are --------------------------------


@pytest.mark.parametrize("B, T", [(5, 5), (5, 3), (1, 4)])  # B == T: the shape that would broadcast silently
def test_a_2d_src_mask_is_refused_everywhere(model, B, T):
    src, tgt = padded_batch(B, 6), torch.randint(3, 20, (B, T))
    flat, right = src != 0, padding_mask(src, 0)  # (B, S), (B, 1, 1, S)
    memory = model.encode(src, right)
    layer = model.decoder_layers[0]
    calls = {"Transformer.encode": lambda m: model.encode(src, m),
             "Transformer.decode": lambda m: model.decode(tgt, memory, m),
             "DecoderLayer": lambda m: layer(torch.randn(B, T, D), memory, src_mask=m),
             "IncrementalDecoder": lambda m: IncrementalDecoder(model, memory, m)}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"src_mask must have all 4 dims of .*\(a per-sequence mask\); got shape "
                                             rf"\({B}, 6\).*src_mask\[:, None, None, :\]"):
            call(flat)
        call(right)  # the 4-D mask from padding_mask is accepted by each


def test_the_4d_padding_mask_is_applied_per_sequence(model):
    """Accepted means correct: with padding_mask, each sequence's output at its real positions is what the same
    sequence gives alone, without its pads, whatever its neighbours' padding (B == T == 5 here)."""
    src = padded_batch(5, 5)
    memory = model.encode(src, padding_mask(src, 0))
    for b in range(5):
        real = src[b][src[b] != 0][None]  # (1, S_b)
        assert_close(memory[b, : real.shape[1]], model.encode(real, padding_mask(real, 0))[0], atol=1e-5, rtol=1e-5)


# -- 3-D masks: (B, T_q, T_k) would be read as (H, T_q, T_k) -----------------------------------------------


def test_a_3d_mask_is_refused_where_the_scores_are_4d():
    B = H  # the silent case: a (B, T, T) mask broadcasts as (H, T, T)
    x, q = torch.randn(B, 5, D), torch.randn(B, H, 5, 8)
    per_sequence = decoder_mask(padded_batch(B, 5), 0)[:, 0]  # (B, T, T): the head axis dropped
    calls = {"scaled_dot_product_attention": lambda m: scaled_dot_product_attention(q, q, q, m),
             "MultiHeadAttention": lambda m: MultiHeadAttention(D, H)(x, x, x, m),
             "EncoderLayer": lambda m: EncoderLayer(D, H, 32)(x, m),
             "DecoderLayer tgt_mask": lambda m: DecoderLayer(D, H, 32)(x, x, tgt_mask=m)}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"with 3 dims it would be read as \((H|dim 1), [TS](_q)?, [TS](_k)?\)"):
            call(per_sequence)
        call(per_sequence[:, None])  # (B, 1, T, T): the fix the message gives
    scaled_dot_product_attention(x, x, x, per_sequence)  # 3-D scores (B, T, T): the same mask has all their dims


# -- generic masks: (T_q, T_k) by definition ------------------------------------------------------------------


@pytest.mark.parametrize("B", [2, 3])
def test_a_2d_padding_mask_that_does_not_broadcast_says_how_to_fix_it(B):
    x = torch.randn(B, 5, D)
    flat = padded_batch(B, 5) != 0  # (B, T) with B != T
    for call in (lambda m: MultiHeadAttention(D, H)(x, x, x, m), lambda m: EncoderLayer(D, H, 32)(x, m)):
        with pytest.raises(ValueError, match=r"got shape \(\d, 5\)\. A per-sequence \(B, \w+\) padding mask needs "
                                             r"its axes: mask\[:, None, None, :\]"):
            call(flat)
        call(flat[:, None, None, :])


def test_a_2d_mask_that_broadcasts_is_a_shared_t_q_t_k_mask():
    """Where it broadcasts, a 2-D mask means what the convention says: (T_q, T_k) for every sequence and head.
    With B == 1 that IS the single sequence's padding mask, applied correctly; with B == T_q it is a causal or
    any other shared mask (a per-sequence one must be 4-D: src_mask refuses 2-D for that reason)."""
    mha = MultiHeadAttention(D, H).eval()
    one = torch.randn(1, 5, D)
    flat = padded_batch(2, 5)[1:] != 0  # (1, 5): one sequence, one pad
    assert_close(mha(one, one, one, flat)[0], mha(one, one, one, flat[:, None, None, :])[0])
    x = torch.randn(5, 5, D)  # B == T_q == 5
    assert_close(mha(x, x, x, causal_mask(5))[0], mha(x, x, x, causal_mask(5)[None, None])[0])


def test_the_mask_shapes_of_the_notebooks_and_checks_are_accepted(model):
    """What solutions/*.ipynb and transformer_lib/checks pass: (T, T) causal, (B, 1, 1, S) padding,
    (B, 1, T, T) decoder masks, a 2-D mask with 2-D queries, (1, 1, 1, S) for one source."""
    src, tgt = padded_batch(3, 6), torch.randint(3, 20, (3, 4))
    memory = model.encode(src, model.make_src_mask(src))
    model.decode(tgt, memory, model.make_src_mask(src), causal_mask(4))
    model.decode(tgt, memory, model.make_src_mask(src), model.make_tgt_mask(tgt))
    model.decode(tgt[:1], memory[:1], model.make_src_mask(src[:1]), causal_mask(4))
    EncoderLayer(D, H, 32)(torch.randn(3, 4, D), causal_mask(4))  # notebook 12: a decoder-only block
    q = torch.randn(3, 8)
    scaled_dot_product_attention(q, q, q, causal_mask(3))
