"""Checks of notebook 08's exercises (the full model), with their catalogue of typical mistakes.

``check_transformer`` builds the student's ``Transformer(config)`` and the library's from the same config,
copies the reference weights in by name, and compares the logits on batches with padding (at the target
positions that are not padding: what happens at a padded position is never used). Wrong variants are
computed with the reference's own modules, so a mismatch names the mistake. ``check_parameter_count``
compares a formula with ``Transformer(config).num_parameters()`` (built on the meta device: no memory).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import masks, model
from ._core import MODULE_TOL, Mistake, call, compare, describe, run_cases, seeded
from ._modules import ModelPair

__all__ = ["check_transformer", "check_parameter_count"]

_TIED = ("src_embed", "tgt_embed", "output_proj")


# ------------------------------------------------------------------------------------------ Transformer
def transformer_variant(ref: model.Transformer, src: Tensor, tgt: Tensor, *, scale: str = "sqrt", pe: bool = True,
                        scale_after_pe: bool = False, causal: bool = True, tgt_pad: bool = True,
                        enc_src_mask: bool = True, cross_src_mask: bool = True, memory: str = "encoder",
                        chain: bool = True, final_norm: bool = True, project: bool = True,
                        post: str = "none") -> Tensor:
    """The reference Transformer's forward with one switch turned to a typical mistake; logits ``(B, T, V)``."""
    c = ref.config
    src_mask = masks.padding_mask(src, c.pad_id)  # (B, 1, 1, S)
    T = tgt.shape[1]
    tgt_mask = masks.causal_mask(T) if causal else None  # (T, T)
    if tgt_pad:
        pad = masks.padding_mask(tgt, c.pad_id)  # (B, 1, 1, T)
        tgt_mask = pad if tgt_mask is None else pad & tgt_mask  # (B, 1, T, T)
    factor = {"sqrt": math.sqrt(c.d_model), "none": 1.0, "d_model": float(c.d_model)}[scale]

    def embed(ids: Tensor, table: nn.Embedding) -> Tensor:
        x = table(ids)  # (B, L, d_model)
        if scale_after_pe:
            return (x + ref.pos_encoding.pe[: ids.shape[1]]) * factor  # (B, L, d_model)
        x = x * factor
        return ref.pos_encoding(x) if pe else x  # (B, L, d_model)

    def stack(x: Tensor, layers: nn.ModuleList, run: Callable) -> Tensor:
        h = x
        for layer in layers:
            h = run(layer, h if chain else x)  # (B, L, d_model)
        return h

    src_x = embed(src, ref.src_embed)  # (B, S, d_model)
    mem = stack(src_x, ref.encoder_layers, lambda layer, h: layer(h, src_mask if enc_src_mask else None))
    mem = ref.encoder_norm(mem) if final_norm else mem  # (B, S, d_model)
    tgt_x = embed(tgt, ref.tgt_embed)  # (B, T, d_model)
    cross = src_mask if cross_src_mask else None

    def decoder_step(layer: nn.Module, h: Tensor) -> Tensor:
        m = {"encoder": mem, "embeddings": src_x, "self": h}[memory]
        return layer(h, m, cross if memory != "self" else None, tgt_mask)

    x = stack(tgt_x, ref.decoder_layers, decoder_step)  # (B, T, d_model)
    x = ref.decoder_norm(x) if final_norm else x
    logits = ref.output_proj(x) if project else x  # (B, T, V)
    if post == "softmax":
        return torch.softmax(logits, dim=-1)
    if post == "log_softmax":
        return torch.log_softmax(logits, dim=-1)
    return logits


TRANSFORMER_MISTAKES = [
    ("embeddings not multiplied by sqrt(d_model) (Sec. 3.4): x = embed(ids) * math.sqrt(d_model)", dict(scale="none")),
    ("embeddings multiplied by d_model: the factor is sqrt(d_model) (Sec. 3.4)", dict(scale="d_model")),
    ("the scale is applied after the positional encoding: multiply the embeddings by sqrt(d_model) first, then add "
     "the positions", dict(scale_after_pe=True)),
    ("positional encoding missing: pass the scaled embeddings through self.pos_encoding (Sec. 3.5)", dict(pe=False)),
    ("causal mask missing in the decoder's self-attention: tgt_mask must be causal (decoder_mask / make_tgt_mask), "
     "or each position sees the tokens it must predict", dict(causal=False)),
    ("the source padding mask is not passed to the cross-attention: decoder layers need src_mask too",
     dict(cross_src_mask=False)),
    ("the encoder ignores the source padding mask: pass src_mask to every encoder layer", dict(enc_src_mask=False)),
    ("no source padding mask at all: build make_src_mask(src) and pass it to the encoder and to the "
     "cross-attention", dict(enc_src_mask=False, cross_src_mask=False)),
    ("memory not used: the decoder layers must attend to the encoder output (memory), not to the decoder's own "
     "states", dict(memory="self")),
    ("the decoder attends to the source embeddings: memory is the output of the encoder stack",
     dict(memory="embeddings")),
    ("the layers are not chained: each layer must take the previous layer's output (x = layer(x, ...))",
     dict(chain=False)),
    ("final LayerNorm missing: with norm_first=True apply encoder_norm to the encoder's output and decoder_norm "
     "before output_proj", dict(final_norm=False)),
    ("output projection missing: logits = self.output_proj(x), one score per target-vocabulary token",
     dict(project=False)),
    ("softmax applied to the logits: return the logits (F.cross_entropy applies log-softmax itself)",
     dict(post="softmax")),
    ("log-softmax applied to the logits: return the raw logits (F.cross_entropy applies log-softmax itself)",
     dict(post="log_softmax")),
]


def _tie_mistake(student: nn.Module, config: model.TransformerConfig) -> str | None:
    """A diagnosis if the student's embedding matrices are tied otherwise than the config says."""
    weights = [getattr(getattr(student, name, None), "weight", None) for name in _TIED]
    if any(w is None for w in weights):
        return None  # the name check reports missing layers
    same = [weights[0] is weights[1], weights[1] is weights[2], weights[0] is weights[2]]
    if config.tie_embeddings and not all(same):
        if not any(same):
            return ("embeddings not tied: config.tie_embeddings=True shares ONE matrix between src_embed, tgt_embed "
                    "and output_proj (Sec. 3.4): self.tgt_embed = self.src_embed and "
                    "self.output_proj.weight = self.src_embed.weight")
        if same[0]:
            return ("output_proj is not tied to the embeddings: with tie_embeddings, "
                    "self.output_proj.weight = self.src_embed.weight (Sec. 3.4)")
        return ("src_embed and tgt_embed are separate matrices: with tie_embeddings the target embedding is the "
                "source one, self.tgt_embed = self.src_embed (Sec. 3.4)")
    if not config.tie_embeddings and any(same):
        return ("config.tie_embeddings=False, but your model shares embedding matrices: make src_embed, tgt_embed "
                "and output_proj separate layers when the config does not tie them")
    return None


def _ids(lengths: list[int], vocab: int, width: int) -> Tensor:
    """Token ids ``(B, width)``: random content ids (3 .. vocab-1) up to each length, then padding (0)."""
    ids = torch.randint(3, vocab, (len(lengths), width))  # (B, width)
    return ids.masked_fill(torch.arange(width) >= torch.tensor(lengths)[:, None], 0)  # (B, width)


def check_transformer(cls: type) -> None:
    """Check notebook 08's ``Transformer(config)``: its logits against the library's, weights copied by name."""
    tiny = model.TransformerConfig.tiny
    with seeded():
        models = ModelPair(cls, model.Transformer, "Transformer", ["config"], inspect=_tie_mistake)
        cases = [
            ("tied embeddings, post-norm, no padding (B=2, S=7, T=5)",
             (tiny(), _ids([7, 7], 32, 7), _ids([5, 5], 32, 5))),
            ("tied embeddings, padding in src and tgt", (tiny(), _ids([7, 4, 2], 32, 7), _ids([5, 3, 5], 32, 5))),
            ("same source and target length S = T = 6, no padding",
             (tiny(), _ids([6, 6], 32, 6), _ids([6, 6], 32, 6))),
            ("untied embeddings, src_vocab_size=24, tgt_vocab_size=20, with padding",
             (tiny(src_vocab_size=24, tgt_vocab_size=20, tie_embeddings=False), _ids([6, 3], 24, 6),
              _ids([4, 2], 20, 4))),
            ("pre-norm (norm_first=True), with padding",
             (tiny(norm_first=True), _ids([7, 5], 32, 7), _ids([6, 4], 32, 6))),
        ]
        run_cases("Transformer", cases, lambda case: _transformer_case(models, *case))


def _transformer_case(models: ModelPair, config: model.TransformerConfig, src: Tensor, tgt: Tensor) -> None:
    student, ref = models.get(config)
    got = call(student, src, tgt, names=["src", "tgt"])
    real = (tgt != config.pad_id)[..., None]  # (B, T, 1) the positions whose logits are used

    def used(t: Tensor) -> Tensor:  # logits at padded target positions are never used: zero them
        return t.masked_fill(~real, 0.0) if isinstance(t, Tensor) and t.shape[:2] == tgt.shape else t

    variants = [(msg, lambda kw=kw: used(transformer_variant(ref, src, tgt, **kw))) for msg, kw in TRANSFORMER_MISTAKES]

    def shape_hint(shape: tuple[int, ...]) -> str:
        if shape[-1:] == (config.d_model,):
            return "the last axis is d_model: apply output_proj to get one logit per target-vocabulary token"
        return "logits are (B, T, tgt_vocab_size): one row of scores per target position"

    compare(used(got), used(ref(src, tgt)), what="logits", variants=variants, shape_hint=shape_hint, **MODULE_TOL,
            inputs=f"src={describe(src)}, tgt={describe(tgt)}")


# ------------------------------------------------------------------------------------- parameter count
def parameter_formula(c: model.TransformerConfig, *, biases: bool = True, tie_count: int | None = None,
                      final_norms: bool | None = None, norms_per_layer: str = "sublayer", norm_params: int = 2,
                      output_bias: bool = False, pe: bool = False, cross_attention: bool = True) -> int:
    """The number of parameters of ``Transformer(c)``, with switches for the usual counting mistakes."""
    d, b = c.d_model, int(biases)
    attention = 4 * (d * d + b * d)  # W^Q, W^K, W^V, W^O and their biases
    ffn = d * c.d_ff + b * c.d_ff + c.d_ff * d + b * d  # Eq. (2): W1, b1, W2, b2
    norm = norm_params * d  # gamma and beta
    enc_norms, dec_norms = (2, 3) if norms_per_layer == "sublayer" else (1, 1)
    encoder = c.n_encoder_layers * (attention + ffn + enc_norms * norm)
    decoder = c.n_decoder_layers * ((2 if cross_attention else 1) * attention + ffn + dec_norms * norm)
    tables = [c.src_vocab_size * d, c.tgt_vocab_size * d, c.tgt_vocab_size * d]  # src, tgt, output projection
    copies = tie_count if tie_count is not None else (1 if c.tie_embeddings else 3)
    embeddings = tables[0] * copies if c.tie_embeddings or tie_count is not None else sum(tables)
    if final_norms is None:
        final_norms = c.norm_first
    extra = (2 * norm if final_norms else 0) + (c.tgt_vocab_size if output_bias else 0) + (c.max_len * d if pe else 0)
    return encoder + decoder + embeddings + extra


PARAMETER_MISTAKES = [  # (diagnosis, switches of parameter_formula)
    ("biases forgotten: every nn.Linear of the attention (4 per block) and of the FFN has a bias",
     dict(biases=False)),
    ("the tied matrix is counted three times: with tie_embeddings, src_embed, tgt_embed and output_proj are ONE "
     "(V, d_model) matrix", dict(tie_count=3)),
    ("the separate matrices are counted once: with tie_embeddings=False, src_embed, tgt_embed and output_proj are "
     "three matrices", dict(tie_count=1)),
    ("the final LayerNorms of pre-norm are forgotten: norm_first=True adds encoder_norm and decoder_norm",
     dict(final_norms=False)),
    ("final LayerNorms counted in post-norm: only norm_first=True has encoder_norm and decoder_norm",
     dict(final_norms=True)),
    ("LayerNorm counted once per layer: there is one per sub-layer (2 in an encoder layer, 3 in a decoder layer)",
     dict(norms_per_layer="layer")),
    ("LayerNorm has two vectors of d_model parameters, a gain (weight) and a bias", dict(norm_params=1)),
    ("the output projection has no bias in this library (nn.Linear(d_model, V, bias=False))", dict(output_bias=True)),
    ("the sinusoidal positional encoding is a fixed table, not parameters: it adds 0", dict(pe=True)),
    ("the decoder layers' cross-attention is missing: a decoder layer has two attention blocks",
     dict(cross_attention=False)),
]


def check_parameter_count(fn: Callable) -> None:
    """Check notebook 08's stretch ``parameter_count(config) -> int`` against ``Transformer(config).num_parameters()``."""
    T = model.TransformerConfig
    cases = [
        ("the paper's base model (tied, post-norm)", T.base()),
        ("base, untied embeddings", T.base(tie_embeddings=False)),
        ("tiny, pre-norm (norm_first=True), tied", T.tiny(norm_first=True)),
        ("small, pre-norm, untied, src_vocab_size=9000, tgt_vocab_size=7000, 3+1 layers",
         T.small(norm_first=True, tie_embeddings=False, src_vocab_size=9000, tgt_vocab_size=7000,
                 n_encoder_layers=3, n_decoder_layers=1)),
    ]
    with seeded():
        run_cases("parameter_count", [(name, c) for name, c in cases], lambda c: _count_case(fn, c))


def reference_count(config: model.TransformerConfig) -> int:
    """``Transformer(config).num_parameters()``, built on the meta device (no memory, no initialisation cost)."""
    with torch.device("meta"):
        return model.Transformer(config).num_parameters()


def _count_case(fn: Callable, config: model.TransformerConfig) -> None:
    got = call(fn, config, names=["config"])
    if isinstance(got, Tensor) and got.numel() == 1 and not got.is_floating_point():
        got = int(got)
    if isinstance(got, bool) or not isinstance(got, numbers.Integral):
        raise Mistake(f"return a Python int (the number of parameters); you returned {type(got).__name__} {got!r}")
    expected = reference_count(config)
    if int(got) == expected:
        return
    for message, kw in PARAMETER_MISTAKES:
        if int(got) == parameter_formula(config, **kw):
            raise Mistake(f"{message}\n  expected {expected:,}\n  got      {int(got):,}")
    raise Mistake(f"the count differs from Transformer(config).num_parameters() by {int(got) - expected:+,}: count "
                  f"each layer's weights and biases\n  expected {expected:,}\n  got      {int(got):,}")
