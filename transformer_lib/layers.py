"""Encoder and decoder layers, Sec. 3.1 and 3.3.

Each sub-layer (attention or feed-forward) is wrapped in a residual connection and layer norm.
The paper (Sec. 3.1) uses **post-norm**, the default here (``norm_first=False``):

    x = LayerNorm(x + Dropout(Sublayer(x)))

``norm_first=True`` gives **pre-norm** (used by most models since 2018; easier to train deep):

    x = x + Dropout(Sublayer(LayerNorm(x)))

A pre-norm stack needs one more LayerNorm at its end (``Transformer`` adds it). Dropout sits where
``torch.nn.TransformerEncoderLayer`` puts it (attention weights, inside the feed-forward after the
ReLU, each sub-layer's output), so with copied weights both give the same output in eval mode.
LayerNorm uses ``eps=1e-5``, torch's default.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import (_shape, check_bool, check_device, check_dim, check_positive_int, check_probability,
                          check_tensor, door, validate_mask)
from .multihead import MultiHeadAttention

__all__ = ["FeedForward", "EncoderLayer", "DecoderLayer"]

LAYER_NORM_EPS = 1e-5  # torch's default, also used by nn.TransformerEncoderLayer


def _check_x(module: nn.Module, x: torch.Tensor, name: str, dims: str = "(B, T, d_model)") -> None:
    check_tensor(x, name, dims, ndim=3, kind="float")
    check_dim(x, name, dims, -1, module.d_model, "d_model")
    check_device(next(module.parameters()).device, f"the {type(module).__name__}'s parameters", **{name: x})


def _check_ff_args(module: "FeedForward", x: torch.Tensor) -> None:
    _check_x(module, x, "x")


def _check_encoder_args(module: "EncoderLayer", x: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    _check_x(module, x, "x", "(B, S, d_model)")
    B, S, _ = x.shape
    validate_mask(mask, (B, module.self_attn.n_heads, S, S), dims="(B, H, S, S)")
    check_device(x.device, "x", mask=mask)


def _check_decoder_args(module: "DecoderLayer", x, memory, src_mask=None, tgt_mask=None) -> None:
    _check_x(module, x, "x")
    _check_x(module, memory, "memory", "(B, S, d_model)")
    if memory.shape[0] != x.shape[0]:
        raise ValueError(
            f"memory must have shape (B, S, d_model) with B = {x.shape[0]} (as x); got {_shape(memory.shape)}"
        )
    (B, T, _), S, H = x.shape, memory.shape[1], module.self_attn.n_heads
    validate_mask(tgt_mask, (B, H, T, T), name="tgt_mask", dims="(B, H, T, T)")
    validate_mask(src_mask, (B, H, T, S), name="src_mask", dims="(B, H, T, S)", per_sequence=True)
    check_device(x.device, "x", src_mask=src_mask, tgt_mask=tgt_mask)


class FeedForward(nn.Module):
    """Position-wise feed-forward network, Eq. (2): ``FFN(x) = max(0, x W_1 + b_1) W_2 + b_2``.

    Args:
        d_model: model width (input and output).
        d_ff: inner width (2048 in the base model, 4 * d_model).
        dropout: dropout after the ReLU (as in ``nn.TransformerEncoderLayer``), training mode only.

    Attributes:
        linear1: ``nn.Linear(d_model, d_ff)`` (W_1, b_1). linear2: ``nn.Linear(d_ff, d_model)`` (W_2, b_2).

    Shape:
        - x: ``(B, T, d_model)``
        - output: ``(B, T, d_model)``; each position is transformed independently.

    Example:
        >>> ff = FeedForward(d_model=16, d_ff=64)
        >>> ff(torch.randn(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        check_positive_int(d_ff, "d_ff")
        self.linear1 = nn.Linear(d_model, d_ff)  # W_1, b_1
        self.linear2 = nn.Linear(d_ff, d_model)  # W_2, b_2
        self.dropout = nn.Dropout(check_probability(dropout, "dropout"))

    @door(_check_ff_args)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.linear1(x))  # (B, T, d_ff)  Eq. (2): max(0, x W_1 + b_1)
        return self.linear2(self.dropout(h))  # (B, T, d_model)


class EncoderLayer(nn.Module):
    """One encoder layer, Sec. 3.1: self-attention then feed-forward, each with residual + LayerNorm.

    Args:
        d_model: model width.
        n_heads: attention heads (must divide ``d_model``).
        d_ff: feed-forward inner width.
        dropout: dropout on attention weights, inside the FFN and on each sub-layer output (Sec. 5.4).
        norm_first: ``False`` = post-norm as in the paper; ``True`` = pre-norm.

    Attributes:
        self_attn (MultiHeadAttention), feed_forward (FeedForward), norm1, norm2 (nn.LayerNorm),
        dropout1, dropout2 (nn.Dropout on the two sub-layer outputs).

    Shape:
        - x: ``(B, S, d_model)``
        - mask: bool, ``True`` = may attend, broadcastable to ``(B, H, S, S)``, e.g. ``padding_mask(src)``
        - output: ``(B, S, d_model)``. In eval mode the attention weights are in ``self_attn.last_weights``.

    Example:
        >>> layer = EncoderLayer(d_model=16, n_heads=4, d_ff=64)
        >>> layer(torch.randn(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False) -> None:
        super().__init__()
        self.d_model, self.norm_first = d_model, check_bool(norm_first, "norm_first")
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    @door(_check_encoder_args)
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:  # pre-norm: x + Sublayer(LayerNorm(x))
            x = x + self._sa_block(self.norm1(x), mask)
            x = x + self._ff_block(self.norm2(x))
        else:  # post-norm, Sec. 3.1: LayerNorm(x + Sublayer(x))
            x = self.norm1(x + self._sa_block(x, mask))
            x = self.norm2(x + self._ff_block(x))
        return x  # (B, S, d_model)

    def _sa_block(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attn = self.self_attn  # weights only when it keeps them (eval mode, for plots): else the fused fast path
        return self.dropout1(attn(x, x, x, mask, need_weights=attn.keeps_weights)[0])  # (B, S, d_model)  Sec. 5.4

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.feed_forward(x))  # (B, S, d_model)


class DecoderLayer(nn.Module):
    """One decoder layer, Sec. 3.1: masked self-attention, cross-attention over the encoder output, feed-forward.

    Each of the three sub-layers has a residual connection and LayerNorm (post-norm by default).

    Args:
        d_model, n_heads, d_ff, dropout, norm_first: as in :class:`EncoderLayer`.

    Attributes:
        self_attn, cross_attn (MultiHeadAttention), feed_forward (FeedForward),
        norm1, norm2, norm3 (nn.LayerNorm), dropout1, dropout2, dropout3 (nn.Dropout).

    Shape:
        - x: ``(B, T, d_model)`` (target side), memory: ``(B, S, d_model)`` (encoder output)
        - src_mask: 4-D, broadcastable to ``(B, H, T, S)``, e.g. ``padding_mask(src)`` ``(B, 1, 1, S)``
        - tgt_mask: broadcastable to ``(B, H, T, T)``, e.g. ``causal_mask(T)`` (Sec. 3.2.3)
        - output: ``(B, T, d_model)``. In eval mode: ``self_attn.last_weights``, ``cross_attn.last_weights``.

    Example:
        >>> from transformer_lib.masks import causal_mask
        >>> layer = DecoderLayer(d_model=16, n_heads=4, d_ff=64)
        >>> layer(torch.randn(2, 5, 16), torch.randn(2, 7, 16), tgt_mask=causal_mask(5)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False) -> None:
        super().__init__()
        self.d_model, self.norm_first = d_model, check_bool(norm_first, "norm_first")
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm3 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    @door(_check_decoder_args)
    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.norm_first:  # pre-norm: x + Sublayer(LayerNorm(x))
            x = x + self._sa_block(self.norm1(x), tgt_mask)
            x = x + self._ca_block(self.norm2(x), memory, src_mask)
            x = x + self._ff_block(self.norm3(x))
        else:  # post-norm, Sec. 3.1: LayerNorm(x + Sublayer(x))
            x = self.norm1(x + self._sa_block(x, tgt_mask))
            x = self.norm2(x + self._ca_block(x, memory, src_mask))
            x = self.norm3(x + self._ff_block(x))
        return x  # (B, T, d_model)

    def _sa_block(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attn = self.self_attn
        return self.dropout1(attn(x, x, x, mask, need_weights=attn.keeps_weights)[0])  # (B, T, d_model)  masked

    def _ca_block(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attn = self.cross_attn
        return self.dropout2(attn(x, memory, memory, mask, need_weights=attn.keeps_weights)[0])  # (B, T, d_model)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.feed_forward(x))  # (B, T, d_model)
