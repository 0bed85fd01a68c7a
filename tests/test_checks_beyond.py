"""Tests of notebook 12's checks: check_decoder_only_lm and check_rotary_embedding.

Each student implementation below is realistic and makes one mistake; every diagnosis the checks
can give is reached by one of them, and correct alternative formulations pass.
"""

import math

import pytest
import torch
from torch import nn

from checking import passes, raises
from transformer_lib import checks
from transformer_lib.checks import ExerciseNotDone
from transformer_lib.layers import EncoderLayer
from transformer_lib.masks import causal_mask


# ---------------------------------------------------------------------- DecoderOnlyLM
class LM(nn.Module):
    """A correct student DecoderOnlyLM, with switches for one mistake each."""

    mistake = None

    def __init__(self, vocab_size, d_model, n_heads, n_layers, d_ff, max_len):
        super().__init__()
        self.tok_embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList([EncoderLayer(d_model, n_heads, d_ff, 0.0, norm_first=True)
                                     for _ in range(n_layers)])
        self.final_norm = nn.LayerNorm(d_model)
        self.output_proj = nn.Linear(d_model, vocab_size, bias=False)
        if self.mistake != "untied":
            self.output_proj.weight = self.tok_embed.weight

    def forward(self, ids):
        B, T = ids.shape
        m = self.mistake
        x = self.tok_embed(ids) * (math.sqrt(self.tok_embed.embedding_dim) if m == "scaled" else 1.0)
        if m == "ids_positions":
            x = x + self.pos_embed(ids)
        elif m != "no_positions":
            x = x + self.pos_embed(torch.arange(T))
        mask = {"no_mask": None, "inverted": ~causal_mask(T), "triu": torch.triu(torch.ones(T, T, dtype=torch.bool))}
        mask = mask.get(m, causal_mask(T))
        for layer in self.layers:
            x = layer(x, mask)
        if m == "hidden":
            return self.final_norm(x)
        logits = self.output_proj(x if m == "no_final_norm" else self.final_norm(x))
        return {"softmax": logits.softmax(-1), "log_softmax": logits.log_softmax(-1)}.get(m, logits)


def lm_with(mistake):
    return type(f"LM_{mistake}", (LM,), {"mistake": mistake})


class LMAlternative(nn.Module):
    """Correct, written differently: a mask built inline with tril, positions via a buffer, tied the other way."""

    def __init__(self, vocab_size, d_model, n_heads, n_layers, d_ff, max_len):
        super().__init__()
        self.tok_embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, norm_first=True) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model, eps=1e-5)
        self.output_proj = nn.Linear(d_model, vocab_size, bias=False)
        self.tok_embed.weight = self.output_proj.weight
        self.register_buffer("positions", torch.arange(max_len), persistent=False)

    def forward(self, ids):
        T = ids.size(-1)
        h = self.tok_embed(ids) + self.pos_embed(self.positions[:T])[None]
        allowed = torch.ones(T, T).tril().bool()[None, None]
        for block in self.layers:
            h = block(h, mask=allowed)
        return self.output_proj(self.final_norm(h))


def test_lm_correct_passes(capsys):
    lines = passes(checks.check_decoder_only_lm, LM, capsys)
    assert lines[-1] == "DecoderOnlyLM: all 5 cases pass"


def test_lm_library_reference_passes(capsys):
    from transformer_lib.gpt import DecoderOnlyLM
    passes(checks.check_decoder_only_lm, DecoderOnlyLM, capsys)


def test_lm_alternative_passes(capsys):
    passes(checks.check_decoder_only_lm, LMAlternative, capsys)


LM_DIAGNOSES = {
    "untied": "output projection not tied",
    "no_mask": "causal mask missing: changing the tokens",
    "triu": "causal mask missing: changing the tokens",
    "no_positions": "positions missing",
    "ids_positions": "positions taken from the token ids",
    "inverted": "mask is inverted",
    "no_final_norm": "final LayerNorm missing",
    "scaled": "scaled by sqrt\\(d_model\\)",
    "softmax": "you return probabilities",
    "log_softmax": "you return log-probabilities",
    "hidden": "you return hidden states",
}


@pytest.mark.parametrize("mistake", LM_DIAGNOSES)
def test_lm_each_diagnosis_is_reached(mistake):
    with raises(LM_DIAGNOSES[mistake]):
        checks.check_decoder_only_lm(lm_with(mistake))


def test_lm_inverted_mask_without_leak_check_is_named():
    """The mask-inverted variant: a model that leaks is caught by the leak test first; this one is named."""
    with raises("mask is inverted: each position sees only the tokens after it"):
        checks.check_decoder_only_lm(lm_with("inverted"))


def test_lm_stub_and_instance():
    class Stub(nn.Module):
        def __init__(self, *args):
            raise NotImplementedError()

    with pytest.raises(ExerciseNotDone, match="not done yet"):
        checks.check_decoder_only_lm(Stub)
    with raises("pass the class itself"):
        checks.check_decoder_only_lm(LM(16, 24, 2, 2, 32, 20))


def test_lm_missing_output_layer():
    class NoOutput(LM):
        def __init__(self, *args):
            super().__init__(*args)
            del self.output_proj

    with raises("needs tok_embed"):
        checks.check_decoder_only_lm(NoOutput)


# ---------------------------------------------------------------------- apply_rotary
def rotary(x, positions, pairs="interleaved", sign=1.0, exponent=2, use_positions=True):
    """A student apply_rotary in the usual loop-free form, with one switch per mistake."""
    d, T = x.shape[-1], x.shape[-2]
    i = torch.arange(d // 2)
    theta = 10000 ** (-exponent * i / d)
    p = positions.float() if use_positions else torch.arange(T).float()
    angle = p[:, None] * theta[None, :]
    cos, sin = torch.cos(angle), sign * torch.sin(angle)
    if pairs == "interleaved":
        x1, x2 = x[..., ::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., ::2] = x1 * cos - x2 * sin
        out[..., 1::2] = x1 * sin + x2 * cos
        return out
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def rotary_complex(x, positions):
    """Correct, written with complex numbers (as in LLaMA's reference code)."""
    d = x.shape[-1]
    freqs = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    z = torch.polar(torch.ones(len(positions), d // 2), positions.float()[:, None] * freqs)
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], d // 2, 2))
    return torch.view_as_real(xc * z).flatten(-2)


def test_rotary_correct_passes(capsys):
    assert passes(checks.check_rotary_embedding, rotary, capsys)[-1] == "apply_rotary: all 4 cases pass"
    passes(checks.check_rotary_embedding, rotary_complex, capsys)
    from transformer_lib.gpt import apply_rotary
    passes(checks.check_rotary_embedding, apply_rotary, capsys)


ROTARY_DIAGNOSES = {
    "half": (dict(pairs="half"), "rotate_half convention"),
    "sign": (dict(sign=-1.0), "wrong direction"),
    "exponent": (dict(exponent=1), "wrong frequencies"),
    "arange": (dict(use_positions=False), "positions argument is ignored"),
}


@pytest.mark.parametrize("mistake", ROTARY_DIAGNOSES)
def test_rotary_each_diagnosis_is_reached(mistake):
    kw, message = ROTARY_DIAGNOSES[mistake]
    with raises(message):
        checks.check_rotary_embedding(lambda x, positions: rotary(x, positions, **kw))


def test_rotary_identity_and_stub():
    with raises("output equals x"):
        checks.check_rotary_embedding(lambda x, positions: x.clone())

    def stub(x, positions):
        raise NotImplementedError()

    with pytest.raises(ExerciseNotDone):
        checks.check_rotary_embedding(stub)


def test_a_model_tied_the_other_way_round_passes(capsys):
    """Tying makes PyTorch list the shared matrix under whichever layer was created first: the check copies
    weights under every name, so the order in which a student creates the layers does not matter."""
    from transformer_lib.gpt import DecoderOnlyLM

    class TiedFromTheOutput(DecoderOnlyLM):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            shared = self.output_proj.weight
            del self.tok_embed  # re-created after output_proj, sharing its matrix
            self.tok_embed = nn.Embedding(*shared.shape)
            self.tok_embed.weight = shared

    assert [n for n, _ in TiedFromTheOutput(20, 16, 2, 1, 32, 10).named_parameters()][0] != "tok_embed.weight"
    checks.check_decoder_only_lm(TiedFromTheOutput)
    assert capsys.readouterr().out.strip().endswith("cases pass")
