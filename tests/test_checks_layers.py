"""Tests of the layer checks of notebook 07 (check_layer_norm, and the encoder mistakes not in test_checks.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checking import passes, raises
from torch import nn

from transformer_lib import checks
from transformer_lib.checks._feedback import ExerciseNotDone
from transformer_lib.layers import FeedForward
from transformer_lib.multihead import MultiHeadAttention


class StudentLayerNorm(nn.Module):
    """A hand-written LayerNorm with switchable mistakes (the stretch exercise of notebook 07)."""

    mistakes: dict = {}

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(d_model)), nn.Parameter(torch.zeros(d_model))
        self.eps = 1e-5 if self.mistakes.get("fixed_eps") else eps

    def forward(self, x):
        m = self.mistakes
        dims = m.get("dims", -1)
        mean = x.mean(dim=dims, keepdim=True)
        if m.get("torch_std"):  # The Annotated Transformer: a_2 * (x - mean) / (std + eps) + b_2
            x_hat = (x - mean) / (x.std(dim=-1, keepdim=True) + self.eps)
        else:
            var = x.var(dim=dims, keepdim=True, unbiased=bool(m.get("unbiased")))
            x_hat = (x - mean) / (var.sqrt() + self.eps) if m.get("eps_outside") else (x - mean) / (var + self.eps).sqrt()
        weight, bias = (self.bias, self.weight) if m.get("swap") else (self.weight, self.bias)
        return {"none": x_hat, "no_bias": weight * x_hat, "no_weight": x_hat + bias}.get(m.get("affine"),
                                                                                         weight * x_hat + bias)


def student_layer_norm(**mistakes):
    return type("LayerNorm", (StudentLayerNorm,), {"mistakes": mistakes})


class ViaFunctional(nn.Module):
    """A correct alternative: F.layer_norm with the module's own weight, bias and eps."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(d_model)), nn.Parameter(torch.zeros(d_model)), eps

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


class ViaStd(StudentLayerNorm):
    """A correct alternative: the variance as the mean of squared deviations, and torch.rsqrt(var + eps)."""

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return self.weight * (x - mu) * torch.rsqrt(var + self.eps) + self.bias


@pytest.mark.parametrize("cls", [StudentLayerNorm, ViaFunctional, ViaStd, nn.LayerNorm])
def test_layer_norm_passes(cls, capsys):
    lines = passes(checks.check_layer_norm, cls, capsys)
    assert lines == ["LayerNorm: copied the reference weights into your module by name (weight, bias)",
                     "LayerNorm: all 5 cases pass"]


@pytest.mark.parametrize("mistakes, match", [
    (dict(torch_std=True), r"case 'B=2.*unbiased variance: torch.std/torch.var divide by d_model - 1.*Annotated"),
    (dict(unbiased=True), r"case 'B=2.*unbiased variance: torch.std/torch.var divide by d_model - 1"),
    (dict(eps_outside=True), r"case 'tiny inputs.*eps added outside the sqrt: \(x - mean\) / sqrt\(var \+ eps\)"),
    (dict(dims=-2), r"normalised over the positions \(dim=-2\)"),
    (dict(dims=(1, 2)), r"normalised over every axis but the batch"),
    (dict(dims=(0, 1, 2)), r"normalised over the whole tensor"),
    (dict(affine="none"), r"weight and bias missing"),
    (dict(affine="no_bias"), r"bias missing: add self.bias"),
    (dict(affine="no_weight"), r"weight missing: multiply by self.weight"),
    (dict(swap=True), r"weight and bias swapped"),
    (dict(fixed_eps=True), r"case 'eps=0.1 given'.*eps ignored: use the eps argument"),
])
def test_layer_norm_diagnoses(mistakes, match):
    with raises(match + r".*\n  output at \[.*\] expected .*\n\s+got "):
        checks.check_layer_norm(student_layer_norm(**mistakes))


def test_layer_norm_feedback():
    class Renamed(StudentLayerNorm):
        def __init__(self, d_model, eps=1e-5):
            super().__init__(d_model, eps)
            self.gamma, self.beta = self.weight, self.bias
            del self.weight, self.bias

    with raises(r"expected: weight, bias\n  yours:    gamma, beta \(not in the exercise\)"):
        checks.check_layer_norm(Renamed)

    class Stub(nn.Module):
        def __init__(self, d_model, eps=1e-5):
            super().__init__()
            raise NotImplementedError()

    with pytest.raises(ExerciseNotDone, match=r"^the exercise is not done yet: write `Stub`"):
        checks.check_layer_norm(Stub)
    with raises(r"pass the class itself, not an instance"):
        checks.check_layer_norm(nn.LayerNorm(8))


class Encoder(nn.Module):
    """An encoder layer written as a student would, with the mistakes test_checks.py does not cover."""

    mistakes: dict = {}

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False):
        super().__init__()
        self.self_attn, self.feed_forward = MultiHeadAttention(d_model, n_heads), FeedForward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x, mask=None):
        m = self.mistakes
        sa = lambda h: self.dropout1(self.self_attn(h, h, h, mask=mask)[0])  # noqa: E731
        ff = lambda h: self.dropout2(self.feed_forward(h))  # noqa: E731
        r1, r2 = (0 if m.get("no_res1") else 1), (0 if m.get("no_res2") else 1)
        if self.norm_first:
            if m.get("overwrite"):  # x = norm(x); x = x + sublayer(x)
                x = self.norm1(x)
                x = x + sa(x)
                x = self.norm2(x)
                return x + ff(x)
            x = r1 * x + sa(self.norm1(x))
            return r2 * x + ff(self.norm2(x))
        x = self.norm1(r1 * x + sa(x))
        return self.norm2(r2 * x + ff(x))


class EncoderFunctional(Encoder):
    """A correct alternative: the sub-layers written inline with F.layer_norm and the norms' parameters."""

    def forward(self, x, mask=None):
        ln = lambda norm, h: F.layer_norm(h, (h.shape[-1],), norm.weight, norm.bias, norm.eps)  # noqa: E731
        if self.norm_first:
            h = ln(self.norm1, x)
            x = x + self.self_attn(h, h, h, mask)[0]
            return x + self.feed_forward.linear2(torch.relu(self.feed_forward.linear1(ln(self.norm2, x))))
        x = ln(self.norm1, x + self.self_attn(x, x, x, mask)[0])
        return ln(self.norm2, x + self.feed_forward.linear2(torch.relu(self.feed_forward.linear1(x))))


@pytest.mark.parametrize("cls", [Encoder, EncoderFunctional])
def test_encoder_layer_alternatives_pass(cls, capsys):
    assert passes(checks.check_encoder_layer, cls, capsys)[-1] == "EncoderLayer: all 4 cases pass"


@pytest.mark.parametrize("mistakes, match", [
    (dict(no_res1=True), r"case 'post-norm \(norm_first=False\).*missing residual around self-attention"),
    (dict(no_res2=True), r"case 'post-norm \(norm_first=False\).*missing residual around the feed-forward"),
    (dict(overwrite=True), r"case 'pre-norm \(norm_first=True\)'.*pre-norm adds the un-normalised x"),
])
def test_encoder_layer_diagnoses(mistakes, match):
    with raises(match):
        checks.check_encoder_layer(type("EncoderLayer", (Encoder,), {"mistakes": mistakes}))


class FFN(nn.Module):
    """FeedForward with a ReLU after the second linear too (not covered in test_checks.py)."""

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        return torch.relu(self.linear2(torch.relu(self.linear1(x))))


def test_feed_forward_relu_after_second_linear():
    with raises(r"no activation after the second linear"):
        checks.check_feed_forward(FFN)
