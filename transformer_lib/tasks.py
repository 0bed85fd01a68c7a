"""Synthetic sequence-to-sequence tasks: copy a sequence, or reverse it (notebooks 01 and 08).

A task needs no data set, and what a model has to learn is known exactly: a model that has learned
to copy outputs its source unchanged. The batches follow the library's token-id convention:

    0 = PAD (padding), 1 = BOS (begin of sequence), 2 = EOS (end of sequence), 3 .. V-1 = content

For a source ``x_1 .. x_n`` and its target ``y_1 .. y_n`` (``y = x`` to copy, ``x`` reversed to reverse),
a :class:`Seq2SeqBatch` holds, padded with PAD to the longest sequence of the batch:

    src      x_1  x_2  ...  x_n                  (B, S)      S = longest n
    tgt_in   BOS  y_1  ...  y_n                  (B, S + 1)  what the decoder reads (shifted right)
    tgt_out  y_1  y_2  ...  y_n  EOS             (B, S + 1)  what it must predict, position by position

so ``model(src, tgt_in)`` gives logits ``(B, S + 1, V)`` scored against ``tgt_out``, with PAD positions
left out of the loss (``ignore_index=PAD_ID``) and of :func:`token_accuracy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validation import check_device, check_positive_int, check_tensor, door

__all__ = ["PAD_ID", "BOS_ID", "EOS_ID", "FIRST_CONTENT_ID", "TASKS", "Seq2SeqBatch", "make_batch", "token_accuracy"]

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
FIRST_CONTENT_ID = 3  # content tokens are FIRST_CONTENT_ID .. vocab_size - 1
TASKS = ("copy", "reverse")


@dataclass(frozen=True)
class Seq2SeqBatch:
    """One batch of a sequence-to-sequence task (see the module docstring for the layout).

    Attributes:
        src: ``(B, S)`` long, the source, PAD after each sequence's end.
        tgt_in: ``(B, S + 1)`` long, BOS then the target: the decoder's input (teacher forcing).
        tgt_out: ``(B, S + 1)`` long, the target then EOS: what each decoder position must predict.
        lengths: ``(B,)`` long, the number of content tokens of each source.
    """

    src: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    lengths: torch.Tensor

    def to(self, device: torch.device | str) -> "Seq2SeqBatch":
        """The same batch on ``device``."""
        return Seq2SeqBatch(*(t.to(device) for t in (self.src, self.tgt_in, self.tgt_out, self.lengths)))


def _check_batch_args(task, batch_size, length, vocab_size, *, min_length=None, generator=None) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(length, "length")
    check_positive_int(vocab_size, "vocab_size")
    if vocab_size <= FIRST_CONTENT_ID:
        raise ValueError(f"vocab_size must be > {FIRST_CONTENT_ID} (ids 0, 1, 2 are PAD, BOS, EOS; content ids "
                         f"start at {FIRST_CONTENT_ID}); got {vocab_size}")
    if min_length is not None and not 1 <= check_positive_int(min_length, "min_length") <= length:
        raise ValueError(f"min_length must be between 1 and length = {length}; got {min_length}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")


@door(_check_batch_args)
def make_batch(
    task: str,
    batch_size: int,
    length: int,
    vocab_size: int,
    *,
    min_length: int | None = None,
    generator: torch.Generator | None = None,
) -> Seq2SeqBatch:
    """A batch of random sequences to copy or to reverse.

    Content tokens are drawn uniformly from ``FIRST_CONTENT_ID .. vocab_size - 1``, independently, so
    nothing in a target can be guessed from the target's own prefix: it has to come from the source.

    Args:
        task: ``"copy"`` (the target is the source) or ``"reverse"`` (the source backwards).
        batch_size: ``B``.
        length: the longest source length; every sequence has this length unless ``min_length`` is given.
        vocab_size: ``V``, counting the three special ids; ``V - 3`` content tokens.
        min_length: if given, each source length is drawn uniformly from ``min_length .. length`` and
            the batch is padded to its longest sequence.
        generator: a seeded ``torch.Generator`` for reproducible batches (default: the global one).

    Shape:
        - src: ``(B, S)``, tgt_in and tgt_out: ``(B, S + 1)``, lengths: ``(B,)``; ``S <= length``.

    Returns:
        A :class:`Seq2SeqBatch` (on the CPU; ``.to(device)`` moves it).

    Example:
        >>> batch = make_batch("reverse", 2, 4, vocab_size=10, generator=torch.Generator().manual_seed(0))
        >>> batch.src
        tensor([[7, 6, 3, 5],
                [4, 5, 9, 6]])
        >>> batch.tgt_out  # reversed, then EOS
        tensor([[5, 3, 6, 7, 2],
                [6, 9, 5, 4, 2]])
    """
    lengths = torch.full((batch_size,), length, dtype=torch.long)  # (B,)
    if min_length is not None and min_length < length:
        lengths = torch.randint(min_length, length + 1, (batch_size,), generator=generator)  # (B,)
    S = int(lengths.max())
    content = torch.randint(FIRST_CONTENT_ID, vocab_size, (batch_size, S), generator=generator)  # (B, S)
    positions = torch.arange(S)  # (S,)
    real = positions < lengths[:, None]  # (B, S) True on content, False on padding
    src = content.masked_fill(~real, PAD_ID)  # (B, S)
    if task == "reverse":  # position i of sequence b takes x[lengths[b] - 1 - i]; padding stays at the end
        index = (lengths[:, None] - 1 - positions).clamp(min=0)  # (B, S)
        target = src.gather(1, index).masked_fill(~real, PAD_ID)  # (B, S)
    else:
        target = src
    pad = torch.full((batch_size, 1), PAD_ID, dtype=torch.long)  # (B, 1)
    tgt_in = torch.cat([torch.full((batch_size, 1), BOS_ID, dtype=torch.long), target], dim=1)  # (B, S + 1)
    tgt_out = torch.cat([target, pad], dim=1)  # (B, S + 1)
    tgt_out = tgt_out.scatter(1, lengths[:, None], EOS_ID)  # (B, S + 1) EOS right after each target
    return Seq2SeqBatch(src, tgt_in, tgt_out, lengths)


def _check_accuracy_args(logits, tgt_out, pad_id=PAD_ID) -> None:
    check_tensor(logits, "logits", "(B, T, V)", ndim=3, kind="float")
    check_tensor(tgt_out, "tgt_out", "(B, T)", ndim=2, kind="int")
    if logits.shape[:2] != tgt_out.shape:
        raise ValueError(f"logits (B, T, V) and tgt_out (B, T) must agree on B and T; got logits "
                         f"{tuple(logits.shape)} and tgt_out {tuple(tgt_out.shape)}")
    if isinstance(pad_id, bool) or not isinstance(pad_id, int):
        raise TypeError(f"pad_id must be an int; got {type(pad_id).__name__} {pad_id!r}")
    check_device(logits.device, "logits", tgt_out=tgt_out)
    ids, V = tgt_out[tgt_out != pad_id] if tgt_out.device.type == "cpu" else None, logits.shape[-1]  # GPU: no sync
    if ids is not None and ids.numel() and not 0 <= int(ids.min()) <= int(ids.max()) < V:
        raise ValueError(f"tgt_out contains ids outside [0, V) = [0, {V}) (besides pad_id = {pad_id}); got min "
                         f"{int(ids.min())}, max {int(ids.max())}")


@door(_check_accuracy_args)
def token_accuracy(logits: torch.Tensor, tgt_out: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """The fraction of each sequence's target tokens (EOS included, PAD excluded) predicted right.

    A token counts as right when its largest logit is the target id. With teacher forcing (the
    decoder reads the true previous tokens), this measures each position on its own.

    Args:
        logits: the model's output. tgt_out: the targets. pad_id: positions to leave out.

    Shape:
        - logits: ``(B, T, V)``, tgt_out: ``(B, T)``
        - output: ``(B,)`` float, one fraction per sequence (``.mean()`` for the batch)

    Example:
        >>> logits = torch.tensor([[[0.0, 0, 0, 9], [0, 0, 9, 0], [9, 0, 0, 0]]])  # predicts 3, 2, 0
        >>> token_accuracy(logits, torch.tensor([[3, 3, 0]]))  # 3 right, 3 wrong, the pad left out
        tensor([0.5000])
    """
    real = tgt_out != pad_id  # (B, T)
    right = (logits.argmax(dim=-1) == tgt_out) & real  # (B, T)
    return right.sum(dim=1) / real.sum(dim=1).clamp(min=1)  # (B,)
