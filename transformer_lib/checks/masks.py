"""Checks of the mask exercises (notebook 06): ``padding_mask`` and ``causal_mask``, with their typical mistakes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .. import masks
from ._core import call, compare, run_cases, seeded

__all__ = ["check_padding_mask", "check_causal_mask", "check_decoder_mask", "check_to_torch_attn_mask"]

_BOOL_MASK_HINT = ("masks are bool, True = may attend (a comparison such as `tokens != pad_id` is already bool); "
                   "if you built an additive 0/-inf mask, use `mask = additive_mask == 0`")



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
    variants = [(inverted, lambda: ~expected), (ignored, lambda: (tokens != 0)[:, None, None, :])]

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




def check_decoder_mask(fn: Callable) -> None:
    """Check notebook 06's ``decoder_mask(tgt, pad_id) -> (B, 1, T, T)``: padding & causal (being written)."""
    raise NotImplementedError("check_decoder_mask is being written")


def check_to_torch_attn_mask(fn: Callable) -> None:
    """Check notebook 06's stretch: our mask to nn.MultiheadAttention's polarity (being written)."""
    raise NotImplementedError("check_to_torch_attn_mask is being written")
