"""Generating output sequences from a trained :class:`~transformer_lib.model.Transformer`.

The model is auto-regressive (Sec. 3): it produces one token at a time, each conditioned on the
tokens produced so far. The source is encoded once. With ``use_cache=False`` the decoder is re-run
over the whole growing prefix (simple and correct: what the course teaches first); with
``use_cache=True`` (the default) a KV cache (:class:`~transformer_lib.cache.IncrementalDecoder`,
notebook 12) feeds only the newest token and reuses the keys and values of the earlier ones.

Two strategies share the same arguments, validation and output format: :func:`greedy_decode`
keeps the single most probable token at each step; :func:`beam_search` keeps the ``beam_size``
most probable prefixes, as the paper does for translation (Sec. 6.1).

Neither ever generates ``config.pad_id`` or ``bos_id``: a model gives them some probability (an untrained
one as much as any token), yet a ``<pad>`` or a second ``<bos>`` in an output means nothing. Their logits
are set to ``-inf`` before greedy's argmax; beam search sets their log-probabilities to ``-inf`` after the
log-softmax (as fairseq does), so a hypothesis keeps the model's own log-probability as its score. When
``pad_id == bos_id`` that one id is masked; ``eos_id`` never is, even if it shares its id with one of them.
A source longer than ``config.max_len`` is an error (the positional encoding has no row for it): cut it
first, e.g. ``tokenizer.encode_batch(texts, max_len=config.max_len)``, as ``translator.translate`` does.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ._validation import _shape, check_bool, check_device, check_positive_int, check_token_ids, door
from .cache import IncrementalDecoder, uses_library_decode
from .masks import causal_mask
from .model import Transformer

__all__ = ["greedy_decode", "beam_search"]


def _check_id(value: int, name: str, vocab_size: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be an int token id in [0, {vocab_size}); got {value!r}")


def _check_decode_args(model: Transformer, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int,
                       use_cache: bool = True) -> None:
    """The checks every decoder shares (at the door: the model's encode/decode inside do not re-check)."""
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a transformer_lib.model.Transformer; got {type(model).__name__}")
    c = model.config
    check_token_ids(src, "src", "(B, S)", c.src_vocab_size)
    if 0 in src.shape:  # nothing to translate: the tokenizer's rows hold <bos> and <eos>
        raise ValueError(f"src must hold at least one sequence of at least one token; got shape {_shape(src.shape)}")
    check_device(model.src_embed.weight.device, "the model's parameters", src=src)
    if src.shape[1] > c.max_len:  # the encoder would run out of positional-encoding rows
        raise ValueError(
            f"src is longer than config.max_len = {c.max_len}: got shape {_shape(src.shape)}, {src.shape[1]} tokens "
            f"per row. Truncate the sources first, e.g. tokenizer.encode_batch(texts, max_len={c.max_len}) "
            "(translator.translate does it and warns)")
    check_positive_int(max_len, "max_len")
    if max_len > c.max_len:
        raise ValueError(f"max_len must be <= config.max_len = {c.max_len}; got {max_len}")
    _check_id(bos_id, "bos_id", c.tgt_vocab_size)
    _check_id(eos_id, "eos_id", c.tgt_vocab_size)
    check_bool(use_cache, "use_cache")


def _check_beam_args(model, src, max_len, bos_id, eos_id, beam_size=4, length_penalty=0.6, use_cache=True) -> None:
    _check_decode_args(model, src, max_len, bos_id, eos_id, use_cache)
    check_positive_int(beam_size, "beam_size")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real):
        raise TypeError(f"length_penalty must be a float >= 0; got {type(length_penalty).__name__} {length_penalty!r}")
    if not (math.isfinite(length_penalty) and length_penalty >= 0):
        raise ValueError(f"length_penalty must be a finite float >= 0 (the paper uses 0.6); got {length_penalty}")


@contextmanager
def _eval_mode(model: Transformer) -> Iterator[None]:
    """Run the block in eval mode (no dropout), then restore the model's previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _next_token_logits(
    model: Transformer, ys: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor
) -> torch.Tensor:
    """Logits of the token that follows each prefix in ``ys``: ``(N, t) -> (N, V)``."""
    # Causal mask only: the prefix has no padding we must hide (pads only follow EOS).
    logits = model.decode(ys, memory, src_mask, causal_mask(ys.shape[1], device=ys.device))  # (N, t, V)
    return logits[:, -1]  # (N, V)


def _stepper(model: Transformer, memory: torch.Tensor, src_mask: torch.Tensor, use_cache: bool):
    """``next_logits(ys) -> (N, V)``: with the KV cache (feeds ``ys[:, -1]`` only) or by recomputation.

    The cache reproduces :meth:`Transformer.decode`; a subclass that overrides ``decode`` is run without it.
    Returns ``(next_logits, cache)``, ``cache`` None without one."""
    if use_cache and uses_library_decode(model):
        cache = IncrementalDecoder(model, memory, src_mask)
        return (lambda ys: cache.step(ys[:, -1])), cache  # (N, V)
    return (lambda ys: _next_token_logits(model, ys, memory, src_mask)), None  # (N, V)


def _never_generated(model: Transformer, bos_id: int, eos_id: int, device: torch.device) -> torch.Tensor:
    """``(V,)`` bool, True at ``pad_id`` and ``bos_id``, never at ``eos_id`` (a sequence must be able to end)."""
    never = torch.zeros(model.config.tgt_vocab_size, dtype=torch.bool, device=device)  # (V,)
    never[[model.config.pad_id, bos_id]] = True
    never[eos_id] = False
    return never


@door(_check_decode_args)
@torch.no_grad()
def greedy_decode(
    model: Transformer, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int, use_cache: bool = True
) -> torch.Tensor:
    """Greedy decoding: at each step append the most probable next token.

    The model is run in eval mode (no dropout) and restored to its previous mode afterwards.
    Decoding stops when every sequence has produced ``eos_id`` or the output has ``max_len``
    tokens; after its EOS a sequence is filled with ``model.config.pad_id``. ``pad_id`` and ``bos_id``
    are never chosen (their logits are set to ``-inf``).

    Args:
        model: a :class:`~transformer_lib.model.Transformer`.
        src: source token ids (padded with ``config.pad_id``), at most ``config.max_len`` per row.
        max_len: maximum output length, BOS included (``<= config.max_len``).
        bos_id: id that starts every output. eos_id: id that ends a sequence.
        use_cache: ``True`` = KV cache (one new position per step); ``False`` = re-run the decoder over
            the whole prefix at each step. Both give the same tokens.

    Shape:
        - src: ``(B, S)`` long
        - output: ``(B, L)`` long with ``L <= max_len``; ``output[:, 0] == bos_id``.

    Returns:
        The generated ids, BOS first; EOS included where it was produced.

    Raises:
        ValueError: ``S > config.max_len`` (truncate the source), or ``max_len > config.max_len``.

    Example:
        >>> from transformer_lib.model import Transformer, TransformerConfig
        >>> model = Transformer(TransformerConfig.tiny())
        >>> out = greedy_decode(model, torch.randint(3, 32, (2, 6)), max_len=8, bos_id=1, eos_id=2)
        >>> out.shape[0], out.shape[1] <= 8, out[:, 0].tolist()
        (2, True, [1, 1])
    """
    c = model.config
    with _eval_mode(model):
        B = src.shape[0]
        src_mask = model.make_src_mask(src)  # (B, 1, 1, S)
        memory = model.encode(src, src_mask)  # (B, S, d_model)  encoded once
        ys = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)  # (B,)
        next_logits, _ = _stepper(model, memory, src_mask, use_cache)
        never = _never_generated(model, bos_id, eos_id, src.device)  # (V,)  pad_id, bos_id
        for _ in range(max_len - 1):
            next_id = next_logits(ys).masked_fill(never, -math.inf).argmax(dim=-1)  # (B,)  never PAD or BOS
            next_id = next_id.masked_fill(done, c.pad_id)  # finished sequences get padding
            ys = torch.cat([ys, next_id[:, None]], dim=1)  # (B, t + 1)
            done = done | (next_id == eos_id)
            if bool(done.all()):
                break
        return ys


def _length_penalty(length: int, alpha: float) -> float:
    """Length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha of GNMT (Wu et al., 2016, Sec. 7), used in Sec. 6.1."""
    return ((5 + length) / 6) ** alpha


@door(_check_beam_args)
@torch.no_grad()
def beam_search(
    model: Transformer,
    src: torch.Tensor,
    max_len: int,
    bos_id: int,
    eos_id: int,
    beam_size: int = 4,
    length_penalty: float = 0.6,
    use_cache: bool = True,
) -> torch.Tensor:
    """Beam search: keep the ``beam_size`` most probable prefixes per source at each step.

    The paper decodes with beam size 4 and length penalty alpha = 0.6 (Sec. 6.1), the defaults here.
    A hypothesis ``Y`` (the tokens after BOS, EOS included) is ranked by the GNMT score
    ``log P(Y | X) / lp(Y)`` with ``lp(Y) = ((5 + |Y|) / 6) ** alpha`` (GNMT: Wu et al., 2016, Sec. 7; no
    coverage penalty). ``alpha = 0`` ranks by plain log-probability, which favours short outputs.
    ``pad_id`` and ``bos_id`` are never generated: their log-probabilities are set to ``-inf``.

    Each step extends every live prefix by every token and keeps the best ``2 * beam_size``
    candidates; an EOS candidate among the first ``beam_size`` is set aside as a finished hypothesis,
    the best ``beam_size`` others stay live. A source is done when it has ``beam_size`` finished
    hypotheses that all score at least as well as its best live prefix scores now (with ``alpha = 0``
    a live score can only fall, so stopping then loses nothing; with ``alpha > 0`` it is the usual
    heuristic). Decoding stops when every source is done or the output has ``max_len`` tokens; then
    the live prefixes of the sources not done compete too, unfinished, as in :func:`greedy_decode`.
    With ``beam_size=1`` the result is exactly :func:`greedy_decode`'s.

    The source is encoded once and repeated for the beams. With ``use_cache=True`` the KV cache is
    reordered with the beams at each step (a beam's cache follows its parent's). The model runs
    in eval mode (no dropout)
    without gradients, and is restored to its previous mode afterwards.

    Args:
        model: a :class:`~transformer_lib.model.Transformer`.
        src: source token ids (padded with ``config.pad_id``).
        max_len: maximum output length, BOS included (``<= config.max_len``).
        bos_id: id that starts every output. eos_id: id that ends a sequence.
        beam_size: number of prefixes kept per source (``>= 1``).
        length_penalty: ``alpha >= 0`` of the length penalty.
        use_cache: ``True`` = KV cache; ``False`` = recompute the prefix at each step (same tokens).

    Shape:
        - src: ``(B, S)`` long
        - output: ``(B, L)`` long with ``L <= max_len``; ``output[:, 0] == bos_id``.

    Returns:
        The best hypothesis per source, BOS first, EOS included where it was produced, then
        ``config.pad_id`` up to the longest one (the format of :func:`greedy_decode`).

    Example:
        >>> from transformer_lib.model import Transformer, TransformerConfig
        >>> model = Transformer(TransformerConfig.tiny())
        >>> out = beam_search(model, torch.randint(3, 32, (2, 6)), max_len=8, bos_id=1, eos_id=2)
        >>> out.shape[0], out.shape[1] <= 8, out[:, 0].tolist()
        (2, True, [1, 1])
    """
    c, k = model.config, int(beam_size)
    alpha, V, device = float(length_penalty), c.tgt_vocab_size, src.device

    with _eval_mode(model):
        B = src.shape[0]
        src_mask = model.make_src_mask(src)  # (B, 1, 1, S)
        memory = model.encode(src, src_mask)  # (B, S, d_model)  encoded once
        memory = memory.repeat_interleave(k, dim=0)  # (B*k, S, d_model)  row b*k + j: beam j of source b
        src_mask = src_mask.repeat_interleave(k, dim=0)  # (B*k, 1, 1, S)
        ys = torch.full((B * k, 1), bos_id, dtype=torch.long, device=device)  # (B*k, 1)
        # log P(prefix | X). Only beam 0 is alive at first: the others (-inf) would copy it.
        scores = torch.full((B, k), -math.inf, device=device)  # (B, k)
        scores[:, 0] = 0.0
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]  # per source: (score, ids), best first
        done = [False] * B
        n_cand = min(2 * k, k * V)  # at most one EOS per beam: 2k candidates leave k non-EOS ones
        next_logits, cache = _stepper(model, memory, src_mask, use_cache)
        never = _never_generated(model, bos_id, eos_id, device)  # (V,)  pad_id, bos_id
        first_row = torch.arange(B, device=device)[:, None] * k  # (B, 1)  row of beam 0 of each source

        for t in range(1, max_len):  # the prefixes have t tokens; the candidates t + 1
            log_probs = next_logits(ys).log_softmax(dim=-1).masked_fill(never, -math.inf)  # (B*k, V)  no PAD, BOS
            cand = scores[:, :, None] + log_probs.view(B, k, V)  # (B, k, V)  log P(prefix + token | X)
            top_scores, top_idx = cand.view(B, k * V).topk(n_cand, dim=-1)  # (B, n_cand)  best first
            beam_idx, token = top_idx // V, top_idx % V  # (B, n_cand), (B, n_cand)
            is_eos = token == eos_id  # (B, n_cand)

            lp = _length_penalty(t, alpha)  # |Y| = t: the tokens after BOS, EOS included
            ys_by_source = ys.view(B, k, t)  # (B, k, t)
            for b, r in (is_eos[:, :k] & (top_scores[:, :k] > -math.inf)).nonzero().tolist():
                if not done[b]:
                    ids = ys_by_source[b, beam_idx[b, r]].tolist() + [eos_id]
                    finished[b].append((top_scores[b, r].item() / lp, ids))

            # The best k non-EOS candidates stay live (a stable sort keeps them in score order).
            keep = is_eos.long().argsort(dim=-1, stable=True)[:, :k]  # (B, k)
            scores = top_scores.gather(1, keep)  # (B, k)
            parent = beam_idx.gather(1, keep)  # (B, k)
            ys = ys_by_source.gather(1, parent[:, :, None].expand(B, k, t))  # (B, k, t)
            ys = torch.cat([ys, token.gather(1, keep)[:, :, None]], dim=2).view(B * k, t + 1)  # (B*k, t + 1)
            if cache is not None:  # each kept beam continues its parent's cache
                cache.reorder((first_row + parent).view(B * k))

            for b in range(B):
                finished[b] = sorted(finished[b], key=lambda h: -h[0])[:k]
                best_live = scores[b, 0].item() / lp
                done[b] = done[b] or (len(finished[b]) == k and finished[b][-1][0] >= best_live)
            if all(done):
                break

        # Sources not done reached max_len: their unfinished prefixes compete with the finished hypotheses.
        lp = _length_penalty(ys.shape[1] - 1, alpha)
        for b in range(B):
            if not done[b]:
                live = [(s / lp, ids) for s, ids in zip(scores[b].tolist(), ys.view(B, k, -1)[b].tolist())]
                finished[b] = sorted(finished[b] + live, key=lambda h: -h[0])

        best = [finished[b][0][1] for b in range(B)]  # B lists of ids
        out = torch.full((B, max(map(len, best))), c.pad_id, dtype=torch.long, device=device)  # (B, L)
        for b, ids in enumerate(best):
            out[b, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
        return out
