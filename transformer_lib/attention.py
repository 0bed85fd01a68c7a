"""Scaled dot-product attention, Eq. (1) of "Attention Is All You Need" (Sec. 3.2.1).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Mask convention (the only one in this library): a **bool** tensor, ``True`` = this query may
attend to this key, broadcastable to the scores' shape ``(..., T_q, T_k)``. Disallowed scores are
filled with ``-inf`` before the softmax, so they get exactly zero weight.

Fully masked query rows (no key allowed): the softmax of a row of ``-inf`` is ``0/0 = NaN``, which
is what a plain implementation (and ``torch.nn.MultiheadAttention`` with ``need_weights=True``)
returns. Here such a row gets **all-zero weights and an all-zero output**, with zero, finite
gradients. ``F.scaled_dot_product_attention`` returned NaN there too until PyTorch 2.5, which made it
zero such rows ("safe softmax", pytorch/pytorch#133882), so on current PyTorch the two agree.
Fully masked rows happen e.g. for a query whose keys are all padding; zeros are harmless there,
while NaN would spread to the loss and then to every parameter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .utils import _shape, check_probability, check_tensor, validate_mask

__all__ = ["scaled_dot_product_attention", "dot_product_attention"]


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, ...]:
    """Validate q, k, v and return the shape of the scores ``(..., T_q, T_k)``."""
    check_tensor(q, "q", "(..., T_q, d_k)", min_ndim=2, kind="float")
    check_tensor(k, "k", "(..., T_k, d_k)", min_ndim=2, kind="float")
    check_tensor(v, "v", "(..., T_k, d_v)", min_ndim=2, kind="float")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q (..., T_q, d_k) and k (..., T_k, d_k) must have the same last dim d_k; "
            f"got q {_shape(q.shape)} and k {_shape(k.shape)}"
        )
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            f"k (..., T_k, d_k) and v (..., T_k, d_v) must agree on every dim but the last (same T_k); "
            f"got k {_shape(k.shape)} and v {_shape(v.shape)}"
        )
    try:
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch, head) dims of q and k must be broadcastable; "
            f"got q {_shape(q.shape)} and k {_shape(k.shape)}"
        ) from None
    return (*lead, q.shape[-2], k.shape[-2])


def _attend(q, k, v, mask, scale: float, dropout_p: float):
    """Shared body of both attention functions (inputs already validated)."""
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # disallowed keys get weight exp(-inf) = 0
        has_key = mask.any(dim=-1, keepdim=True)  # (..., T_q, 1) False for fully masked rows
        scores = scores.masked_fill(~has_key, 0.0)  # a finite row: no NaN from softmax(-inf, ..., -inf)
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k) each row sums to 1 over the keys
    if mask is not None:
        weights = weights.masked_fill(~has_key, 0.0)  # documented: fully masked row -> all-zero weights
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)  # Sec. 5.4 (attention dropout)
    out = weights @ v  # (..., T_q, d_v)
    return out, weights


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention, Eq. (1): ``softmax(q k^T / sqrt(d_k)) v``.

    Args:
        q: queries.
        k: keys (same ``d_k`` as ``q``).
        v: values (same length ``T_k`` as ``k``; ``d_v`` may differ from ``d_k``).
        mask: optional bool tensor, ``True`` = may attend, broadcastable to ``(..., T_q, T_k)``.
            A query row with no allowed key gets all-zero weights and an all-zero output
            (a plain masked softmax gives NaN there; see the module docstring).
        dropout_p: dropout probability applied to the weights, only if ``> 0`` (pass ``0.0`` in
            eval mode). The returned weights are the ones actually used, i.e. after dropout.

    Shape:
        - q: ``(..., T_q, d_k)``, k: ``(..., T_k, d_k)``, v: ``(..., T_k, d_v)``
        - mask: broadcastable to ``(..., T_q, T_k)``, e.g. ``(B, 1, 1, T_k)`` or ``(T_q, T_k)``
        - out: ``(..., T_q, d_v)``, weights: ``(..., T_q, T_k)``

    Returns:
        ``(out, weights)``.

    Example:
        >>> q, k, v = torch.randn(2, 5, 16), torch.randn(2, 7, 16), torch.randn(2, 7, 32)
        >>> out, weights = scaled_dot_product_attention(q, k, v)
        >>> out.shape, weights.shape
        (torch.Size([2, 5, 32]), torch.Size([2, 5, 7]))
    """
    scores_shape = _check_qkv(q, k, v)
    validate_mask(mask, scores_shape, dims="(..., T_q, T_k)")
    dropout_p = check_probability(dropout_p, "dropout_p")
    return _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]), dropout_p)  # Eq. (1): scale by 1/sqrt(d_k)


def dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unscaled dot-product attention ``softmax(q k^T) v`` (notebook 02; Sec. 3.2.1 "dot-product").

    Same as :func:`scaled_dot_product_attention` without the ``1/sqrt(d_k)`` factor and without
    dropout. For large ``d_k`` the scores grow and the softmax saturates: that is why Eq. (1) scales.

    Args:
        q: queries. k: keys. v: values. mask: optional bool mask, ``True`` = may attend
            (fully masked rows give zero weights and zero output).

    Shape:
        - q: ``(..., T_q, d_k)``, k: ``(..., T_k, d_k)``, v: ``(..., T_k, d_v)``
        - out: ``(..., T_q, d_v)``, weights: ``(..., T_q, T_k)``

    Returns:
        ``(out, weights)``.

    Example:
        >>> x = torch.tensor([[1., 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]])
        >>> out, weights = dot_product_attention(x, x, x)
        >>> weights.shape
        torch.Size([3, 3])
    """
    scores_shape = _check_qkv(q, k, v)
    validate_mask(mask, scores_shape, dims="(..., T_q, T_k)")
    return _attend(q, k, v, mask, 1.0, 0.0)
