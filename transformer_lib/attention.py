"""Scaled dot-product attention, Eq. (1) of "Attention Is All You Need" (Sec. 3.2.1).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Mask convention (the only one in this library): a **bool** tensor, ``True`` = this query may
attend to this key, broadcastable to the scores' shape ``(..., T_q, T_k)``, with 1, 2 or all their dims
(a 2-D mask is ``(T_q, T_k)``; see :func:`~transformer_lib.masks.validate_mask`). Disallowed scores are
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
from torch import nn

from ._validation import (_shape, check_device, check_positive_int, check_probability, check_tensor, door,
                          validate_mask)

__all__ = ["scaled_dot_product_attention", "dot_product_attention", "SelfAttention"]


def _check_attention_args(q, k, v, mask=None, dropout_p=0.0, scale=None) -> None:
    """Validate the arguments of :func:`scaled_dot_product_attention` (and of the unscaled version)."""
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
    validate_mask(mask, (*lead, q.shape[-2], k.shape[-2]), dims="(..., T_q, T_k)")
    check_device(q.device, "q", k=k, v=v, mask=mask)
    check_probability(dropout_p, "dropout_p")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise TypeError(f"scale must be a float (or None for 1/sqrt(d_k)); got {type(scale).__name__} {scale!r}")


@door(_check_attention_args)
def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
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
        scale: factor applied to the scores; ``None`` (the default) is Eq. (1)'s ``1 / sqrt(d_k)``,
            as in ``F.scaled_dot_product_attention``. :func:`dot_product_attention` passes ``1.0``.

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
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])  # Eq. (1): divide by sqrt(d_k)
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T_q, T_k)  scores[i, j] = q_i . k_j / sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # disallowed keys get weight exp(-inf) = 0
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k)  each row sums to 1 over the keys
    if mask is not None:
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)  # a row with no allowed key: 0/0 -> 0
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)  # Sec. 5.4: dropout on the attention weights
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


@door(_check_attention_args)
def dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unscaled dot-product attention ``softmax(q k^T) v`` (notebook 02; Sec. 3.2.1 "dot-product").

    :func:`scaled_dot_product_attention` with ``scale=1.0``. For large ``d_k`` the scores grow and the
    softmax saturates: that is why Eq. (1) scales.

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
    return scaled_dot_product_attention(q, k, v, mask, scale=1.0)


def _check_self_attention_args(module: "SelfAttention", x, mask=None) -> None:
    check_tensor(x, "x", "(..., T, d_model)", min_ndim=2, kind="float")
    if x.shape[-1] != module.W_q.shape[0]:
        raise ValueError(
            f"x must have shape (..., T, d_model) with d_model = {module.W_q.shape[0]}; got shape {_shape(x.shape)}"
        )
    check_device(module.W_q.device, "the module's parameters", x=x)
    validate_mask(mask, (*x.shape[:-1], x.shape[-2]), dims="(..., T, T)")
    check_device(x.device, "x", mask=mask)


class SelfAttention(nn.Module):
    """Single-head self-attention with learned projections: Eq. (1) on ``x W_q``, ``x W_k``, ``x W_v``.

    The module version of notebook 02's worked example: queries, keys and values are computed from
    the same input by three matrices, in the row-vector convention of the notebooks (``Q = x @ W_q``).
    Multi-head attention (notebook 05) runs several of these side by side.

    Args:
        d_model: width of the input.
        d_k: width of queries and keys.
        d_v: width of values and of the output (default ``d_k``).

    Attributes:
        W_q, W_k: ``(d_model, d_k)`` parameters. W_v: ``(d_model, d_v)``. Initialised uniformly in
        ``(-1/sqrt(d_model), 1/sqrt(d_model))``, as ``nn.Linear``.

    Shape:
        - x: ``(..., T, d_model)``; mask: bool, ``True`` = may attend, broadcastable to ``(..., T, T)``
        - out: ``(..., T, d_v)``, weights: ``(..., T, T)``

    Example:
        >>> attn = SelfAttention(d_model=4, d_k=3)
        >>> out, weights = attn(torch.randn(2, 5, 4))
        >>> out.shape, weights.shape
        (torch.Size([2, 5, 3]), torch.Size([2, 5, 5]))
    """

    def __init__(self, d_model: int, d_k: int, d_v: int | None = None) -> None:
        super().__init__()
        d_v = d_k if d_v is None else d_v
        for value, name in ((d_model, "d_model"), (d_k, "d_k"), (d_v, "d_v")):
            check_positive_int(value, name)
        bound = 1.0 / math.sqrt(d_model)
        self.W_q = nn.Parameter(torch.empty(d_model, d_k).uniform_(-bound, bound))  # W^Q
        self.W_k = nn.Parameter(torch.empty(d_model, d_k).uniform_(-bound, bound))  # W^K
        self.W_v = nn.Parameter(torch.empty(d_model, d_v).uniform_(-bound, bound))  # W^V

    @door(_check_self_attention_args)
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = x @ self.W_q, x @ self.W_k, x @ self.W_v  # (..., T, d_k), (..., T, d_k), (..., T, d_v)
        return scaled_dot_product_attention(q, k, v, mask)  # (..., T, d_v), (..., T, T)
