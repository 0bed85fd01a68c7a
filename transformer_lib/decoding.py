"""Generating output sequences from a trained :class:`~transformer_lib.model.Transformer`.

The model is auto-regressive (Sec. 3): it produces one token at a time, each conditioned on the
tokens produced so far. The source is encoded once; the decoder is re-run over the growing prefix
(simple and correct; a KV cache, notebook 12, avoids the recomputation).
"""

from __future__ import annotations

import torch

from .masks import causal_mask
from .model import Transformer
from .utils import check_positive_int, check_token_ids

__all__ = ["greedy_decode"]


def _check_id(value: int, name: str, vocab_size: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be an int token id in [0, {vocab_size}); got {value!r}")


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int) -> torch.Tensor:
    """Greedy decoding: at each step append the most probable next token.

    The model is run in eval mode (no dropout) and restored to its previous mode afterwards.
    Decoding stops when every sequence has produced ``eos_id`` or the output has ``max_len``
    tokens; after its EOS a sequence is filled with ``model.config.pad_id``.

    Args:
        model: a :class:`~transformer_lib.model.Transformer`.
        src: source token ids (padded with ``config.pad_id``).
        max_len: maximum output length, BOS included (``<= config.max_len``).
        bos_id: id that starts every output. eos_id: id that ends a sequence.

    Shape:
        - src: ``(B, S)`` long
        - output: ``(B, L)`` long with ``L <= max_len``; ``output[:, 0] == bos_id``.

    Returns:
        The generated ids, BOS first; EOS included where it was produced.

    Example:
        >>> from transformer_lib.model import Transformer, TransformerConfig
        >>> model = Transformer(TransformerConfig.tiny())
        >>> out = greedy_decode(model, torch.randint(3, 32, (2, 6)), max_len=8, bos_id=1, eos_id=2)
        >>> out.shape[0], out.shape[1] <= 8, out[:, 0].tolist()
        (2, True, [1, 1])
    """
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a transformer_lib.model.Transformer; got {type(model).__name__}")
    c = model.config
    check_token_ids(src, "src", "(B, S)", c.src_vocab_size)
    check_positive_int(max_len, "max_len")
    if max_len > c.max_len:
        raise ValueError(f"max_len must be <= config.max_len = {c.max_len}; got {max_len}")
    _check_id(bos_id, "bos_id", c.tgt_vocab_size)
    _check_id(eos_id, "eos_id", c.tgt_vocab_size)

    was_training = model.training
    model.eval()
    try:
        B = src.shape[0]
        src_mask = model.make_src_mask(src)  # (B, 1, 1, S)
        memory = model.encode(src, src_mask)  # (B, S, d_model)  encoded once
        ys = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)  # (B,)
        for _ in range(max_len - 1):
            # Causal mask only: the prefix has no padding we must hide (pads only follow EOS).
            logits = model.decode(ys, memory, src_mask, causal_mask(ys.shape[1], device=src.device))  # (B, t, V)
            next_id = logits[:, -1].argmax(dim=-1)  # (B,)
            next_id = next_id.masked_fill(done, c.pad_id)  # finished sequences get padding
            ys = torch.cat([ys, next_id[:, None]], dim=1)  # (B, t + 1)
            done = done | (next_id == eos_id)
            if bool(done.all()):
                break
        return ys
    finally:
        model.train(was_training)
