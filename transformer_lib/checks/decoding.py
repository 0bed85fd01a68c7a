"""Checks of notebook 11's exercises (decoding a trained model), each beside its catalogue of typical mistakes:
``greedy_decode(model, src, max_len, bos_id, eos_id)`` and ``beam_search(model, src, max_len, bos_id, eos_id,
beam_size=4, length_penalty=0.6)``, compared with :mod:`transformer_lib.decoding` (its KV cache changes the
speed, not the tokens, so a version without one passes).

Two models: a seeded random ``TransformerConfig.tiny`` (vocabulary 10, a larger EOS row of the output projection)
on which PAD and BOS are often the most probable next token and the source padding changes the output; and
:class:`_Bigram`, whose next-token logits are a table, on which the hypotheses end at many different lengths, so
that each mistake in the length penalty changes the best one. :func:`greedy_variant` and :func:`beam_variant`
decode with one switch turned to a typical mistake.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .. import decoding
from ..masks import causal_mask
from ..model import Transformer, TransformerConfig
from ._core import call, close, compare, run_cases, seeded

__all__ = ["check_greedy_decode", "check_beam_search"]

BOS, EOS = 1, 2  # config.pad_id = 0
_INF = math.inf


def _model(seed: int) -> Transformer:
    """A tiny random Transformer, untied, with a larger EOS row so that some rows end."""
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig.tiny(src_vocab_size=10, tgt_vocab_size=10, tie_embeddings=False))
    model.output_proj.weight[EOS] *= 3.0
    return model.eval()


class _Bigram(Transformer):
    """A Transformer whose next-token logits depend on the last token only, through table ``src[b, 0] - 3``
    (random, PAD and BOS at -inf); ``encode`` and ``decode`` take the library's arguments."""

    def __init__(self, seed: int) -> None:
        super().__init__(TransformerConfig.tiny(src_vocab_size=12, tgt_vocab_size=12))
        torch.manual_seed(seed)
        self.tables = torch.randn(8, 12, 12) * 2.0  # (table, last token, next token)
        self.tables[..., EOS] += 1.0
        self.tables[..., :2] = -_INF  # PAD and BOS

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        memory = torch.zeros(*src.shape, self.config.d_model)  # (B, S, d_model)
        memory[..., 0] = src[:, :1] - 3.0  # each row carries the number of its table
        return memory

    def decode(self, tgt: Tensor, memory: Tensor, src_mask: Tensor | None = None,
               tgt_mask: Tensor | None = None) -> Tensor:
        return self.tables[memory[:, :1, 0].long(), tgt]  # (B, T, V)


def _batch(seed: int, B: int = 4, S: int = 7, padded: bool = False) -> Tensor:
    torch.manual_seed(seed)
    src = torch.randint(3, 10, (B, S))  # (B, S)
    if padded:
        for b in range(1, B):
            src[b, S - 2 * b:] = 0  # rows 1.. end with 2, 4, ... pads
    return src


def _tables(*numbers: int) -> Tensor:  # (B, 3): row b uses table numbers[b] of a _Bigram
    return torch.tensor(numbers)[:, None].repeat(1, 3) + 3


def _encode(model: Transformer, src: Tensor, src_mask: str) -> tuple[Tensor, Tensor | None]:
    """memory and the cross-attention mask, with the source padding mask where ``src_mask`` says."""
    mask = model.make_src_mask(src)  # (B, 1, 1, S)
    memory = model.encode(src, mask if src_mask in ("both", "encoder") else None)  # (B, S, d_model)
    return memory, mask if src_mask in ("both", "decoder") else None


# ------------------------------------------------------------------------------------------ greedy_decode
def greedy_variant(model: Transformer, src: Tensor, max_len: int, bos_id: int, eos_id: int, *,
                   src_mask: str = "both", never: tuple[str, ...] = ("pad", "bos"), dim: int = -1,
                   position: int = -1, after_eos: str = "pad", stop: bool = True) -> Tensor:
    """The library's greedy decoding with one switch turned to a typical mistake."""
    pad = model.config.pad_id
    memory, cross = _encode(model, src, src_mask)
    banned = [{"pad": pad, "bos": bos_id}[name] for name in never]
    ys = torch.full((src.shape[0], 1), bos_id)  # (B, 1)
    done = torch.zeros(src.shape[0], dtype=torch.bool)  # (B,)
    for _ in range(max_len - 1):
        logits = model.decode(ys, memory, cross, causal_mask(ys.shape[1]))  # (B, t, V)
        logits[..., banned] = -_INF
        nxt = logits.argmax(dim=-1)[:, position] if dim == -1 else logits.argmax(dim=1)[:, -1]  # (B,)
        if after_eos != "continue":
            nxt = nxt.masked_fill(done, pad if after_eos == "pad" else eos_id)
        ys = torch.cat([ys, nxt[:, None]], dim=1)  # (B, t + 1)
        done = done | (nxt == eos_id)
        if stop and bool(done.all()):
            break
    return ys


_NO_PAD = "after its EOS a row holds only pad_id (model.config.pad_id)"
GREEDY_MISTAKES = [  # (diagnosis, greedy_variant switches)
    (f"tokens after EOS: {_NO_PAD}, not what the model predicts next", dict(after_eos="continue", stop=False)),
    (f"tokens after EOS: {_NO_PAD}, not what the model predicts next", dict(after_eos="continue")),
    (f"{_NO_PAD}, not eos_id", dict(after_eos="eos")),
    ("stop as soon as every row has produced EOS: your output goes on with columns of padding", dict(stop=False)),
    ("argmax over the wrong dim: the next token is the argmax over the vocabulary, logits[:, -1].argmax(dim=-1)",
     dict(dim=1)),
    ("you took the logits of the first position: the next token comes from the LAST one, logits[:, -1] "
     "(position t predicts token t + 1)", dict(position=0)),
    ("the source padding mask is missing: pass src_mask = model.make_src_mask(src) to model.encode AND "
     "model.decode", dict(src_mask="none")),
    ("the decoder's cross-attention does not get the source padding mask: pass src_mask to model.decode too",
     dict(src_mask="encoder")),
    ("the encoder runs without the source padding mask: pass src_mask to model.encode too", dict(src_mask="decoder")),
    ("pad_id and bos_id are never generated: set their logits to -inf before the argmax", dict(never=())),
    ("bos_id must never be generated either: set its logit to -inf too", dict(never=("pad",))),
    ("pad_id (model.config.pad_id) must never be generated either: set its logit to -inf too", dict(never=("bos",))),
]


def _rows(got: Tensor, bos_id: int, eos_id: int, pad: int) -> str | None:
    """What is wrong with the rows themselves: BOS first, no PAD/BOS before EOS, only PAD after it."""
    if not (got[:, 0] == bos_id).all():
        return "every row must start with bos_id: output[:, 0] == bos_id (keep BOS in the output)"
    for row in got.tolist():
        end = row.index(eos_id) if eos_id in row else len(row)
        if {pad, bos_id} & set(row[1:end]):
            return "pad_id and bos_id are never generated: set their logits to -inf before choosing"
        if set(row[end + 1:]) - {pad}:
            return f"tokens after EOS: {_NO_PAD}"
    return None


def _compare_output(got: object, expected: Tensor, variants: list, bos_id: int, eos_id: int, pad: int,
                    inputs: str) -> None:
    def structural(g: Tensor) -> str | None:
        return _rows(g, bos_id, eos_id, pad) if g.ndim == 2 and g.shape[1] and not g.is_floating_point() else None

    def shape_hint(shape: tuple[int, ...]) -> str:
        if isinstance(got, Tensor) and len(shape) == 2 and shape[0] == expected.shape[0]:
            message = structural(got)
            if message:
                return message
            if shape[1] > expected.shape[1] and (got[:, expected.shape[1]:] == pad).all():
                return "stop as soon as every row has produced EOS: your output goes on with columns of padding"
            if shape[1] > expected.shape[1]:
                return "max_len counts BOS: the output has at most max_len tokens, BOS included"
        return "expected (B, L): BOS, the generated tokens, then pad_id after EOS, L <= max_len"

    compare(got, expected, what="the output", variants=variants, structural=[structural], dtype=torch.long,
            shape_hint=shape_hint, dtype_hint="token ids are torch.long", inputs=inputs)


def check_greedy_decode(fn: Callable) -> None:
    """Check ``greedy_decode(model, src, max_len, bos_id, eos_id) -> (B, L)`` long against the library's."""
    with seeded():
        cases = [  # (name, (model, src, max_len))
            ("B=4, no padding, max_len=12", (_model(0), _batch(1), 12)),
            ("rows that end at different steps (a table model, B=4), max_len=12",
             (_Bigram(18), _tables(0, 1, 2, 6), 12)),
            ("padded sources (B=4, rows 1-3 end with 2, 4, 6 pads), max_len=12",
             (_model(0), _batch(2, padded=True), 12)),
            ("max_len=4: the rows are cut before their EOS", (_model(0), _batch(1), 4)),
            ("one sentence (B=1), another model, max_len=12", (_model(3), _batch(5, B=1), 12)),
        ]
        run_cases("greedy_decode", cases, lambda case: _greedy_case(fn, *case))


def _greedy_case(fn: Callable, model: Transformer, src: Tensor, max_len: int) -> None:
    got = call(fn, model, src, max_len, BOS, EOS, names=["model", "src", "max_len", "bos_id", "eos_id"])
    expected = decoding.greedy_decode(model, src, max_len, BOS, EOS)
    variants = [("every row must start with bos_id: keep BOS as the output's first column", lambda: expected[:, 1:])]
    variants += [(message, lambda kw=kw: greedy_variant(model, src, max_len, BOS, EOS, **kw))
                 for message, kw in GREEDY_MISTAKES]
    variants.append(("max_len counts BOS: the output has at most max_len tokens, BOS included (max_len - 1 steps)",
                     lambda: greedy_variant(model, src, max_len + 1, BOS, EOS)))
    inputs = f"src={src.tolist()}, max_len={max_len}, bos_id={BOS}, eos_id={EOS}, pad_id=0"
    _compare_output(got, expected, variants, BOS, EOS, model.config.pad_id, inputs)


# -------------------------------------------------------------------------------------------- beam_search
def _penalty(n: int, alpha: float, lp: str) -> float:
    """Length penalty of a hypothesis with ``n`` tokens after BOS (EOS included), right or mistaken."""
    gnmt = ((5 + n) / 6) ** alpha  # GNMT (Wu et al., 2016, Sec. 7)
    return {"gnmt": gnmt, "live": gnmt, "length": n**alpha, "bos": ((6 + n) / 6) ** alpha,
            "exponent": (5 + n) / 6, "multiply": 1 / gnmt}[lp]


def beam_variant(model: Transformer, src: Tensor, max_len: int, bos_id: int, eos_id: int, beam_size: int = 4,
                 length_penalty: float = 0.6, *, lp: str = "gnmt", reorder: bool = True, probs: bool = False,
                 pick: str = "best", src_mask: str = "both", never: str = "log_probs") -> Tensor:
    """The library's beam search, one source at a time, with one switch turned to a typical mistake."""
    k, V, pad = beam_size, model.config.tgt_vocab_size, model.config.pad_id
    best = []
    for s in src[:, None]:  # (1, S) each
        memory, cross = _encode(model, s, src_mask)
        memory = memory.expand(k, -1, -1)  # (k, S, d_model)
        ys = torch.full((k, 1), bos_id)  # (k, 1)
        scores = torch.tensor([0.0] + [-_INF] * (k - 1))  # (k,)  only beam 0 is alive at first
        finished: list[tuple[float, list[int]]] = []  # (score, ids)
        norm = 1.0
        for t in range(1, max_len):
            logits = model.decode(ys, memory, cross, causal_mask(t))[:, -1]  # (k, V)
            if never == "logits":
                logits[:, [pad, bos_id]] = -_INF
            step = logits.softmax(-1) if probs else logits.log_softmax(-1)  # (k, V)
            if never == "log_probs":
                step[:, [pad, bos_id]] = -_INF
            norm = 1.0 if lp == "live" else _penalty(t, length_penalty, lp)
            cand = scores[:, None] + step  # (k, V)
            if lp == "live":  # the running scores themselves get divided, again at every step
                cand = cand / _penalty(t, length_penalty, lp)
            top, idx = cand.flatten().topk(min(2 * k, k * V))  # (2k,)
            parent, token = idx // V, idx % V  # (2k,)
            finished += [(top[r].item() / norm, ys[parent[r]].tolist() + [eos_id]) for r in range(k)
                         if token[r] == eos_id and top[r] > -_INF]
            keep = (token != eos_id).nonzero()[:k, 0]  # (k,)  the best k that do not end
            scores = top[keep]  # (k,)
            ys = torch.cat([ys[parent[keep]] if reorder else ys, token[keep, None]], dim=1)  # (k, t + 1)
            finished = sorted(finished, key=lambda h: -h[0])[:k]
            if len(finished) == k and finished[-1][0] >= scores[0].item() / norm:
                break
        else:  # max_len reached: the live prefixes compete, unfinished
            finished += [(x / norm, ids) for x, ids in zip(scores.tolist(), ys.tolist())]
        ranked = [h for h in sorted(finished, key=lambda h: -h[0]) if h[0] > -_INF][:k]
        best.append(ranked[0][1] if pick == "best" else ranked[-1][1])
    out = torch.full((len(best), max(map(len, best))), pad)  # (B, L)
    for b, ids in enumerate(best):
        out[b, :len(ids)] = torch.tensor(ids)
    return out


_GNMT = "lp(Y) = ((5 + |Y|) / 6) ** alpha (GNMT), |Y| = the tokens after BOS, EOS included"
BEAM_MISTAKES = [  # (diagnosis, beam_variant switches); the first four are quick to rule out on the table model
    ("the source padding mask is missing: pass src_mask = model.make_src_mask(src) to model.encode AND "
     "model.decode", dict(src_mask="none")),
    ("the decoder's cross-attention does not get the source padding mask: pass src_mask to model.decode too",
     dict(src_mask="encoder")),
    ("the encoder runs without the source padding mask: pass src_mask to model.encode too", dict(src_mask="decoder")),
    ("pad_id and bos_id are never generated: set their log-probabilities to -inf", dict(never="none")),
    (f"length_penalty (alpha) is ignored: rank the finished hypotheses by log P(Y|X) / lp(Y), {_GNMT}",
     dict(length_penalty=0.0)),
    (f"the length penalty is not |Y| ** alpha: {_GNMT}", dict(lp="length")),
    (f"|Y| counts BOS in your length penalty: {_GNMT}", dict(lp="bos")),
    (f"the exponent alpha is lost: {_GNMT}, with the parentheses (** binds tighter than /)", dict(lp="exponent")),
    (f"divide the score by the length penalty, do not multiply: log P(Y|X) / lp(Y), {_GNMT}", dict(lp="multiply")),
    ("the length penalty is applied to the running scores of the live beams: keep log P(prefix|X) as it is in "
     "the beam; divide by lp(Y) only to rank hypotheses (finished ones, and the live ones at max_len)",
     dict(lp="live")),
    ("the beams are not reordered: each kept candidate continues its PARENT's prefix, ys[parent]; yours appends "
     "its token to whichever row it landed in", dict(reorder=False)),
    ("your scores add probabilities: a prefix's score is a sum of LOG-probabilities (log_softmax), "
     "log P(Y|X) = sum_t log p(y_t | y_<t, X)", dict(probs=True)),
    ("you returned the last of the kept hypotheses, not the best: return the one with the highest score",
     dict(pick="last")),
]


def check_beam_search(fn: Callable) -> None:
    """Check ``beam_search(model, src, max_len, bos_id, eos_id, beam_size=4, length_penalty=0.6) -> (B, L)``.

    The algorithm of :func:`transformer_lib.decoding.beam_search`: per step the ``2 * beam_size`` best candidates,
    an EOS among the first ``beam_size`` finished, the best ``beam_size`` others live. PAD and BOS masked before
    or after the log-softmax both pass, and so does decoding on without the early stop."""
    with seeded():
        cases = [  # (name, (model, src, max_len, keyword arguments or None for the defaults))
            ("defaults (beam_size=4, length_penalty=0.6): 8 sentences whose hypotheses end at different lengths "
             "(a table model), max_len=9", (_Bigram(18), _tables(*range(8)), 9, None)),
            ("padded sources (B=4), beam_size=3, length_penalty=1.0",
             (_model(0), _batch(2, padded=True), 12, dict(beam_size=3, length_penalty=1.0))),
            ("length_penalty=0.0 (plain log-probability), B=5",
             (_model(3), _batch(4, B=5), 10, dict(beam_size=4, length_penalty=0.0))),
            ("beam_size=1 is greedy decoding (padded sources)",
             (_model(3), _batch(6, padded=True), 12, dict(beam_size=1, length_penalty=0.6))),
            ("max_len=5: the live hypotheses compete with the finished ones", (_model(0), _batch(1), 5, None)),
        ]
        run_cases("beam_search", cases, lambda case: _beam_case(fn, *case))


def _beam_case(fn: Callable, model: Transformer, src: Tensor, max_len: int, kwargs: dict | None) -> None:
    got = call(fn, model, src, max_len, BOS, EOS, names=["model", "src", "max_len", "bos_id", "eos_id"],
               **(kwargs or {}))
    settings = {"beam_size": 4, "length_penalty": 0.6, **(kwargs or {})}
    expected = decoding.beam_search(model, src, max_len, BOS, EOS, **settings)
    if isinstance(got, Tensor) and not close(got, expected) and close(
            got, beam_variant(model, src, max_len, BOS, EOS, **settings, never="logits")):
        return  # PAD and BOS masked before the log-softmax (their probability shared by the others): right too
    variants = [(message, lambda kw=kw: beam_variant(model, src, max_len, BOS, EOS, **{**settings, **kw}))
                for message, kw in BEAM_MISTAKES]
    if settings["beam_size"] == 1:
        variants = [(m, v) for m, v in variants if "parent" not in m]  # one beam: nothing to reorder
    else:
        variants.append(("your output is greedy decoding's: keep the beam_size best prefixes at each step, not just "
                         "the best one", lambda: decoding.greedy_decode(model, src, max_len, BOS, EOS)))
    inputs = f"src={src.tolist()}, max_len={max_len}, " + ", ".join(f"{k}={v}" for k, v in settings.items())
    _compare_output(got, expected, variants, BOS, EOS, model.config.pad_id, inputs)
