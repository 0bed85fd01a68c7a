"""Checks of the layer exercises (notebooks 07, 08): ``FeedForward``, ``EncoderLayer``, ``DecoderLayer``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import permutations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import layers, masks
from ._core import MODULE_TOL, call, compare, describe, run_cases, seeded
from ._modules import ModelPair

__all__ = ["check_layer_norm", "check_feed_forward", "check_encoder_layer", "check_decoder_layer"]


def sublayers_variant(x: Tensor, blocks: Sequence[Callable], norms: Sequence[Callable], placement: str,
                      residual: Sequence[bool]) -> Tensor:
    """Residual + LayerNorm around each block: "post" (paper), "pre", or "pre_bad" (residual of norm(x))."""
    for block, norm, res in zip(blocks, norms, residual):
        if placement == "post":
            x = norm((x if res else 0) + block(x))  # Sec. 3.1: LayerNorm(x + Sublayer(x))
        elif placement == "pre":
            x = (x if res else 0) + block(norm(x))
        else:  # x = norm(x); x = x + block(x)
            x = norm(x)
            x = (x if res else 0) + block(x)
    return x



def layer_mistakes(norm_first: bool, n: int) -> list[tuple[str, dict]]:
    """Diagnoses and :func:`sublayers_variant` switches for a layer of ``n`` sublayers (2 encoder, 3 decoder)."""
    wrong = ("wrong norm placement: norm_first=True means pre-norm, x = x + sublayer(norm(x))" if norm_first else
             "wrong norm placement: norm_first=False is the paper's post-norm, x = norm(x + sublayer(x)) (Sec. 3.1)")
    mistakes = [(wrong, dict(placement="post" if norm_first else "pre")),
                ("missing residual connections: add each sublayer's input to its output (Sec. 3.1)",
                 dict(residual=(False,) * n))]
    names = ["self-attention", *(["cross-attention"] if n == 3 else []), "the feed-forward"]
    for i, name in enumerate(names):
        mistakes.append((f"missing residual around {name}", dict(residual=tuple(j != i for j in range(n)))))
    if norm_first:
        mistakes.append(("pre-norm adds the un-normalised x: x = x + sublayer(norm(x)); do not overwrite x with "
                         "norm(x)", dict(placement="pre_bad")))
    return mistakes


def check_feed_forward(cls: type) -> None:
    """Check a ``FeedForward(d_model, d_ff, dropout=0.0)`` class: Eq. (2), linear1 -> ReLU -> linear2."""
    with seeded():
        models = ModelPair(cls, layers.FeedForward, "FeedForward", ["d_model", "d_ff"])
        cases = [("B=2, T=5, d_model=8, d_ff=32", (8, 32, torch.randn(2, 5, 8))),
                 ("B=1, T=3, d_model=12, d_ff=20", (12, 20, 3 * torch.randn(1, 3, 12))),
                 ("one position (T=1)", (8, 32, torch.randn(3, 1, 8)))]
        run_cases("FeedForward", cases, lambda case: _ffn_case(models, *case))


def _ffn_case(models: ModelPair, d_model: int, d_ff: int, x: Tensor) -> None:
    student, ref = models.get(d_model, d_ff, dropout=0.0)
    got = call(student, x, names=["x"])
    l1, l2 = ref.linear1, ref.linear2
    variants = [
        ("missing ReLU between the two linear layers (Eq. 2: max(0, x W1 + b1) W2 + b2)", lambda: l2(l1(x))),
        ("wrong activation: the paper's FFN uses ReLU (Eq. 2)", lambda: l2(F.gelu(l1(x)))),
        ("missing second linear (W2): the FFN maps d_ff back to d_model", lambda: torch.relu(l1(x))),
        ("no activation after the second linear: FFN(x) = max(0, x W1 + b1) W2 + b2",
         lambda: torch.relu(l2(torch.relu(l1(x))))),
        ("the residual belongs in the layer, not the FFN: return linear2(relu(linear1(x)))", lambda: x + ref(x)),
    ]
    compare(got, ref(x), variants=variants, inputs=f"x={describe(x)}", **MODULE_TOL,
            shape_hint=lambda shape: "the FFN maps (B, T, d_model) to (B, T, d_model)")


def check_encoder_layer(cls: type) -> None:
    """Check an ``EncoderLayer(d_model, n_heads, d_ff, dropout=0.0, norm_first=False)`` class, post- and pre-norm."""
    with seeded():
        models = ModelPair(cls, layers.EncoderLayer, "EncoderLayer", ["d_model", "n_heads", "d_ff"])
        x = torch.randn(2, 5, 16)
        pad = masks.padding_mask(torch.tensor([[4, 5, 6, 0, 0], [1, 2, 3, 4, 0]]), 0)  # (B, 1, 1, S)
        cases = [("post-norm (norm_first=False), B=2, S=5, d_model=16, n_heads=4, d_ff=32", (False, x, None)),
                 ("post-norm with a padding mask", (False, x, pad)),
                 ("pre-norm (norm_first=True)", (True, x, None)),
                 ("pre-norm with a padding mask", (True, x, pad))]
        run_cases("EncoderLayer", cases, lambda case: _encoder_case(models, *case))


def _encoder_case(models: ModelPair, norm_first: bool, x: Tensor, mask: Tensor | None) -> None:
    student, ref = models.get(16, 4, 32, dropout=0.0, norm_first=norm_first)
    got = call(student, x, names=["x"], **({} if mask is None else {"mask": mask}))

    def run(placement: str = "pre" if norm_first else "post", residual: tuple = (True, True), use_mask: bool = True,
            swap_norms: bool = False) -> Tensor:
        m = mask if use_mask else None
        norms = [ref.norm2, ref.norm1] if swap_norms else [ref.norm1, ref.norm2]
        blocks = [lambda h: ref.self_attn(h, h, h, mask=m)[0], ref.feed_forward]
        return sublayers_variant(x, blocks, norms, placement, residual)

    mistakes = layer_mistakes(norm_first, 2) + [
        ("the mask is not passed to self-attention", dict(use_mask=False)),
        ("norm1 and norm2 swapped: norm1 goes with self-attention, norm2 with the feed-forward", dict(swap_norms=True)),
    ]
    compare(got, ref(x, mask), variants=[(msg, lambda kw=kw: run(**kw)) for msg, kw in mistakes], **MODULE_TOL,
            inputs=f"x={describe(x)}" + (f", mask={describe(mask)}" if mask is not None else ""))


def check_decoder_layer(cls: type) -> None:
    """Check a ``DecoderLayer(d_model, n_heads, d_ff, dropout=0.0, norm_first=False)`` class (Sec. 3.1)."""
    with seeded():
        models = ModelPair(cls, layers.DecoderLayer, "DecoderLayer", ["d_model", "n_heads", "d_ff"])
        x, memory, causal = torch.randn(2, 4, 16), torch.randn(2, 6, 16), masks.causal_mask(4)
        src = masks.padding_mask(torch.tensor([[4, 5, 6, 7, 0, 0], [1, 2, 3, 4, 5, 0]]), 0)  # (B, 1, 1, S)
        cases = [("post-norm, no masks (B=2, T=4, S=6, d_model=16, n_heads=4, d_ff=32)",
                  (False, x, memory, None, None)),
                 ("post-norm, causal tgt_mask", (False, x, memory, None, causal)),
                 ("post-norm, causal tgt_mask and src padding mask", (False, x, memory, src, causal)),
                 ("pre-norm (norm_first=True), both masks", (True, x, memory, src, causal))]
        run_cases("DecoderLayer", cases, lambda case: _decoder_case(models, *case))


def _decoder_case(models: ModelPair, norm_first: bool, x: Tensor, memory: Tensor, src_mask: Tensor | None,
                  tgt_mask: Tensor | None) -> None:
    student, ref = models.get(16, 4, 32, dropout=0.0, norm_first=norm_first)
    given = {k: m for k, m in (("src_mask", src_mask), ("tgt_mask", tgt_mask)) if m is not None}
    got = call(student, x, memory, names=["x", "memory"], **given)

    def run(placement: str = "pre" if norm_first else "post", residual: tuple = (True,) * 3, tgt: bool = True,
            src: bool = True, kv_from_x: bool = False, own_causal: bool = False, order: tuple = (0, 1, 2)) -> Tensor:
        t_mask = masks.causal_mask(x.shape[1]) if own_causal else tgt_mask if tgt else None
        s_mask = src_mask if src else None
        blocks = [lambda h: ref.self_attn(h, h, h, mask=t_mask)[0],
                  lambda h: ref.cross_attn(h, h if kv_from_x else memory, h if kv_from_x else memory, mask=s_mask)[0],
                  ref.feed_forward]
        norms = [[ref.norm1, ref.norm2, ref.norm3][i] for i in order]
        return sublayers_variant(x, blocks, norms, placement, residual)

    mistakes = layer_mistakes(norm_first, 3) + [
        ("causal mask not used: self-attention must get tgt_mask, or the decoder sees future tokens", dict(tgt=False)),
        ("cross-attention ignores src_mask (the padding of the source)", dict(src=False)),
        ("cross-attention must take key and value from memory (the encoder output), the query from x: "
         "cross_attn(x, memory, memory, src_mask)", dict(kv_from_x=True)),
        ("your layer builds its own causal mask: use the tgt_mask argument (None = no mask)", dict(own_causal=True)),
        *(("norm layers in the wrong order: norm1 goes with self-attention, norm2 with cross-attention, norm3 with "
           "the feed-forward", dict(order=p)) for p in permutations(range(3)) if p != (0, 1, 2)),
    ]
    inputs = ", ".join(f"{n}={describe(t)}" for n, t in (("x", x), ("memory", memory), *given.items()))
    compare(got, ref(x, memory, src_mask=src_mask, tgt_mask=tgt_mask), **MODULE_TOL, inputs=inputs,
            variants=[(msg, lambda kw=kw: run(**kw)) for msg, kw in mistakes])


def check_layer_norm(cls: type) -> None:
    """Check notebook 07's stretch ``LayerNorm(d_model, eps=1e-5)`` against ``nn.LayerNorm`` (weight and bias)."""
    with seeded():
        models = ModelPair(cls, torch.nn.LayerNorm, "LayerNorm", ["d_model"])
        cases = [("B=2, T=5, d_model=8, inputs with a nonzero mean", (8, {}, 2 * torch.randn(2, 5, 8) + 1)),
                 ("tiny inputs (std 0.001: eps matters)", (6, {}, 1e-3 * torch.randn(2, 3, 6))),
                 ("d_model=4 (few features: the biased variance matters)", (4, {}, torch.randn(3, 4, 4))),
                 ("eps=0.1 given", (6, {"eps": 0.1}, 0.5 * torch.randn(2, 3, 6))),
                 ("2-D input (N, d_model)", (8, {}, torch.randn(4, 8) - 0.5))]
        run_cases("LayerNorm", cases, lambda case: _layer_norm_case(models, *case))


def _layer_norm_case(models: ModelPair, d_model: int, kwargs: dict, x: Tensor) -> None:
    student, ref = models.get(d_model, **kwargs)
    got = call(student, x, names=["x"])
    w, b, eps = ref.weight, ref.bias, ref.eps

    def norm(dims=(-1,), unbiased=False, eps_outside=False) -> Tensor:
        centred = x - x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
        return centred / (var.sqrt() + eps) if eps_outside else centred / (var + eps).sqrt()

    axis = "normalise over the last axis (the d_model features of each position), dim=-1"
    variants = [
        ("unbiased variance: torch.std/torch.var divide by d_model - 1 by default (The Annotated Transformer's "
         "LayerNorm does this, and adds eps outside the sqrt); LayerNorm divides by d_model: "
         "x.var(-1, unbiased=False), then sqrt(var + eps)", lambda: w * norm(unbiased=True) + b),
        ("eps added outside the sqrt: (x - mean) / sqrt(var + eps), not / (std + eps)",
         lambda: w * norm(eps_outside=True) + b),
        (f"normalised over the positions (dim=-2): {axis}", lambda: w * norm(dims=(-2,)) + b),
        (f"normalised over every axis but the batch: {axis}", lambda: w * norm(dims=tuple(range(1, x.ndim))) + b),
        (f"normalised over the whole tensor: {axis}", lambda: w * norm(dims=tuple(range(x.ndim))) + b),
        ("weight and bias missing: multiply by self.weight, then add self.bias", lambda: norm()),
        ("bias missing: add self.bias after multiplying by self.weight", lambda: w * norm()),
        ("weight missing: multiply by self.weight before adding self.bias", lambda: norm() + b),
        ("weight and bias swapped: y = weight * x_hat + bias", lambda: b * norm() + w),
        ("eps ignored: use the eps argument (stored as self.eps)", lambda: w * _norm_eps(x, 1e-5) + b),
    ]
    compare(got, ref(x), variants=variants, inputs=f"x={describe(x)}, eps={eps}", **MODULE_TOL,
            shape_hint=lambda shape: "LayerNorm keeps the shape of its input")


def _norm_eps(x: Tensor, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over the last axis, biased variance: LayerNorm without weight and bias."""
    return (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, unbiased=False) + eps).sqrt()
