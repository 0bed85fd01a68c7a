"""Batches for training a translator: sentences of similar lengths together, so little of a batch is padding.

A batch is padded to its longest sentence; drawn at random, a batch of 20-token sentences with one
of 60 tokens is two-thirds padding. :func:`length_batches` sorts the sentences by length inside
windows of about 100 batches and fills each batch up to a token budget (``max_tokens``, padding
included), as the paper's batches of "approximately 25000 source tokens and 25000 target tokens"
(Sec. 5.1); :func:`collate` pads one batch and shifts the target for teacher forcing.

Example:
    >>> length_batches([3, 9, 4, 8, 3], max_tokens=12, seed=0, epoch=0)
    [[0, 4, 2], [3], [1]]
    >>> src, tgt_in, tgt_out = collate([[1, 5, 2]], [[1, 7, 8, 2]], pad_id=0)
    >>> tgt_in.tolist(), tgt_out.tolist()
    ([[1, 7, 8]], [[7, 8, 2]])
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ._validation import check_positive_int
from .tokenizer import pad_rows

__all__ = ["collate", "length_batches"]


def length_batches(lengths: Sequence[int], max_tokens: int, *, seed: int, epoch: int) -> list[list[int]]:
    """Indices grouped into batches of similar lengths, ``len(batch) * longest <= max_tokens``.

    The examples are shuffled, sorted by length inside windows of 100 batches (so a batch pads little
    yet the epoch stays random), cut into batches, and the batches shuffled; the same ``(seed, epoch)``
    gives the same batches.
    """
    check_positive_int(max_tokens, "max_tokens")
    if isinstance(lengths, str) or not isinstance(lengths, Sequence) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in lengths):
        raise ValueError(f"lengths must be a list of positive ints (ids per example); got {str(lengths)[:60]}")
    for value, name in ((seed, "seed"), (epoch, "epoch")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = max(1, 100 * max_tokens // max(1, int(sum(lengths) / max(1, len(lengths)))))
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batch: list[int] = []
        for i in chunk:
            if batch and (len(batch) + 1) * max(lengths[j] for j in (batch[-1], i)) > max_tokens:
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(src_rows: Sequence[list[int]], tgt_rows: Sequence[list[int]], pad_id: int):
    """Pad id lists to ``src (B, S)``, ``tgt_in (B, T)`` (BOS ...) and ``tgt_out (B, T)`` (... EOS)."""
    if len(src_rows) != len(tgt_rows) or not src_rows:
        raise ValueError(f"src_rows and tgt_rows must hold the same number (>= 1) of rows; got {len(src_rows)} "
                         f"and {len(tgt_rows)}")
    if min(map(len, tgt_rows)) < 2 or min(map(len, src_rows)) < 1:
        raise ValueError("each target row needs at least 2 ids (<bos> ... <eos>: the decoder reads one, predicts the "
                         "next) and each source row at least 1")
    tgt = pad_rows(tgt_rows, pad_id)  # (B, T + 1)
    return pad_rows(src_rows, pad_id), tgt[:, :-1], tgt[:, 1:]  # teacher forcing: predict token t+1 from tokens <= t
