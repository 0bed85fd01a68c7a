"""The full encoder-decoder Transformer, Sec. 3 and Figure 1, and its configuration.

    src ids -> Embedding * sqrt(d_model) + PE -> N x EncoderLayer                      -> memory
    tgt ids -> Embedding * sqrt(d_model) + PE -> N x DecoderLayer(memory) -> Linear    -> logits

``Transformer.forward(src, tgt)`` builds the masks itself from ``config.pad_id``; ``encode`` and
``decode`` take explicit masks, where ``None`` means "no masking" as everywhere in this library
(use ``make_src_mask`` / ``make_tgt_mask`` to build the usual ones).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from ._validation import _shape, check_device, check_dim, check_tensor, check_token_ids, door, validate_mask
from .layers import LAYER_NORM_EPS, DecoderLayer, EncoderLayer
from .masks import decoder_mask, padding_mask
from .positional import PositionalEncoding

__all__ = ["TransformerConfig", "Transformer"]


@dataclass(frozen=True)
class TransformerConfig:
    """Hyper-parameters of a :class:`Transformer`; the defaults are the paper's base model (Table 3).

    Args:
        src_vocab_size: source vocabulary size. The paper uses one shared BPE vocabulary of about
            37000 tokens for English-German (Sec. 5.1), hence 37000 for both sides.
        tgt_vocab_size: target vocabulary size.
        d_model: model width (512).
        n_heads: attention heads ``h`` (8); must divide ``d_model``.
        n_encoder_layers, n_decoder_layers: ``N`` (6 each).
        d_ff: feed-forward inner width (2048).
        dropout: ``P_drop`` (0.1), Sec. 5.4.
        max_len: longest sequence accepted (512). The paper fixes none (sinusoids extend to any
            length); 512 covers the course's data. Raise it for longer inputs.
        pad_id: id of the padding token (0); padded positions are masked out.
        norm_first: ``False`` = post-norm as in the paper; ``True`` = pre-norm (adds a final LayerNorm).
        tie_embeddings: share ONE weight matrix between the source embedding, the target embedding
            and the output projection, as in Sec. 3.4 (needs ``src_vocab_size == tgt_vocab_size``).

    Presets: :meth:`tiny` (tests, seconds on CPU), :meth:`small` (CPU notebooks), :meth:`base` (the paper).
    Any preset accepts keyword overrides.

    Example:
        >>> cfg = TransformerConfig.tiny(src_vocab_size=12, tgt_vocab_size=12)
        >>> cfg.d_model, cfg.d_head
        (32, 16)
    """

    src_vocab_size: int = 37000
    tgt_vocab_size: int = 37000
    d_model: int = 512
    n_heads: int = 8
    n_encoder_layers: int = 6
    n_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    max_len: int = 512
    pad_id: int = 0
    norm_first: bool = False
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        # The constraints a user can actually break, each with the reason.
        sizes = ("src_vocab_size", "tgt_vocab_size", "d_model", "n_heads", "n_encoder_layers", "n_decoder_layers",
                 "d_ff", "max_len")
        for name in sizes:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"TransformerConfig.{name} must be a positive int; got {value!r}")
            object.__setattr__(self, name, int(value))  # a NumPy integer becomes a plain int (frozen dataclass)
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model (each head gets d_head = d_model / n_heads dims); "
                             f"got d_model={self.d_model}, n_heads={self.n_heads}")
        if self.d_model % 2:
            raise ValueError(f"d_model must be even (the sinusoidal encoding pairs dims 2i, 2i+1); got {self.d_model}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"TransformerConfig.dropout must be a float in [0, 1); got {self.dropout!r}")
        smallest, pad = min(self.src_vocab_size, self.tgt_vocab_size), self.pad_id
        if isinstance(pad, bool) or not isinstance(pad, numbers.Integral) or not 0 <= pad < smallest:
            raise ValueError(f"pad_id must be a valid id in both vocabularies [0, {smallest}); got {self.pad_id!r}")
        for name in ("norm_first", "tie_embeddings"):  # a str such as "no" would be truthy
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TransformerConfig.{name} must be True or False; got {getattr(self, name)!r}")
        if self.tie_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError("tie_embeddings=True shares one matrix between source, target and output (Sec. 3.4), so "
                             f"it needs src_vocab_size == tgt_vocab_size; got {self.src_vocab_size} and "
                             f"{self.tgt_vocab_size}. Use one shared vocabulary or tie_embeddings=False.")

    @property
    def d_head(self) -> int:
        """Width of one head, ``d_model // n_heads`` (the paper's d_k = d_v = 64)."""
        return self.d_model // self.n_heads

    @classmethod
    def tiny(cls, **overrides: Any) -> "TransformerConfig":
        """Tiny model for tests and checks: d_model 32, 2 heads, 2+2 layers, d_ff 64, no dropout, vocab 32."""
        return cls._preset(dict(src_vocab_size=32, tgt_vocab_size=32, d_model=32, n_heads=2, n_encoder_layers=2,
                                n_decoder_layers=2, d_ff=64, dropout=0.0, max_len=64), overrides)

    @classmethod
    def small(cls, **overrides: Any) -> "TransformerConfig":
        """Small model for CPU notebooks: d_model 128, 4 heads, 2+2 layers, d_ff 512, dropout 0.1, vocab 8000."""
        return cls._preset(dict(src_vocab_size=8000, tgt_vocab_size=8000, d_model=128, n_heads=4, n_encoder_layers=2,
                                n_decoder_layers=2, d_ff=512, dropout=0.1, max_len=256), overrides)

    @classmethod
    def base(cls, **overrides: Any) -> "TransformerConfig":
        """The paper's base model (Table 3): d_model 512, 8 heads, 6+6 layers, d_ff 2048, dropout 0.1 (~63M params)."""
        return cls._preset({}, overrides)

    @classmethod
    def _preset(cls, values: dict, overrides: dict) -> "TransformerConfig":
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            names = [f.name for f in fields(cls)]
            raise TypeError(f"unknown TransformerConfig field(s) {sorted(unknown)}; fields: {names}")
        return cls(**{**values, **overrides})

    def replace(self, **changes: Any) -> "TransformerConfig":
        """A copy with some fields changed (the config is frozen): ``cfg.replace(dropout=0.0)``."""
        return replace(self, **changes)


# ---------------------------------------------------------------------- validation at the door
# Run once per call from outside (see transformer_lib._validation.door); the layers inside trust them.

def _check_ids(model: "Transformer", ids: torch.Tensor, name: str, dims: str, vocab_size: int) -> None:
    check_token_ids(ids, name, dims, vocab_size)
    if not 0 < ids.shape[1] <= model.config.max_len:  # the tokenizer's rows hold <bos> or <eos>: never empty
        what = "is longer than" if ids.shape[1] else "must hold at least one token per sequence, and at most"
        raise ValueError(f"{name} {what} config.max_len = {model.config.max_len}; got {_shape(ids.shape)}")
    check_device(model.src_embed.weight.device, "the model's parameters", **{name: ids})


def _check_forward_args(model: "Transformer", src: torch.Tensor, tgt: torch.Tensor) -> None:
    _check_ids(model, src, "src", "(B, S)", model.config.src_vocab_size)
    _check_ids(model, tgt, "tgt", "(B, T)", model.config.tgt_vocab_size)
    if src.shape[0] != tgt.shape[0]:
        raise ValueError(f"src (B, S) and tgt (B, T) must have the same batch size B; got {_shape(src.shape)}, "
                         f"{_shape(tgt.shape)}")


def _check_encode_args(model: "Transformer", src: torch.Tensor, src_mask: torch.Tensor | None = None) -> None:
    _check_ids(model, src, "src", "(B, S)", model.config.src_vocab_size)
    B, S = src.shape
    validate_mask(src_mask, (B, model.config.n_heads, S, S), name="src_mask", dims="(B, H, S, S)", per_sequence=True)
    check_device(src.device, "src", src_mask=src_mask)


def _check_decode_args(model: "Transformer", tgt, memory, src_mask=None, tgt_mask=None) -> None:
    c = model.config
    _check_ids(model, tgt, "tgt", "(B, T)", c.tgt_vocab_size)
    check_tensor(memory, "memory", "(B, S, d_model)", ndim=3, kind="float")
    check_dim(memory, "memory", "(B, S, d_model)", -1, c.d_model, "d_model")
    check_dim(memory, "memory", "(B, S, d_model)", 0, tgt.shape[0], "B (batch size of tgt)")
    (B, T), S = tgt.shape, memory.shape[1]
    validate_mask(tgt_mask, (B, c.n_heads, T, T), name="tgt_mask", dims="(B, H, T, T)")
    validate_mask(src_mask, (B, c.n_heads, T, S), name="src_mask", dims="(B, H, T, S)", per_sequence=True)
    check_device(tgt.device, "tgt", memory=memory, src_mask=src_mask, tgt_mask=tgt_mask)


class Transformer(nn.Module):
    """The encoder-decoder Transformer of Sec. 3 (Figure 1).

    Token embeddings are multiplied by ``sqrt(d_model)`` (Sec. 3.4), then the sinusoidal positional
    encoding is added and dropout applied (Sec. 3.5, 5.4). A final LayerNorm after each stack exists only
    when ``norm_first=True`` (pre-norm leaves the residual stream un-normalised; in post-norm the last
    layer already ends with a LayerNorm. Note ``nn.Transformer`` adds them in both cases).
    With ``tie_embeddings`` the source embedding, target embedding and output projection are one matrix.

    Init: the embedding matrix is ``N(0, 1/d_model)`` so that after the ``sqrt(d_model)`` scale its
    entries have unit variance, like the positional encoding; other matrices are Xavier-uniform (as
    ``nn.Transformer``); biases as ``nn.Linear``; LayerNorm weight 1, bias 0.

    Args:
        config: a :class:`TransformerConfig`.

    Attributes:
        src_embed, tgt_embed (nn.Embedding, the same object when tied), pos_encoding (PositionalEncoding),
        encoder_layers, decoder_layers (nn.ModuleList), encoder_norm, decoder_norm (LayerNorm or Identity),
        output_proj (nn.Linear(d_model, tgt_vocab_size, bias=False); weight shared when tied).

    Shape:
        - src: ``(B, S)`` long, tgt: ``(B, T)`` long
        - output: logits ``(B, T, tgt_vocab_size)``, in training and in inference alike.

    Example:
        >>> model = Transformer(TransformerConfig.tiny())
        >>> src, tgt = torch.randint(1, 32, (2, 7)), torch.randint(1, 32, (2, 5))
        >>> model(src, tgt).shape
        torch.Size([2, 5, 32])
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a TransformerConfig; got {type(config).__name__}")
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = self.src_embed if c.tie_embeddings else nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.pos_encoding = PositionalEncoding(c.d_model, c.max_len, c.dropout)
        layer_args = (c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first)
        self.encoder_layers = nn.ModuleList([EncoderLayer(*layer_args) for _ in range(c.n_encoder_layers)])
        self.decoder_layers = nn.ModuleList([DecoderLayer(*layer_args) for _ in range(c.n_decoder_layers)])
        if c.norm_first:  # pre-norm leaves the residual stream un-normalised: normalise the stack's output
            self.encoder_norm = nn.LayerNorm(c.d_model, eps=LAYER_NORM_EPS)
            self.decoder_norm = nn.LayerNorm(c.d_model, eps=LAYER_NORM_EPS)
        else:  # post-norm: every layer already ends with a LayerNorm
            self.encoder_norm, self.decoder_norm = nn.Identity(), nn.Identity()
        self.output_proj = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)  # pre-softmax linear, Sec. 3.4
        self._reset_parameters()
        if c.tie_embeddings:
            self.output_proj.weight = self.src_embed.weight  # Sec. 3.4: one shared (V, d_model) matrix

    def _reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            if "embed" in name:
                nn.init.normal_(p, std=self.config.d_model**-0.5)
            elif p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def num_parameters(self) -> int:
        """Number of trainable parameters (a shared matrix counts once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def make_src_mask(self, src: torch.Tensor) -> torch.Tensor:
        """Padding mask of the source, ``(B, S) -> (B, 1, 1, S)``, True where ``src != pad_id``."""
        return padding_mask(src, self.config.pad_id)  # (B, 1, 1, S)

    def make_tgt_mask(self, tgt: torch.Tensor) -> torch.Tensor:
        """Target self-attention mask: padding & causal (Sec. 3.2.3), ``(B, T) -> (B, 1, T, T)``."""
        return decoder_mask(tgt, self.config.pad_id)  # (B, 1, T, T)

    def _embed(self, ids: torch.Tensor, embedding: nn.Embedding) -> torch.Tensor:
        x = embedding(ids) * math.sqrt(self.config.d_model)  # (B, L, d_model)  Sec. 3.4
        return self.pos_encoding(x)  # (B, L, d_model)  + PE, dropout (Sec. 3.5, 5.4)

    @door(_check_encode_args)
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run the encoder stack.

        Args:
            src: source token ids. src_mask: bool, True = may attend (``None`` = no masking;
                usually ``self.make_src_mask(src)``).

        Shape:
            - src: ``(B, S)`` long; src_mask: 4-D, broadcastable to ``(B, H, S, S)``, e.g. ``(B, 1, 1, S)``
            - output: memory ``(B, S, d_model)``
        """
        x = self._embed(src, self.src_embed)  # (B, S, d_model)
        for layer in self.encoder_layers:
            x = layer(x, src_mask)  # (B, S, d_model)
        return self.encoder_norm(x)  # (B, S, d_model)

    @door(_check_decode_args)
    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
               tgt_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run the decoder stack over ``memory`` and project to logits.

        Args:
            tgt: target token ids (shifted right: they start with BOS). memory: output of :meth:`encode`.
            src_mask: mask of the cross-attention keys (usually ``self.make_src_mask(src)``).
            tgt_mask: mask of the self-attention (usually ``self.make_tgt_mask(tgt)``: causal & padding).
                ``None`` means no masking; without a causal mask the decoder sees the future.

        Shape:
            - tgt: ``(B, T)`` long, memory: ``(B, S, d_model)``
            - src_mask: 4-D, broadcastable to ``(B, H, T, S)``, e.g. ``(B, 1, 1, S)``; a padding mask has
              one row per sequence, so a 2-D ``(B, S)`` one is refused (it would be read as ``(T, S)``)
            - tgt_mask: broadcastable to ``(B, H, T, T)``: ``(T, T)`` shared, or 4-D, e.g. ``(B, 1, T, T)``
            - output: logits ``(B, T, tgt_vocab_size)``
        """
        x = self._embed(tgt, self.tgt_embed)  # (B, T, d_model)
        for layer in self.decoder_layers:
            x = layer(x, memory, src_mask, tgt_mask)  # (B, T, d_model)
        x = self.decoder_norm(x)  # (B, T, d_model)
        return self.output_proj(x)  # (B, T, tgt_vocab_size)

    @door(_check_forward_args)
    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Logits for every target position, with padding and causal masks built from ``config.pad_id``.

        Shape:
            - src: ``(B, S)`` long, tgt: ``(B, T)`` long (decoder input, starts with BOS)
            - output: ``(B, T, tgt_vocab_size)``; position ``t`` predicts token ``t + 1``.
        """
        src_mask = self.make_src_mask(src)  # (B, 1, 1, S)
        memory = self.encode(src, src_mask)  # (B, S, d_model)
        return self.decode(tgt, memory, src_mask, self.make_tgt_mask(tgt))  # (B, T, tgt_vocab_size)
