"""Checks of the mask exercises (notebook 06), with their typical mistakes: ``padding_mask``, ``causal_mask``,
``decoder_mask`` (the two combined) and the stretch ``to_torch_attn_mask`` (nn.MultiheadAttention's polarity)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import masks, multihead
from ._core import MODULE_TOL, Mistake, call, close, compare, run_cases, seeded

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


# ------------------------------------------------------------------------- Exercise 6.3: padding & causal
def check_decoder_mask(fn: Callable) -> None:
    """Check ``decoder_mask(tgt, pad_id) -> (B, 1, T, T)`` bool: ``padding_mask(tgt, pad_id) & causal_mask(T)``."""
    t = torch.tensor
    with seeded():
        cases = [
            # padding at the end, at the start (its first queries may see no key at all), and none
            ("pad_id=0: right, left and no padding (B=3, T=5)",
             (t([[5, 7, 2, 0, 0], [0, 0, 3, 1, 4], [3, 1, 4, 1, 5]]), 0)),
            ("pad_id=3 (0 is a real token here)", (t([[4, 0, 5, 3, 3], [1, 2, 0, 6, 3]]), 3)),
            ("no padding (B=1, T=4)", (t([[1, 2, 3, 4]]), 0)),
            ("one token per sequence (T=1)", (t([[7], [0]]), 0)),
        ]
        run_cases("decoder_mask", cases, lambda case: _decoder_case(fn, *case))


def _decoder_case(fn: Callable, tgt: Tensor, pad_id: int) -> None:
    got = call(fn, tgt, pad_id, names=["tgt", "pad_id"])
    B, T = tgt.shape
    keys = masks.padding_mask(tgt, pad_id)  # (B, 1, 1, T)
    queries = (tgt != pad_id)[:, None, :, None]  # (B, 1, T, 1) the mistake: padding on the query axis
    causal = masks.causal_mask(T)  # (T, T)
    expected = keys & causal  # (B, 1, T, T)
    ones = torch.ones(T, T, dtype=torch.bool)
    variants = [
        ("True must mean MAY attend: your mask is True where a query must NOT look (inverted)", lambda: ~expected),
        ("combine with & (and), not | (or): a key must be a real token AND not in the future", lambda: keys | causal),
        ("the causal part is transposed (upper triangle): rows are queries, columns keys; query i may attend "
         "to keys j <= i (torch.tril)", lambda: keys & causal.T),
        ("the causal part is inverted: it must be True on and below the diagonal (the past), not above it",
         lambda: keys & ~causal),
        ("the causal part drops the diagonal: a token must be able to attend to itself (torch.tril(..., diagonal=0))",
         lambda: keys & ones.tril(-1)),
        ("the causal part has diagonal=1, which leaks the next token: use torch.tril(..., diagonal=0)",
         lambda: keys & ones.tril(1)),
        ("the padding mask belongs on the key axis (the last): (B, 1, 1, T); yours masks the padded queries' rows "
         "(B, 1, T, 1)", lambda: queries & causal),
        ("you masked the padded queries' rows as well as the padded keys: mask the keys only, (B, 1, 1, T); a padded "
         "query keeps its row (the loss ignores its output), and an all-False row has no key at all",
         lambda: queries & keys & causal),
        ("you ignored pad_id (hard-coded 0?): compare the tokens with the pad_id argument",
         lambda: (tgt != 0)[:, None, None, :] & causal),
        ("the padding part is missing: combine the causal mask with padding_mask(tgt, pad_id) using &",
         lambda: causal.expand(B, 1, T, T)),
        ("the causal part is missing: combine the padding mask with causal_mask(T) using &",
         lambda: keys.expand(B, 1, T, T)),
    ]

    def shape_hint(shape: tuple[int, ...]) -> str:
        if shape == (B, T, T):
            return ("add the head axis, (B, 1, T, T): a (B, T, T) mask broadcast against the scores (B, H, T, T) "
                    "would line B up with the heads H")
        if shape == (T, T):
            return "(T, T) is the causal mask alone, the same for every sequence: combine it with the padding mask"
        if shape == (B, 1, 1, T):
            return "(B, 1, 1, T) is the padding mask alone: combine it with causal_mask(T) using &"
        return "expected (B, 1, T, T): padding_mask (B, 1, 1, T) & causal_mask (T, T) broadcasts to it"

    compare(got, expected, what="the mask", variants=variants, dtype=torch.bool, shape_hint=shape_hint,
            dtype_hint=_BOOL_MASK_HINT, inputs=f"tgt={tgt.tolist()}, pad_id={pad_id}")


# ---------------------------------------------------------------- Exercise 6.4 (stretch): torch's polarity
def check_to_torch_attn_mask(fn: Callable) -> None:
    """Check ``to_torch_attn_mask(mask, shape=None)``: our mask as nn.MultiheadAttention's bool ``attn_mask``.

    ``True`` = NOT allowed; ``(T_q, T_k)`` without ``shape``, else ``(B * H, T_q, T_k)``, batch-major. The last
    case runs ``nn.MultiheadAttention`` with the student's mask against the library's ``MultiHeadAttention`` with
    ours. An additive float mask (0 = allowed, -inf = blocked) works with ``nn.MultiheadAttention`` too and passes.
    """
    t, pad = torch.tensor, masks.padding_mask
    with seeded():
        uneven = t([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 0, 0, 1]]).bool()  # (T_q=3, T_k=5)
        tokens = t([[5, 6, 7, 0, 0], [4, 5, 6, 7, 8]])  # (B=2, T=5)
        cases = [
            ("causal (T, T), no shape", (masks.causal_mask(4), None)),
            ("non-symmetric (T_q=3, T_k=5), no shape", (uneven, None)),
            ("padding (B, 1, 1, T), shape=(2, 3, 4, 4)", (pad(t([[5, 6, 0, 0], [7, 8, 9, 0]]), 0), (2, 3, 4, 4))),
            ("decoder mask (B, 1, T, T), shape=(2, 2, 5, 5)", (masks.decoder_mask(tokens, 0), (2, 2, 5, 5))),
            ("cross-attention padding (B, 1, 1, S), shape=(2, 2, 3, 5)", (pad(tokens, 0), (2, 2, 3, 5))),
            ("parity with nn.MultiheadAttention (B=2, H=2, T=5, decoder mask)", (masks.decoder_mask(tokens, 0), "mha")),
        ]
        run_cases("to_torch_attn_mask", cases, lambda case: _to_torch_case(fn, *case))


def _to_torch_case(fn: Callable, mask: Tensor, shape: tuple | str | None) -> None:
    parity = shape == "mha"
    if parity:  # two heads
        shape = (mask.shape[0], 2, mask.shape[-2], mask.shape[-1])
    got = call(fn, mask, names=["mask"]) if shape is None else call(fn, mask, names=["mask"], shape=shape)
    expected = masks.to_torch_attn_mask(mask, shape)
    if not _additive_equivalent(got, expected):
        _compare_torch_mask(got, expected, mask, shape)
    if parity:
        _mha_parity(got, mask, shape)


def _additive_equivalent(got: object, expected: Tensor) -> bool:
    """An additive float mask that nn.MultiheadAttention reads as ``expected``: 0 where allowed, -inf (or a number
    so negative that exp() of it is 0, such as -1e9) where blocked."""
    return (isinstance(got, Tensor) and got.is_floating_point() and got.shape == expected.shape
            and bool((got[expected] <= -1e4).all()) and bool((got[~expected] == 0).all()))


def _compare_torch_mask(got: object, expected: Tensor, mask: Tensor, shape: tuple | None) -> None:
    flipped = ~mask if shape is None else ~mask.expand(*shape)  # (T_q, T_k) or (B, H, T_q, T_k)
    inputs = f"mask={tuple(mask.shape)} bool" + ("" if shape is None else f", shape={tuple(shape)}")
    if isinstance(got, Tensor) and got.is_floating_point() and got.shape == expected.shape:
        floats = [  # torch ADDS a float attn_mask to the scores: only -inf (or a huge negative number) blocks
            ("a float attn_mask is ADDED to the scores, so a 0/1 mask blocks nothing: return the bool mask "
             "(True = NOT allowed)", expected.float()),
            ("a float attn_mask is ADDED to the scores: 1 where allowed and 0 where blocked blocks nothing; return "
             "the bool mask (True = NOT allowed)", (~expected).float()),
            ("this additive mask puts -inf where our mask allows attention: -inf goes where our mask is False",
             torch.zeros(expected.shape).masked_fill(~expected, float("-inf")))]
        for message, wrong in floats:
            if close(got, wrong):
                raise Mistake(f"{message}\n  inputs: {inputs}")
    variants = [("nn.MultiheadAttention reads a bool True as NOT allowed: flip our mask with ~ (it is True where a "
                 "query MAY attend)", lambda: ~expected)]
    if shape is not None:
        B, H, T_q, T_k = shape
        variants.append(("the (B * H, T_q, T_k) layout is batch-major: row b * H + h is sequence b, head h; reshape "
                         "the expanded (B, H, T_q, T_k) mask (repeat(H, 1, 1) puts the heads first: use "
                         "repeat_interleave(H, dim=0))", lambda: flipped.transpose(0, 1).reshape(B * H, T_q, T_k)))

    def shape_hint(got_shape: tuple[int, ...]) -> str:
        if shape is None:
            return "without shape, return a (T_q, T_k) mask, like the one given"
        B, H, T_q, T_k = shape
        if got_shape == (B, H, T_q, T_k):
            return "nn.MultiheadAttention wants 3 dims: merge B and H with .reshape(B * H, T_q, T_k)"
        if got_shape == (B, T_q, T_k):
            return "one mask per sequence AND head: (B * H, T_q, T_k), each sequence's mask repeated for its H heads"
        if got_shape == tuple(mask.shape):
            return "broadcast the mask to shape first (.expand(B, H, T_q, T_k)), then reshape to (B * H, T_q, T_k)"
        return f"expected (B * H, T_q, T_k) with (B, H, T_q, T_k) = {tuple(shape)}"

    compare(got, expected, what="the torch mask", variants=variants, dtype=torch.bool, shape_hint=shape_hint,
            dtype_hint="return the bool mask (True = NOT allowed), e.g. ~mask", inputs=inputs)


def _mha_parity(got: Tensor, mask: Tensor, shape: tuple) -> None:
    """nn.MultiheadAttention with the student's mask against our MultiHeadAttention with ours, same weights."""
    B, H, T, _ = shape
    d_model = 4 * H
    theirs = nn.MultiheadAttention(d_model, H, batch_first=True).eval()
    ours = multihead.MultiHeadAttention(d_model, H).eval()
    for proj, w, b in zip((ours.q_proj, ours.k_proj, ours.v_proj), theirs.in_proj_weight.chunk(3),
                          theirs.in_proj_bias.chunk(3)):
        proj.weight.copy_(w)
        proj.bias.copy_(b)
    ours.out_proj.load_state_dict(theirs.out_proj.state_dict())
    x = torch.randn(B, T, d_model)  # (B, T, d_model)
    out, _ = theirs(x, x, x, attn_mask=got, need_weights=False)  # (B, T, d_model)
    compare(out, ours(x, x, x, mask)[0], what="nn.MultiheadAttention's output with your mask",
            inputs=f"x={tuple(x.shape)}, mask={tuple(mask.shape)}, shape={shape}", **MODULE_TOL)
