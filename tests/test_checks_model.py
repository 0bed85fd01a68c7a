"""Tests of notebook 08's checks: check_transformer and check_parameter_count. The library, the notebook's solution
and correct alternative formulations pass; realistic wrong answers, one mistake each, get the diagnosis that names
the mistake."""

from __future__ import annotations

import math

import pytest
import torch
from checking import passes, raises
from torch import nn

from transformer_lib import checks
from transformer_lib.checks import ExerciseNotDone
from transformer_lib.checks import model as model_checks
from transformer_lib.layers import DecoderLayer, EncoderLayer
from transformer_lib.masks import causal_mask, decoder_mask, padding_mask
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.positional import PositionalEncoding


# ------------------------------------------------------------------------------------------ Transformer
def student_transformer(scale="sqrt", pe=True, scale_after_pe=False, tgt_mask="decoder", enc_mask=True,
                        cross_mask=True, memory="encoder", chain=True, final_norm=True, project=True, post=None,
                        tie="all", names=None):
    """A student's Transformer, written out as in notebook 08, with one mistake switchable."""

    class StudentTransformer(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = c = config
            self.pos_encoding = PositionalEncoding(c.d_model, c.max_len, c.dropout)
            args = (c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first)
            self.encoder_layers = nn.ModuleList([EncoderLayer(*args) for _ in range(c.n_encoder_layers)])
            self.decoder_layers = nn.ModuleList([DecoderLayer(*args) for _ in range(c.n_decoder_layers)])
            final = (lambda: nn.LayerNorm(c.d_model)) if c.norm_first else nn.Identity
            self.encoder_norm, self.decoder_norm = final(), final()
            self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
            tie_here = c.tie_embeddings if tie != "always" else True
            same = tie_here and tie in ("all", "src_tgt", "always")
            self.tgt_embed = self.src_embed if same else nn.Embedding(c.tgt_vocab_size, c.d_model)
            self.output_proj = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
            if tie_here and tie in ("all", "out_tgt", "always"):
                self.output_proj.weight = self.tgt_embed.weight
            if names:
                setattr(self, names, self.output_proj)
                del self.output_proj

        def embed(self, ids, table):
            factor = {"sqrt": math.sqrt(self.config.d_model), "none": 1.0, "d_model": self.config.d_model}[scale]
            if scale_after_pe:
                return self.pos_encoding(table(ids)) * factor
            x = table(ids) * factor
            return self.pos_encoding(x) if pe else x

        def encode(self, src, src_mask=None):
            x = h = self.embed(src, self.src_embed)
            for layer in self.encoder_layers:
                h = layer(h if chain else x, src_mask if enc_mask else None)
            return self.encoder_norm(h) if final_norm else h

        def decode(self, tgt, memory_, src_mask=None, tgt_mask_=None):
            x = h = self.embed(tgt, self.tgt_embed)
            for layer in self.decoder_layers:
                if memory == "self":
                    h = layer(h, h, tgt_mask=tgt_mask_)
                else:
                    h = layer(h if chain else x, memory_, src_mask if cross_mask else None, tgt_mask_)
            h = self.decoder_norm(h) if final_norm else h
            logits = self.output_proj(h) if project else h
            if post == "softmax":
                return logits.softmax(-1)
            return logits.log_softmax(-1) if post == "log_softmax" else logits

        def forward(self, src, tgt):
            src_mask = padding_mask(src, self.config.pad_id)
            masks = {"decoder": decoder_mask(tgt, self.config.pad_id), "causal": causal_mask(tgt.shape[1]),
                     "padding": padding_mask(tgt, self.config.pad_id), "none": None}
            memory_ = self.encode(src, src_mask)
            if memory == "embeddings":
                memory_ = self.embed(src, self.src_embed)
            return self.decode(tgt, memory_, src_mask, masks[tgt_mask])

    return StudentTransformer


class TiedTheOtherWay(nn.Module):
    """Correct, another way: the output projection is made first and the embeddings share its weight."""

    def __init__(self, config):
        super().__init__()
        self.config = c = config
        self.output_proj = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        if c.tie_embeddings:
            self.src_embed.weight = self.output_proj.weight
            self.tgt_embed = self.src_embed
        else:
            self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.pos_encoding = PositionalEncoding(c.d_model, c.max_len)
        args = (c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first)
        self.encoder_layers = nn.ModuleList([EncoderLayer(*args) for _ in range(c.n_encoder_layers)])
        self.decoder_layers = nn.ModuleList([DecoderLayer(*args) for _ in range(c.n_decoder_layers)])
        self.encoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()

    def forward(self, src, tgt):
        d = self.config.d_model
        keep = (src != self.config.pad_id)[:, None, None, :]  # (B, 1, 1, S)
        x = self.pos_encoding(math.sqrt(d) * self.src_embed(src))
        for layer in self.encoder_layers:
            x = layer(x, mask=keep)
        memory = self.encoder_norm(x)
        T = tgt.shape[1]
        tgt_mask = torch.ones(T, T, dtype=torch.bool).tril() & (tgt != self.config.pad_id)[:, None, None, :]
        y = self.pos_encoding(math.sqrt(d) * self.tgt_embed(tgt))
        for layer in self.decoder_layers:
            y = layer(y, memory, src_mask=keep, tgt_mask=tgt_mask)
        return self.decoder_norm(y) @ self.output_proj.weight.T


CORRECT = {"library": Transformer, "student": student_transformer(), "causal-only tgt_mask": student_transformer(
    tgt_mask="causal"), "tied the other way, masks by hand": TiedTheOtherWay}


@pytest.mark.parametrize("cls", CORRECT.values(), ids=CORRECT)
def test_transformer_correct_formulations_pass(cls, capsys):
    assert passes(checks.check_transformer, cls, capsys)[-1] == "Transformer: all 5 cases pass"


TRANSFORMER_MISTAKES = {
    "no sqrt scale": (dict(scale="none"), r"not multiplied by sqrt\(d_model\)"),
    "scaled by d_model": (dict(scale="d_model"), r"multiplied by d_model"),
    "scaled after the positions": (dict(scale_after_pe=True), "scale is applied after the positional encoding"),
    "no positional encoding": (dict(pe=False), "positional encoding missing"),
    "padding-only tgt mask": (dict(tgt_mask="padding"), "causal mask missing"),
    "no tgt mask": (dict(tgt_mask="none"), "causal mask missing"),
    "cross-attention without src_mask": (dict(cross_mask=False), "not passed to the cross-attention"),
    "encoder without src_mask": (dict(enc_mask=False), "encoder ignores the source padding mask"),
    "no src mask": (dict(enc_mask=False, cross_mask=False), "no source padding mask at all"),
    "memory = the decoder's states": (dict(memory="self"), "memory not used"),
    "memory = source embeddings": (dict(memory="embeddings"), "attends to the source embeddings"),
    "layers not chained": (dict(chain=False), "layers are not chained"),
    "final norms forgotten": (dict(final_norm=False), r"case 'pre-norm.*final LayerNorm missing: with norm_first=True"),
    "no output projection": (dict(project=False), "output projection missing"),
    "softmax on the logits": (dict(post="softmax"), "softmax applied to the logits"),
    "log-softmax on the logits": (dict(post="log_softmax"), "log-softmax applied"),
    "not tied": (dict(tie="none"), "embeddings not tied"),
    "output not tied": (dict(tie="src_tgt"), "output_proj is not tied"),
    "src and tgt separate": (dict(tie="out_tgt"), "src_embed and tgt_embed are separate"),
    "tied when untied": (dict(tie="always"), "tie_embeddings=False, but your model shares"),
    "wrong attribute name": (dict(names="generator"), r"expected: output_proj.*yours: +generator"),
}


@pytest.mark.parametrize("switches, match", TRANSFORMER_MISTAKES.values(), ids=TRANSFORMER_MISTAKES)
def test_transformer_each_diagnosis_is_reached(switches, match):
    with raises(match):
        checks.check_transformer(student_transformer(**switches))


def test_transformer_final_norm_mistake_is_caught_in_pre_norm_case():
    with raises(r"case 'pre-norm .*final LayerNorm missing"):
        checks.check_transformer(student_transformer(final_norm=False))


def test_transformer_not_done_and_instance():
    class Stub(nn.Module):
        def __init__(self, config):
            super().__init__()
            raise NotImplementedError()

    with pytest.raises(ExerciseNotDone, match="not done yet"):
        checks.check_transformer(Stub)
    with raises("pass the class itself"):
        checks.check_transformer(Transformer(TransformerConfig.tiny()))


def test_transformer_variants_are_distinct():
    """Every catalogued mistake changes the logits of at least one case (a diagnosis nothing can reach is a bug)."""
    torch.manual_seed(0)
    config = TransformerConfig.tiny(norm_first=True)
    ref = Transformer(config).eval()
    src = model_checks._ids([7, 4], 32, 7)
    tgt = model_checks._ids([5, 3], 32, 5)
    with torch.no_grad():
        expected = ref(src, tgt)
        for message, kw in model_checks.TRANSFORMER_MISTAKES:
            got = model_checks.transformer_variant(ref, src, tgt, **kw)
            assert got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-4), message
        torch.testing.assert_close(model_checks.transformer_variant(ref, src, tgt), expected)


# ------------------------------------------------------------------------------------- parameter count
def student_count(biases=True, tie_times=None, final_norms="pre", norms=(2, 3), norm_vectors=2, output_bias=False,
                  pe=False, attn_per_decoder=2, as_type=int):
    """A student's parameter_count, written out, with one mistake switchable."""

    def parameter_count(config):
        d, f = config.d_model, config.d_ff
        attention = 4 * d * d + (4 * d if biases else 0)
        ffn = 2 * d * f + ((f + d) if biases else 0)
        norm = norm_vectors * d
        total = config.n_encoder_layers * (attention + ffn + norms[0] * norm)
        total += config.n_decoder_layers * (attn_per_decoder * attention + ffn + norms[1] * norm)
        if tie_times is not None:
            total += tie_times * config.src_vocab_size * d
        elif config.tie_embeddings:
            total += config.src_vocab_size * d
        else:
            total += config.src_vocab_size * d + 2 * config.tgt_vocab_size * d
        if final_norms == "always" or (final_norms == "pre" and config.norm_first):
            total += 2 * norm
        total += config.tgt_vocab_size if output_bias else 0
        total += config.max_len * d if pe else 0
        return as_type(total)

    return parameter_count


def by_modules(config):
    """Correct, another way: count the parameters of the library's layers, built once each."""
    c = config
    enc = sum(p.numel() for p in EncoderLayer(c.d_model, c.n_heads, c.d_ff).parameters())
    dec = sum(p.numel() for p in DecoderLayer(c.d_model, c.n_heads, c.d_ff).parameters())
    vocab = c.src_vocab_size if c.tie_embeddings else c.src_vocab_size + 2 * c.tgt_vocab_size
    return c.n_encoder_layers * enc + c.n_decoder_layers * dec + vocab * c.d_model + 4 * c.d_model * c.norm_first


COUNT_CORRECT = {"formula": student_count(), "library formula": model_checks.parameter_formula,
                 "built layers": by_modules, "a 0-d int tensor": student_count(as_type=torch.tensor)}


@pytest.mark.parametrize("fn", COUNT_CORRECT.values(), ids=COUNT_CORRECT)
def test_parameter_count_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_parameter_count, fn, capsys) == ["parameter_count: all 4 cases pass"]


COUNT_MISTAKES = {
    "biases forgotten": (dict(biases=False), "biases forgotten"),
    "tied matrix counted three times": (dict(tie_times=3), "counted three times"),
    "untied matrices counted once": (dict(tie_times=1), r"case 'base, untied.*counted once"),
    "pre-norm final norms forgotten": (dict(final_norms="never"), r"case 'tiny, pre-norm.*final LayerNorms of pre"),
    "final norms in post-norm": (dict(final_norms="always"), "final LayerNorms counted in post-norm"),
    "one LayerNorm per layer": (dict(norms=(1, 1)), "LayerNorm counted once per layer"),
    "LayerNorm gain only": (dict(norm_vectors=1), "two vectors of d_model"),
    "output bias": (dict(output_bias=True), "output projection has no bias"),
    "positional encoding counted": (dict(pe=True), "positional encoding is a fixed table"),
    "cross-attention forgotten": (dict(attn_per_decoder=1), "cross-attention is missing"),
    "a float": (dict(as_type=float), "return a Python int"),
}


@pytest.mark.parametrize("switches, match", COUNT_MISTAKES.values(), ids=COUNT_MISTAKES)
def test_parameter_count_each_diagnosis_is_reached(switches, match):
    with raises(match):
        checks.check_parameter_count(student_count(**switches))


def test_parameter_count_unknown_mistake_and_not_done():
    with raises(r"differs from Transformer\(config\).num_parameters\(\) by \+1"):
        checks.check_parameter_count(lambda config: model_checks.parameter_formula(config) + 1)

    def stub(config):
        raise NotImplementedError()

    with pytest.raises(ExerciseNotDone):
        checks.check_parameter_count(stub)


def test_reference_count_matches_a_real_model():
    config = TransformerConfig.tiny(norm_first=True, tie_embeddings=False, src_vocab_size=20, tgt_vocab_size=12)
    assert model_checks.reference_count(config) == Transformer(config).num_parameters()
    assert model_checks.parameter_formula(config) == Transformer(config).num_parameters()
    assert model_checks.reference_count(TransformerConfig.base()) == 63_082_496
