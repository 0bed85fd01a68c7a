"""Attention masks (Sec. 3.1 "masking" in the decoder; padding).

One convention everywhere in this library: a **bool** mask, ``True`` = this query may attend to
this key, broadcastable to the scores' shape ``(B, H, T_q, T_k)``; disallowed scores are filled
with ``-inf`` before the softmax. Masks combine with ``&``: :func:`decoder_mask` is
``padding_mask(tgt, pad) & causal_mask(T)``, of shape ``(B, 1, T, T)``. A mask has 1, 2 or all 4 dims: a
2-D mask is ``(T_q, T_k)``, shared by every sequence (broadcasting aligns the last dims), so a per-sequence
(padding) mask is 4-D; :func:`validate_mask` refuses the shapes that broadcasting would misread.

``torch.nn.MultiheadAttention`` / ``nn.Transformer*Layer`` use the opposite polarity for bool masks
(``True`` = NOT allowed). :func:`to_torch_attn_mask` is the one place where we flip it.
"""

from __future__ import annotations

import numbers

import torch

from ._validation import check_positive_int, check_tensor, door, validate_mask

__all__ = ["padding_mask", "causal_mask", "decoder_mask", "validate_mask", "to_torch_attn_mask"]


def _check_padding_args(tokens, pad_id, name: str = "tokens") -> None:
    check_tensor(tokens, name, "(B, T)", ndim=2, kind="int")
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


def _check_causal_args(size, device=None) -> None:
    check_positive_int(size, "size")
    try:
        torch.device(device) if device is not None else None
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, a torch.device or a name such as 'cpu' or 'cuda'; "
                         f"got {device!r}") from None


@door(_check_causal_args)
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


def _check_decoder_args(tgt, pad_id) -> None:
    _check_padding_args(tgt, pad_id, name="tgt")


@door(_check_decoder_args)
def decoder_mask(tgt: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mask of the decoder's self-attention: no padding key and no future key, Sec. 3.2.3.

    Query ``i`` of sequence ``b`` may attend to key ``j`` if ``j <= i`` and ``tgt[b, j]`` is not padding.
    A padded query still gets a row (it may see the real tokens before it); the loss ignores its output.
    With left padding, the first queries may see no key at all (an all-False row).

    Args:
        tgt: target token ids (the decoder's input).
        pad_id: the id of the padding token.

    Shape:
        - tgt: ``(B, T)``
        - output: ``(B, 1, T, T)`` bool, broadcasts over the heads ``H``.

    Example:
        >>> decoder_mask(torch.tensor([[5, 6, 0]]), pad_id=0).int()
        tensor([[[[1, 0, 0],
                  [1, 1, 0],
                  [1, 1, 0]]]], dtype=torch.int32)
    """
    keys = padding_mask(tgt, pad_id)  # (B, 1, 1, T)  True where the key is a real token
    past = causal_mask(tgt.shape[1], device=tgt.device)  # (T, T)  True where key j <= query i
    return keys & past  # (B, 1, T, T)  broadcasting: (B, 1, 1, T) & (T, T)


def _check_to_torch_args(mask, shape=None) -> None:
    if shape is None:
        check_tensor(mask, "mask", "(T_q, T_k) (pass shape=(B, H, T_q, T_k) for other shapes)", ndim=2)
        validate_mask(mask, mask.shape, dims="(T_q, T_k)")
        return
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 4 or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ValueError(f"shape must be (B, H, T_q, T_k), four positive ints; got {shape!r}")
    validate_mask(mask, tuple(shape))


@door(_check_to_torch_args)
def to_torch_attn_mask(mask: torch.Tensor, shape: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Convert our mask (``True`` = may attend) to PyTorch's bool ``attn_mask`` (``True`` = NOT allowed).

    For ``nn.MultiheadAttention(attn_mask=...)``, ``nn.TransformerEncoderLayer(src_mask=...)`` and
    ``nn.TransformerDecoderLayer(tgt_mask=..., memory_mask=...)``, which accept ``(T_q, T_k)`` or
    ``(B * H, T_q, T_k)`` (batch-major: row ``b * H + h`` is sequence ``b``, head ``h``) and do not
    broadcast. This is the only place in the library that flips the polarity.
    (``F.scaled_dot_product_attention`` needs no adapter: its bool ``attn_mask`` means "may attend", as ours.)

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
        return ~mask  # (T_q, T_k)  True = NOT allowed
    B, H, T_q, T_k = shape
    full = mask.expand(B, H, T_q, T_k)  # (B, H, T_q, T_k)
    return ~full.reshape(B * H, T_q, T_k)  # (B * H, T_q, T_k)  True = NOT allowed; row b * H + h
