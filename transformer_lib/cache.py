"""The KV cache: decode one token at a time without recomputing the prefix (notebook 12).

At step ``t`` the plain decoder (:meth:`Transformer.decode` over the whole prefix) recomputes the keys
and values of tokens ``0 .. t-1`` in every layer, although they did not change: a causal mask means
token ``i`` never looks at later tokens, so its keys and values are final once it is computed.
:class:`IncrementalDecoder` keeps them:

- self-attention: the keys and values of earlier steps are cached per layer, ``(N, H, t, d_head)``,
  and each step appends the new token's one row;
- cross-attention: the keys and values of the encoder output are computed once, at the start.

A step then runs the decoder layers on ONE position (``(N, 1, d_model)``) instead of ``t``. The
sub-layers are the model's own modules, called in the order of :class:`~transformer_lib.layers.DecoderLayer`'s
forward (post-norm or pre-norm), in eval mode (no dropout): the logits equal those of ``decode``
up to float rounding. Beam search reorders its beams; :meth:`IncrementalDecoder.reorder` reorders the cache with them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import _shape, check_device, check_dim, check_tensor, check_token_ids, door, validate_mask
from .layers import DecoderLayer
from .model import Transformer
from .multihead import MultiHeadAttention, merge_heads, split_heads

__all__ = ["IncrementalDecoder"]


def _keys_values(mha: MultiHeadAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected keys and values of ``x``, split into heads: ``(N, L, d_model) -> 2 x (N, H, L, d_head)``."""
    return split_heads(mha.k_proj(x), mha.n_heads), split_heads(mha.v_proj(x), mha.n_heads)


def _attend(mha: MultiHeadAttention, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
            mask: torch.Tensor | None) -> torch.Tensor:
    """Multi-head attention of ``query`` over keys/values already projected: MultiHeadAttention.forward
    without recomputing ``k`` and ``v``."""
    q = split_heads(mha.q_proj(query), mha.n_heads)  # (N, H, 1, d_head)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, H, 1, d_head)  fused: no weights needed
    return mha.out_proj(merge_heads(out))  # (N, 1, d_model)


def _check_init_args(state: "IncrementalDecoder", model: Transformer, memory: torch.Tensor,
                     src_mask: torch.Tensor | None = None) -> None:
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a transformer_lib.model.Transformer; got {type(model).__name__}")
    check_tensor(memory, "memory", "(N, S, d_model)", ndim=3, kind="float")
    check_dim(memory, "memory", "(N, S, d_model)", -1, model.config.d_model, "d_model")
    N, S, _ = memory.shape
    validate_mask(src_mask, (N, model.config.n_heads, 1, S), name="src_mask", dims="(N, H, 1, S)", per_sequence=True)
    check_device(model.src_embed.weight.device, "the model's parameters", memory=memory, src_mask=src_mask)


def _check_step_args(state: "IncrementalDecoder", ids: torch.Tensor) -> None:
    check_tensor(ids, "ids", "(N,)", ndim=1)
    check_token_ids(ids[None], "ids", "(N,)", state.model.config.tgt_vocab_size)  # dtype long, ids in range
    check_dim(ids, "ids", "(N,)", 0, state.keys[0].shape[0], "N (the rows of memory)")
    check_device(state.keys[0].device, "the cache", ids=ids)


def _check_reorder_args(state: "IncrementalDecoder", index: torch.Tensor) -> None:
    N = state.keys[0].shape[0]
    check_tensor(index, "index", "(N,)", ndim=1, kind="int")
    check_device(state.keys[0].device, "the cache", index=index)
    if index.numel() and index.device.type == "cpu" and not 0 <= int(index.min()) <= int(index.max()) < N:
        raise ValueError(f"index must hold rows of the cache, in [0, N = {N}); got min {int(index.min())}, "
                         f"max {int(index.max())} (shape {_shape(index.shape)})")


class IncrementalDecoder:
    """Decoder state of a :class:`~transformer_lib.model.Transformer` for one token at a time.

    Args:
        model: the Transformer (used in eval mode: dropout is not applied).
        memory: the encoder output. src_mask: its padding mask (``None`` = no masking).

    Shape:
        - memory: ``(N, S, d_model)``, src_mask: 4-D, broadcastable to ``(N, H, 1, S)``, e.g. ``(N, 1, 1, S)``
        - :meth:`step`: token ids ``(N,)`` -> logits ``(N, tgt_vocab_size)`` of the next token

    Example:
        >>> from transformer_lib.model import TransformerConfig
        >>> from transformer_lib.masks import causal_mask
        >>> model = Transformer(TransformerConfig.tiny()).eval()
        >>> src, tgt = torch.randint(1, 32, (2, 6)), torch.randint(1, 32, (2, 4))
        >>> memory = model.encode(src)
        >>> state = IncrementalDecoder(model, memory)
        >>> steps = torch.stack([state.step(tgt[:, t]) for t in range(4)], dim=1)  # (2, 4, 32)
        >>> full = model.decode(tgt, memory, tgt_mask=causal_mask(4))  # (2, 4, 32)
        >>> torch.allclose(steps, full, atol=1e-5)
        True
    """

    @door(_check_init_args)
    def __init__(self, model: Transformer, memory: torch.Tensor, src_mask: torch.Tensor | None = None) -> None:
        self.model, self.src_mask, self.t = model, src_mask, 0
        # Cross-attention: the encoder output does not change, so its keys and values are computed once.
        self.cross = [_keys_values(layer.cross_attn, memory) for layer in model.decoder_layers]
        # Self-attention: keys and values of the tokens so far, (N, H, t, d_head) per layer; empty at first.
        N, H, d_head = memory.shape[0], model.config.n_heads, model.config.d_head
        empty = memory.new_zeros(N, H, 0, d_head)  # (N, H, 0, d_head)
        self.keys: list[torch.Tensor] = [empty] * len(model.decoder_layers)
        self.values: list[torch.Tensor] = [empty] * len(model.decoder_layers)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.tgt_embed(ids[:, None]) * math.sqrt(m.config.d_model)  # (N, 1, d_model)  Sec. 3.4
        return x + m.pos_encoding.pe[self.t].to(x.dtype)  # (N, 1, d_model)  + PE of position t

    def _self_attend(self, i: int, layer: DecoderLayer, x: torch.Tensor) -> torch.Tensor:
        k_new, v_new = _keys_values(layer.self_attn, x)  # 2 x (N, H, 1, d_head)  the new token only
        self.keys[i] = torch.cat([self.keys[i], k_new], dim=2)  # (N, H, t + 1, d_head)
        self.values[i] = torch.cat([self.values[i], v_new], dim=2)  # (N, H, t + 1, d_head)
        # The newest token may attend to every cached one: the causal mask has nothing to hide here.
        return _attend(layer.self_attn, x, self.keys[i], self.values[i], None)  # (N, 1, d_model)

    def _layer_step(self, i: int, layer: DecoderLayer, x: torch.Tensor) -> torch.Tensor:
        """DecoderLayer.forward for one position (eval mode: the dropouts are identities)."""
        k, v = self.cross[i]
        if layer.norm_first:  # pre-norm: x + Sublayer(LayerNorm(x))
            x = x + self._self_attend(i, layer, layer.norm1(x))
            x = x + _attend(layer.cross_attn, layer.norm2(x), k, v, self.src_mask)
            x = x + layer.feed_forward(layer.norm3(x))
        else:  # post-norm, Sec. 3.1: LayerNorm(x + Sublayer(x))
            x = layer.norm1(x + self._self_attend(i, layer, x))
            x = layer.norm2(x + _attend(layer.cross_attn, x, k, v, self.src_mask))
            x = layer.norm3(x + layer.feed_forward(x))
        return x  # (N, 1, d_model)

    @door(_check_step_args)
    @torch.no_grad()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed the token at position ``t`` (one per row); return the logits of the token at ``t + 1``.

        Shape:
            - ids: ``(N,)`` long
            - output: ``(N, tgt_vocab_size)``
        """
        if self.t >= self.model.config.max_len:
            raise ValueError(f"the cache is full: config.max_len = {self.model.config.max_len} positions")
        x = self._embed(ids)  # (N, 1, d_model)
        for i, layer in enumerate(self.model.decoder_layers):
            x = self._layer_step(i, layer, x)  # (N, 1, d_model)
        self.t += 1
        x = self.model.decoder_norm(x)  # (N, 1, d_model)
        return self.model.output_proj(x)[:, 0]  # (N, tgt_vocab_size)

    @door(_check_reorder_args)
    def reorder(self, index: torch.Tensor) -> None:
        """Keep row ``index[n]`` as the new row ``n`` of every cached tensor (beam search's reordering).

        Shape:
            - index: ``(N,)`` long, rows of the current cache
        """
        self.keys = [k.index_select(0, index) for k in self.keys]  # (N, H, t, d_head) each
        self.values = [v.index_select(0, index) for v in self.values]  # (N, H, t, d_head) each
        self.cross = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.cross]
        if self.src_mask is not None and self.src_mask.shape[0] > 1:
            self.src_mask = self.src_mask.index_select(0, index)  # (N, 1, 1, S)


def uses_library_decode(model: nn.Module) -> bool:
    """Whether ``model`` decodes with :meth:`Transformer.decode` itself (a subclass that overrides it
    computes something else, which the cache would not reproduce)."""
    return getattr(model.decode, "__func__", None) is Transformer.decode  # a bound method of the library's decode
