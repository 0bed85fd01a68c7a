"""Attention masks (Sec. 3.1 "masking" in the decoder; padding).

One convention everywhere in this library: a **bool** mask, ``True`` = this query may attend to
this key, broadcastable to the scores' shape ``(B, H, T_q, T_k)``; disallowed scores are filled
with ``-inf`` before the softmax. Masks combine with ``&``: ``padding_mask(tgt, pad) & causal_mask(T)``
is ``(B, 1, T, T)``.

``torch.nn.MultiheadAttention`` / ``nn.Transformer*Layer`` use the opposite polarity for bool masks
(``True`` = NOT allowed). :func:`to_torch_attn_mask` is the one place where we flip it.
"""

from __future__ import annotations

import torch

from ._validation import check_positive_int, check_tensor, door, validate_mask

__all__ = ["padding_mask", "causal_mask", "validate_mask", "to_torch_attn_mask"]


def _check_padding_args(tokens, pad_id) -> None:
    check_tensor(tokens, "tokens", "(B, T)", ndim=2, kind="int")
    if isinstance(pad_id, bool) or not isinstance(pad_id, int):
        raise TypeError(f"pad_id must be an int; got {type(pad_id).__name__} {pad_id!r}")


@door(_check_padding_args)
def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mask that lets every query attend to every non-padding key.

    Args:
        tokens: token ids.
        pad_id: the id of the padding token.

    Shape:
        - tokens: ``(B, T)``
        - output: ``(B, 1, 1, T)`` bool, broadcasts over heads ``H`` and queries ``T_q``.

    Returns:
        ``True`` where ``tokens != pad_id``.

    Example:
        >>> padding_mask(torch.tensor([[5, 6, 0, 0]]), pad_id=0)
        tensor([[[[ True,  True, False, False]]]])
    """
    return (tokens != pad_id)[:, None, None, :]  # (B, 1, 1, T)


@door(lambda size, device=None: check_positive_int(size, "size"))
def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Causal ("look-ahead") mask of the decoder's self-attention, Sec. 3.2.3.

    Position ``i`` may attend to positions ``j <= i``: ``True`` on and below the diagonal.

    Args:
        size: sequence length ``T``.
        device: where to create the mask (default: CPU).

    Shape:
        - output: ``(T, T)`` bool, broadcasts to ``(B, H, T, T)``.

    Example:
        >>> causal_mask(3)
        tensor([[ True, False, False],
                [ True,  True, False],
                [ True,  True,  True]])
    """
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()  # (T, T)


def to_torch_attn_mask(mask: torch.Tensor, shape: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Convert our mask (``True`` = may attend) to PyTorch's bool ``attn_mask`` (``True`` = NOT allowed).

    For ``nn.MultiheadAttention(attn_mask=...)``, ``nn.TransformerEncoderLayer(src_mask=...)`` and
    ``nn.TransformerDecoderLayer(tgt_mask=..., memory_mask=...)``, which accept ``(T_q, T_k)`` or
    ``(B * H, T_q, T_k)``. This is the only place in the library that flips the polarity.

    Args:
        mask: our bool mask. A ``(T_q, T_k)`` mask needs nothing else; any other shape
            (e.g. ``(B, 1, 1, T_k)`` from :func:`padding_mask`) needs ``shape``.
        shape: ``(B, H, T_q, T_k)``; the mask is broadcast to it and reshaped to ``(B * H, T_q, T_k)``.

    Shape:
        - output: ``(T_q, T_k)`` if ``shape`` is ``None``, else ``(B * H, T_q, T_k)``.

    Example:
        >>> to_torch_attn_mask(causal_mask(2))
        tensor([[False,  True],
                [False, False]])
        >>> pad = padding_mask(torch.tensor([[1, 0]]), 0)  # (1, 1, 1, 2)
        >>> to_torch_attn_mask(pad, shape=(1, 4, 3, 2)).shape
        torch.Size([4, 3, 2])
    """
    if shape is None:
        check_tensor(mask, "mask", "(T_q, T_k) (pass shape=(B, H, T_q, T_k) for other shapes)", ndim=2)
        validate_mask(mask, mask.shape, dims="(T_q, T_k)")
        return ~mask  # (T_q, T_k) True = NOT allowed
    if len(shape) != 4:
        raise ValueError(f"shape must be (B, H, T_q, T_k); got {shape!r}")
    validate_mask(mask, shape)
    B, H, T_q, T_k = shape
    full = mask.expand(B, H, T_q, T_k)  # (B, H, T_q, T_k)
    return ~full.reshape(B * H, T_q, T_k)  # (B * H, T_q, T_k) True = NOT allowed

