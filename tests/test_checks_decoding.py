"""Tests of notebook 11's checks, check_greedy_decode and check_beam_search: the library and students' own
versions (without the KV cache, one sentence at a time, through model(src, ys)) pass; realistic wrong answers,
one mistake each, written here independently of the checks' own variants, get the diagnosis that names it."""

from __future__ import annotations

import math

import pytest
import torch
from checking import passes, raises

from transformer_lib import checks
from transformer_lib.decoding import beam_search, greedy_decode
from transformer_lib.masks import causal_mask

INF = math.inf


# ------------------------------------------------------------------------------------------ greedy_decode
def greedy_student(*, src_mask="both", banned=("pad", "bos"), after_eos="pad", stop=True, dim=-1, position=-1,
                   extra_step=0, keep_bos=True, forward=False):
    """A student's greedy_decode with one switch turned to a mistake; the defaults give a correct one."""
    def greedy_decode(model, src, max_len, bos_id, eos_id):
        pad = model.config.pad_id
        mask = model.make_src_mask(src)  # (B, 1, 1, S)
        memory = model.encode(src, mask if src_mask in ("both", "encoder") else None)  # (B, S, d_model)
        ys = torch.full((src.shape[0], 1), bos_id, dtype=torch.long)  # (B, 1)
        finished = torch.zeros(src.shape[0], dtype=torch.bool)  # (B,)
        for _ in range(max_len - 1 + extra_step):
            if forward:  # re-encodes at every step: slow, right
                logits = model(src, ys)  # (B, t, V)
            else:
                logits = model.decode(ys, memory, mask if src_mask in ("both", "decoder") else None,
                                      causal_mask(ys.shape[1]))  # (B, t, V)
            for name in banned:
                logits[:, :, {"pad": pad, "bos": bos_id}[name]] = -INF
            nxt = logits[:, position].argmax(dim=-1) if dim == -1 else logits.argmax(dim=1)[:, -1]  # (B,)
            if after_eos != "continue":
                nxt = torch.where(finished, pad if after_eos == "pad" else eos_id, nxt)
            ys = torch.cat([ys, nxt.unsqueeze(1)], dim=1)  # (B, t + 1)
            finished |= nxt == eos_id
            if stop and finished.all():
                break
        return ys if keep_bos else ys[:, 1:]
    return greedy_decode


GREEDY_CORRECT = {
    "library": greedy_decode,
    "library without the KV cache": lambda model, src, max_len, bos_id, eos_id: greedy_decode(
        model, src, max_len, bos_id, eos_id, use_cache=False),
    "student": greedy_student(),
    "through model(src, ys)": greedy_student(forward=True),
}


@pytest.mark.parametrize("fn", GREEDY_CORRECT.values(), ids=GREEDY_CORRECT)
def test_greedy_correct_versions_pass(fn, capsys):
    assert passes(checks.check_greedy_decode, fn, capsys) == ["greedy_decode: all 5 cases pass"]


GREEDY_MISTAKES = [  # (id, a realistic wrong implementation, the diagnosis it must get)
    ("BOS dropped from the output", greedy_student(keep_bos=False),
     r"case 'B=4, no padding.*every row must start with bos_id: keep BOS"),
    ("decodes on after EOS", greedy_student(after_eos="continue", stop=False),
     r"case 'rows that end at different steps.*tokens after EOS: after its EOS a row holds only pad_id"),
    ("stops but does not pad", greedy_student(after_eos="continue"), r"tokens after EOS"),
    ("fills with EOS", greedy_student(after_eos="eos"), r"a row holds only pad_id .*, not eos_id"),
    ("never stops early", greedy_student(stop=False), r"stop as soon as every row has produced EOS"),
    ("max_len steps", greedy_student(extra_step=1), r"max_len counts BOS"),
    ("argmax over the positions", greedy_student(dim=1), r"argmax over the wrong dim"),
    ("first position", greedy_student(position=0), r"logits of the first position: the next token comes from the LAST"),
    ("no source mask", greedy_student(src_mask="none"),
     r"case 'padded sources.*the source padding mask is missing: pass src_mask"),
    ("no mask in the cross-attention", greedy_student(src_mask="encoder"), r"cross-attention does not get the source"),
    ("no mask in the encoder", greedy_student(src_mask="decoder"), r"the encoder runs without the source padding mask"),
    ("PAD and BOS generated", greedy_student(banned=()), r"pad_id and bos_id are never generated: set their logits"),
    ("BOS generated", greedy_student(banned=("pad",)), r"bos_id must never be generated either"),
    ("PAD generated", greedy_student(banned=("bos",)), r"pad_id \(model.config.pad_id\) must never be generated"),
    ("PAD generated, then masked as a key", greedy_student(banned=(), forward=True),
     r"pad_id and bos_id are never generated"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in GREEDY_MISTAKES], ids=[m[0] for m in GREEDY_MISTAKES])
def test_greedy_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_greedy_decode(fn)


def test_greedy_failure_shows_case_and_values():
    with pytest.raises(AssertionError) as err:
        checks.check_greedy_decode(greedy_student(after_eos="eos"))
    lines = str(err.value).splitlines()
    assert lines[0].startswith("greedy_decode: case 'rows that end at different steps (a table model, B=4), "
                               "max_len=12' (2 of 5): after its EOS a row holds only pad_id")
    assert "the output at [" in lines[1] and "expected" in lines[1] and lines[2].strip().startswith("got")
    assert len(lines) == 3


def test_greedy_wrong_dtype_and_list():
    with raises(r"must have dtype torch.int64; got torch.float32.*token ids are torch.long"):
        checks.check_greedy_decode(lambda *args: greedy_decode(*args).float())
    with raises(r"the output must be a torch.Tensor; got list"):
        checks.check_greedy_decode(lambda *args: greedy_decode(*args).tolist())


# -------------------------------------------------------------------------------------------- beam_search
def beam_student(*, use_alpha=True, lp="gnmt", reorder=True, probs=False, pick="best", src_mask="both",
                 mask="log_probs", early_stop=True):
    """A student's beam_search (all sources at once, beams in a (B, k, t) tensor, no cache) with one switch turned
    to a mistake; the defaults give a correct one."""
    def beam_search(model, src, max_len, bos_id, eos_id, beam_size=4, length_penalty=0.6):
        B, k, V, pad = src.shape[0], beam_size, model.config.tgt_vocab_size, model.config.pad_id
        alpha = length_penalty if use_alpha else 0.0
        penalty = {"gnmt": lambda n: ((5 + n) / 6) ** alpha, "live": lambda n: ((5 + n) / 6) ** alpha,
                   "length": lambda n: n**alpha, "bos": lambda n: ((5 + n + 1) / 6) ** alpha,
                   "exponent": lambda n: (5 + n) / 6**alpha,  # ** before /
                   "multiply": lambda n: ((5 + n) / 6) ** -alpha}[lp]
        src_k = src.repeat_interleave(k, dim=0)  # (B*k, S)
        src_pad = model.make_src_mask(src_k)  # (B*k, 1, 1, S)
        memory = model.encode(src_k, src_pad if src_mask in ("both", "encoder") else None)  # (B*k, S, d_model)
        cross = src_pad if src_mask in ("both", "decoder") else None
        ys = torch.full((B, k, 1), bos_id)  # (B, k, 1)
        scores = torch.full((B, k), -INF)  # (B, k)
        scores[:, 0] = 0.0
        finished, done, norm = [[] for _ in range(B)], [False] * B, 1.0
        for t in range(1, max_len):
            logits = model.decode(ys.view(B * k, t), memory, cross, causal_mask(t))[:, -1]  # (B*k, V)
            if mask == "logits":
                logits[:, [pad, bos_id]] = -INF
            step = logits.softmax(-1) if probs else logits.log_softmax(-1)  # (B*k, V)
            if mask == "log_probs":
                step[:, [pad, bos_id]] = -INF
            total = scores[:, :, None] + step.view(B, k, V)  # (B, k, V)
            if lp == "live":
                total = total / penalty(t)
            norm = 1.0 if lp == "live" else penalty(t)
            top, idx = total.view(B, k * V).topk(2 * k, dim=-1)  # (B, 2k)
            new_ys, new_scores = torch.zeros(B, k, t + 1, dtype=torch.long), torch.full((B, k), -INF)
            for b in range(B):
                kept = 0
                for r in range(2 * k):
                    parent, token = divmod(idx[b, r].item(), V)
                    if token == eos_id:
                        if r < k and top[b, r] > -INF and not done[b]:
                            finished[b].append((top[b, r].item() / norm, ys[b, parent].tolist() + [eos_id]))
                    elif kept < k:
                        prefix = ys[b, parent] if reorder else ys[b, kept]  # (t,)
                        new_ys[b, kept] = torch.cat([prefix, torch.tensor([token])])
                        new_scores[b, kept] = top[b, r]
                        kept += 1
                finished[b] = sorted(finished[b], key=lambda h: h[0], reverse=True)[:k]
                if early_stop and len(finished[b]) == k and finished[b][-1][0] >= new_scores[b, 0].item() / norm:
                    done[b] = True
            ys, scores = new_ys, new_scores
            if all(done):
                break
        best = []
        for b in range(B):
            hyps = finished[b] if done[b] else finished[b] + [(s / norm, ids) for s, ids in
                                                            zip(scores[b].tolist(), ys[b].tolist())]
            hyps = sorted([h for h in hyps if h[0] > -INF], key=lambda h: h[0], reverse=True)[:k]
            best.append(hyps[0][1] if pick == "best" else hyps[-1][1])
        out = torch.full((B, max(len(ids) for ids in best)), pad)  # (B, L)
        for b, ids in enumerate(best):
            out[b, :len(ids)] = torch.tensor(ids)
        return out
    return beam_search


BEAM_CORRECT = {
    "library": beam_search,
    "library without the KV cache": lambda model, src, max_len, bos_id, eos_id, beam_size=4, length_penalty=0.6:
        beam_search(model, src, max_len, bos_id, eos_id, beam_size, length_penalty, use_cache=False),
    "student": beam_student(),
    "PAD and BOS masked before the log-softmax": beam_student(mask="logits"),
    "no early stop (until max_len or all done)": beam_student(early_stop=False),
}


@pytest.mark.parametrize("fn", BEAM_CORRECT.values(), ids=BEAM_CORRECT)
def test_beam_correct_versions_pass(fn, capsys):
    assert passes(checks.check_beam_search, fn, capsys) == ["beam_search: all 5 cases pass"]


BEAM_MISTAKES = [  # (id, a realistic wrong implementation, the diagnosis it must get)
    ("alpha ignored", beam_student(use_alpha=False),
     r"case 'defaults .*length_penalty \(alpha\) is ignored: rank the finished hypotheses by log P\(Y\|X\) / lp\(Y\)"),
    ("|Y| ** alpha", beam_student(lp="length"), r"the length penalty is not \|Y\| \*\* alpha"),
    ("|Y| counts BOS", beam_student(lp="bos"), r"\|Y\| counts BOS in your length penalty"),
    ("(5 + |Y|) / 6 ** alpha", beam_student(lp="exponent"), r"the exponent alpha is lost.*with the parentheses"),
    ("multiplied by lp", beam_student(lp="multiply"), r"divide the score by the length penalty, do not multiply"),
    ("live beams divided by lp", beam_student(lp="live"), r"applied to the running scores of the live beams"),
    ("beams not reordered", beam_student(reorder=False), r"the beams are not reordered: each kept candidate continues"),
    ("probabilities summed", beam_student(probs=True), r"your scores add probabilities: .*LOG-probabilities"),
    ("the last hypothesis", beam_student(pick="last"), r"you returned the last of the kept hypotheses, not the best"),
    ("no source mask", beam_student(src_mask="none"),
     r"case 'padded sources.*the source padding mask is missing: pass src_mask"),
    ("no mask in the cross-attention", beam_student(src_mask="encoder"), r"cross-attention does not get the source"),
    ("no mask in the encoder", beam_student(src_mask="decoder"), r"the encoder runs without the source padding mask"),
    ("PAD and BOS generated", beam_student(mask="none"), r"pad_id and bos_id are never generated"),
    ("greedy instead", lambda model, src, max_len, bos_id, eos_id, beam_size=4, length_penalty=0.6: greedy_decode(
        model, src, max_len, bos_id, eos_id), r"case 'defaults .*your output is greedy decoding's: keep the beam_size"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in BEAM_MISTAKES], ids=[m[0] for m in BEAM_MISTAKES])
def test_beam_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_beam_search(fn)


def test_beam_without_the_keyword_arguments_is_told_to_keep_the_signature():
    with raises(r"case 'padded sources.*unexpected keyword argument 'beam_size'.*keep the signature"):
        checks.check_beam_search(lambda model, src, max_len, bos_id, eos_id: beam_search(model, src, max_len, bos_id,
                                                                                          eos_id))


# ------------------------------------------------------------------------------------------------- both
def test_not_done_is_one_line():
    def greedy_decode(model, src, max_len, bos_id, eos_id):
        raise NotImplementedError()

    def beam_search(model, src, max_len, bos_id, eos_id, beam_size=4, length_penalty=0.6):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `greedy_decode` in place of"):
        checks.check_greedy_decode(greedy_decode)
    with pytest.raises(checks.ExerciseNotDone, match="write `beam_search` in place of"):
        checks.check_beam_search(beam_search)


def test_in_place_change_of_src_is_named():
    def in_place(model, src, max_len, bos_id, eos_id):
        src[src == model.config.pad_id] = 3  # "clean" the source itself
        return greedy_decode(model, src, max_len, bos_id, eos_id)

    with raises(r"changed its input `src` in place"):
        checks.check_greedy_decode(in_place)


def test_checks_are_fast_and_leave_rng_and_threads_as_they_were(capsys):
    import time

    torch.manual_seed(7)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    start = time.perf_counter()
    checks.check_greedy_decode(greedy_decode)
    checks.check_beam_search(beam_search)
    assert time.perf_counter() - start < 4.0  # 2 s each at most, on a busy CPU
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert capsys.readouterr().out.splitlines() == ["greedy_decode: all 5 cases pass", "beam_search: all 5 cases pass"]
