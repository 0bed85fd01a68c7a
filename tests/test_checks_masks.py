"""Tests of notebook 06's checks, check_decoder_mask and check_to_torch_attn_mask: the references and correct
alternative formulations pass; realistic wrong answers, one mistake each, get the diagnosis that names it."""

from __future__ import annotations

import pytest
import torch
from checking import passes, raises

from transformer_lib import checks
from transformer_lib.masks import causal_mask, decoder_mask, padding_mask, to_torch_attn_mask

NEG_INF = float("-inf")


def tril(T: int, diagonal: int = 0) -> torch.Tensor:
    return torch.ones(T, T, dtype=torch.bool).tril(diagonal)  # (T, T)


def keys(tgt, pad_id):
    return (tgt != pad_id)[:, None, None, :]  # (B, 1, 1, T)


def queries(tgt, pad_id):
    return (tgt != pad_id)[:, None, :, None]  # (B, 1, T, 1)


# ------------------------------------------------------------------------------------------- decoder_mask
def _own_helpers(tgt, pad_id):  # what the notebook's solution does: Exercises 6.1 and 6.2, combined
    return padding_mask(tgt, pad_id) & causal_mask(tgt.shape[1])


DECODER_CORRECT = {
    "library": decoder_mask,
    "own helpers": _own_helpers,
    "unsqueeze & tril": lambda tgt, p: tgt.ne(p).unsqueeze(1).unsqueeze(2) & tril(tgt.shape[1]),
    "logical_and of arange comparison": lambda tgt, p: torch.logical_and(
        keys(tgt, p), torch.arange(tgt.shape[1])[None, :] <= torch.arange(tgt.shape[1])[:, None]),
    "bool product": lambda tgt, p: keys(tgt, p) * tril(tgt.shape[1]),
    "(B, T, T) then unsqueeze(1)": lambda tgt, p: ((tgt != p)[:, None, :] & tril(tgt.shape[1])).unsqueeze(1),
}


@pytest.mark.parametrize("fn", DECODER_CORRECT.values(), ids=DECODER_CORRECT)
def test_decoder_mask_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_decoder_mask, fn, capsys) == ["decoder_mask: all 4 cases pass"]


DECODER_MISTAKES = [  # (id, a realistic wrong implementation, the diagnosis it must get)
    ("torch polarity", lambda tgt, p: (tgt == p)[:, None, None, :] | ~tril(tgt.shape[1]),
     r"case 'pad_id=0.*True must mean MAY attend.*\(inverted\)"),
    ("or", lambda tgt, p: keys(tgt, p) | tril(tgt.shape[1]), r"combine with & \(and\), not \| \(or\)"),
    ("triu", lambda tgt, p: keys(tgt, p) & tril(tgt.shape[1]).T, r"causal part is transposed \(upper triangle\)"),
    ("torch's causal mask", lambda tgt, p: keys(tgt, p) & torch.ones(tgt.shape[1], tgt.shape[1]).triu(1).bool(),
     r"causal part is inverted: it must be True on and below the diagonal"),
    ("no diagonal", lambda tgt, p: keys(tgt, p) & tril(tgt.shape[1], -1), r"causal part drops the diagonal"),
    ("diagonal=1", lambda tgt, p: keys(tgt, p) & tril(tgt.shape[1], 1), r"diagonal=1, which leaks the next token"),
    ("query axis", lambda tgt, p: queries(tgt, p) & tril(tgt.shape[1]),
     r"padding mask belongs on the key axis \(the last\): \(B, 1, 1, T\); yours masks the padded queries' rows"),
    ("both axes", lambda tgt, p: queries(tgt, p) & keys(tgt, p) & tril(tgt.shape[1]),
     r"you masked the padded queries' rows as well as the padded keys"),
    ("pad_id ignored", lambda tgt, p: keys(tgt, 0) & tril(tgt.shape[1]),
     r"case 'pad_id=3 .*you ignored pad_id \(hard-coded 0\?\)"),
    ("causal only, expanded", lambda tgt, p: tril(tgt.shape[1]).repeat(tgt.shape[0], 1, 1, 1),
     r"case 'pad_id=0.*the padding part is missing"),
    ("padding only, expanded", lambda tgt, p: keys(tgt, p).expand(-1, 1, tgt.shape[1], -1),
     r"the causal part is missing"),
    ("no head axis", lambda tgt, p: (tgt != p)[:, None, :] & tril(tgt.shape[1]),
     r"has shape \(3, 5, 5\) but should have shape \(3, 1, 5, 5\): add the head axis"),
    ("causal only", lambda tgt, p: tril(tgt.shape[1]), r"\(T, T\) is the causal mask alone"),
    ("padding only", keys, r"\(B, 1, 1, T\) is the padding mask alone: combine it with causal_mask\(T\)"),
    ("batch and head swapped", lambda tgt, p: (keys(tgt, p) & tril(tgt.shape[1])).transpose(0, 1),
     r"has shape \(1, 3, 5, 5\).*expected \(B, 1, T, T\): padding_mask \(B, 1, 1, T\) & causal_mask"),
    ("float product", lambda tgt, p: keys(tgt, p).float() * torch.ones(tgt.shape[1], tgt.shape[1]).tril(),
     r"must have dtype torch.bool; got torch.float32.*masks are bool, True = may attend"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in DECODER_MISTAKES], ids=[m[0] for m in DECODER_MISTAKES])
def test_decoder_mask_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_decoder_mask(fn)


def test_decoder_mask_failure_shows_case_and_values():
    with pytest.raises(AssertionError) as err:
        checks.check_decoder_mask(lambda tgt, p: keys(tgt, p) | tril(tgt.shape[1]))
    lines = str(err.value).splitlines()
    assert lines[0].startswith("decoder_mask: case 'pad_id=0: right, left and no padding (B=3, T=5)' (1 of 4): "
                               "combine with & (and), not | (or)")
    assert lines[1].startswith("  the mask at [") and "expected" in lines[1] and lines[2].strip().startswith("got")
    assert len(lines) == 3


def test_decoder_mask_not_done_is_one_line():
    def decoder_mask(tgt, pad_id):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `decoder_mask` in place of"):
        checks.check_decoder_mask(decoder_mask)


def test_decoder_mask_in_place_change_is_named():
    def in_place(tgt, pad_id):
        tgt[tgt == pad_id] = -1  # "mark" the padding in the input itself
        return keys(tgt, -1) & tril(tgt.shape[1])

    with raises(r"changed its input `tgt` in place"):
        checks.check_decoder_mask(in_place)


# ------------------------------------------------------------------------------------- to_torch_attn_mask
def _full(mask, shape):  # our mask broadcast to (B, H, T_q, T_k)
    return mask.expand(*shape)


def flip_reshape(mask, shape=None):
    if shape is None:
        return ~mask
    B, H, T_q, T_k = shape
    return ~_full(mask, shape).reshape(B * H, T_q, T_k)


def additive(mask, shape=None, fill=NEG_INF):  # 0 where allowed, `fill` where blocked: torch adds it to the scores
    blocked = flip_reshape(mask, shape)
    return torch.zeros(blocked.shape).masked_fill(blocked, fill)


def repeat_interleave(mask, shape=None):
    if shape is None:
        return torch.logical_not(mask)
    B, H, T_q, T_k = shape
    return (~mask).expand(B, 1, T_q, T_k)[:, 0].repeat_interleave(H, dim=0)  # (B * H, T_q, T_k)


TO_TORCH_CORRECT = {
    "library": to_torch_attn_mask,
    "flip then reshape": flip_reshape,
    "repeat_interleave": repeat_interleave,
    "additive -inf": additive,
    "additive -1e9": lambda mask, shape=None: additive(mask, shape, fill=-1e9),
}


@pytest.mark.parametrize("fn", TO_TORCH_CORRECT.values(), ids=TO_TORCH_CORRECT)
def test_to_torch_attn_mask_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_to_torch_attn_mask, fn, capsys) == ["to_torch_attn_mask: all 6 cases pass"]


def _not_flipped(mask, shape=None):
    return ~flip_reshape(mask, shape)


def _head_major(mask, shape=None):  # the classic: repeat(H, 1, 1) instead of repeat_interleave
    if shape is None:
        return ~mask
    B, H, T_q, T_k = shape
    return (~mask).expand(B, 1, T_q, T_k)[:, 0].repeat(H, 1, 1)  # (H * B, T_q, T_k): heads first


def _not_reshaped(mask, shape=None):
    return ~mask if shape is None else ~_full(mask, shape)


def _no_heads(mask, shape=None):
    if shape is None:
        return ~mask
    B, H, T_q, T_k = shape
    return ~mask.expand(B, 1, T_q, T_k).squeeze(1)


TO_TORCH_MISTAKES = [  # (id, a realistic wrong implementation, the diagnosis it must get)
    ("not flipped", _not_flipped, r"case 'causal \(T, T\), no shape'.*reads a bool True as NOT allowed: flip"),
    ("our mask as float", lambda mask, shape=None: _not_flipped(mask, shape).float(),
     r"ADDED to the scores: 1 where allowed and 0 where blocked blocks nothing"),
    ("flipped mask as float", lambda mask, shape=None: flip_reshape(mask, shape).float(),
     r"ADDED to the scores, so a 0/1 mask blocks nothing"),
    ("additive, wrong polarity", lambda mask, shape=None: torch.zeros(mask.shape).masked_fill(mask, NEG_INF),
     r"-inf where our mask allows attention"),
    ("repeat(H, 1, 1)", _head_major, r"case 'padding \(B, 1, 1, T\).*batch-major: row b \* H \+ h.*repeat_interleave"),
    ("(B, H, T_q, T_k) not reshaped", _not_reshaped,
     r"has shape \(2, 3, 4, 4\).*merge B and H with \.reshape\(B \* H, T_q, T_k\)"),
    ("no head copies", _no_heads, r"has shape \(2, 4, 4\).*one mask per sequence AND head"),
    ("not expanded", lambda mask, shape=None: ~mask, r"has shape \(2, 1, 1, 4\).*broadcast the mask to shape first"),
    ("2-D mask made 3-D", lambda mask, shape=None: (~mask)[None] if shape is None else flip_reshape(mask, shape),
     r"has shape \(1, 4, 4\).*without shape, return a \(T_q, T_k\) mask"),
    ("flattened", lambda mask, shape=None: flip_reshape(mask, shape).reshape(-1, mask.shape[-1]),
     r"case 'padding .*has shape \(24, 4\).*expected \(B \* H, T_q, T_k\) with \(B, H, T_q, T_k\) = \(2, 3, 4, 4\)"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in TO_TORCH_MISTAKES], ids=[m[0] for m in TO_TORCH_MISTAKES])
def test_to_torch_attn_mask_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_to_torch_attn_mask(fn)


def test_to_torch_attn_mask_without_shape_argument_is_told_to_keep_the_signature():
    with raises(r"case 'padding .*TypeError.*unexpected keyword argument 'shape'.*keep the signature"):
        checks.check_to_torch_attn_mask(lambda mask: ~mask)


def test_to_torch_attn_mask_not_done_is_one_line():
    def to_torch_attn_mask(mask, shape=None):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `to_torch_attn_mask` in place of"):
        checks.check_to_torch_attn_mask(to_torch_attn_mask)


def test_checks_leave_rng_and_threads_as_they_were(capsys):
    torch.manual_seed(7)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    checks.check_decoder_mask(decoder_mask)
    checks.check_to_torch_attn_mask(to_torch_attn_mask)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert capsys.readouterr().out.splitlines() == ["decoder_mask: all 4 cases pass",
                                                    "to_torch_attn_mask: all 6 cases pass"]
