"""Checks of notebook 12's exercises (decoder-only models and what changed since 2017).

``check_decoder_only_lm`` checks a GPT-style ``DecoderOnlyLM`` class against :class:`transformer_lib.gpt.DecoderOnlyLM`;
``check_rotary_embedding`` checks an ``apply_rotary(x, positions)`` function against
:func:`transformer_lib.gpt.apply_rotary`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .. import gpt, masks
from ._core import MODULE_TOL, Mistake, call, close, compare, describe, run_cases, seeded
from ._modules import ModelPair

__all__ = ["check_decoder_only_lm", "check_rotary_embedding"]

_LM_ARGS = ["vocab_size", "d_model", "n_heads", "n_layers", "d_ff", "max_len"]


def check_decoder_only_lm(cls: type) -> None:
    """Check a ``DecoderOnlyLM(vocab_size, d_model, n_heads, n_layers, d_ff, max_len)`` class (pre-norm, GPT-style).

    Its attributes are the reference's: ``tok_embed``, ``pos_embed``, ``layers`` (EncoderLayers),
    ``final_norm``, ``output_proj`` (weight tied to ``tok_embed.weight``). ``forward(ids) -> logits``.
    """
    with seeded():
        models = ModelPair(cls, gpt.DecoderOnlyLM, "DecoderOnlyLM", _LM_ARGS)
        sizes = (16, 24, 2, 2, 32, 20)  # max_len > vocab_size: positions taken from the ids still run
        ids = torch.randint(0, 16, (2, 9))  # (B, T)
        cases = [("the output projection is tied to the token embedding", ("tied", sizes, ids)),
                 ("no position sees a later token (change the last tokens: the earlier logits must not move)",
                  ("causal", sizes, ids)),
                 ("logits, B=2, T=9, V=16, d_model=24, 2 heads, 2 layers", ("logits", sizes, ids)),
                 ("one token (T=1)", ("logits", sizes, ids[:, :1])),
                 ("V=11, d_model=24, 3 heads, 1 layer, T=20 = max_len",
                  ("logits", (11, 24, 3, 1, 48, 20), torch.randint(0, 11, (3, 20))))]
        run_cases("DecoderOnlyLM", cases, lambda case: _lm_case(models, *case))


def _lm_case(models: ModelPair, kind: str, sizes: tuple, ids: Tensor) -> None:
    if kind == "tied":  # before the weights are copied by name (an untied output_proj.weight has no reference)
        if isinstance(models.cls, torch.nn.Module):
            models.get(*sizes)  # raises: pass the class, not an instance
        student = call(models.cls, *sizes, names=_LM_ARGS)
        out_proj, embed = getattr(student, "output_proj", None), getattr(student, "tok_embed", None)
        if getattr(out_proj, "weight", None) is None or getattr(embed, "weight", None) is None:
            raise Mistake("your model needs tok_embed = nn.Embedding(vocab_size, d_model) and output_proj = "
                          "nn.Linear(d_model, vocab_size, bias=False), the layer that turns vectors into logits")
        if out_proj.weight is not embed.weight:
            raise Mistake("output projection not tied to the token embedding: after creating both, set "
                          "self.output_proj.weight = self.tok_embed.weight (one (V, d_model) matrix, Sec. 3.4)")
        return
    student, ref = models.get(*sizes)
    got = call(student, ids, names=["ids"])
    if kind == "causal":
        changed = ids.clone()
        changed[:, 5:] = (changed[:, 5:] + 1) % sizes[0]  # new tokens at positions 5.. only
        again = call(student, changed, names=["ids"])
        if isinstance(got, Tensor) and isinstance(again, Tensor) and got.shape == again.shape and not torch.allclose(
                got[:, :5], again[:, :5], atol=1e-5):
            inverted = _lm_variants(ref, ids)[3]
            if close(got, inverted[1](), **MODULE_TOL):
                raise Mistake(inverted[0])
            raise Mistake("causal mask missing: changing the tokens at positions 5.. changed the logits at positions "
                          "0..4, so earlier positions see later tokens. Pass causal_mask(T) to every layer")
        return
    compare(got, ref(ids), variants=_lm_variants(ref, ids), inputs=f"ids={describe(ids)}", **MODULE_TOL,
            shape_hint=lambda shape: ("you return hidden states: finish with final_norm then output_proj, giving "
                                      "logits (B, T, V)") if shape[-1] != ref.vocab_size else "")


def _lm_variants(ref: gpt.DecoderOnlyLM, ids: Tensor) -> list[tuple[str, Callable[[], Tensor]]]:
    T, d_model = ids.shape[1], ref.tok_embed.weight.shape[1]

    def run(positions: str = "arange", mask: str = "causal", final_norm: bool = True, scale: float = 1.0) -> Tensor:
        pos = {"arange": ref.pos_embed(torch.arange(T)), "ids": ref.pos_embed(ids), "none": 0}[positions]
        x = ref.tok_embed(ids) * scale + pos  # (B, T, d_model)
        m = {"causal": masks.causal_mask(T), "none": None, "inverted": ~masks.causal_mask(T)}[mask]
        for layer in ref.layers:
            x = layer(x, m)  # (B, T, d_model)
        return ref.output_proj(ref.final_norm(x) if final_norm else x)  # (B, T, V)

    return [
        ("positions missing: add pos_embed(torch.arange(T)) to the token embeddings (attention alone ignores "
         "order)", lambda: run(positions="none")),
        ("positions taken from the token ids: the position embedding is indexed by torch.arange(T), the "
         "positions 0..T-1", lambda: run(positions="ids")),
        ("causal mask missing: pass causal_mask(T) to every layer", lambda: run(mask="none")),
        ("your mask is inverted: each position sees only the tokens after it. True means MAY attend; "
         "causal_mask(T) is True on and below the diagonal",
         lambda: run(mask="inverted")),
        ("final LayerNorm missing: a pre-norm stack ends with final_norm before output_proj",
         lambda: run(final_norm=False)),
        ("the token embedding is scaled by sqrt(d_model): this model, like GPT, adds tok_embed(ids) and "
         "pos_embed(positions) unscaled", lambda: run(scale=math.sqrt(d_model))),
        ("you return probabilities: return the logits (no softmax; the loss applies it)",
         lambda: torch.softmax(run(), dim=-1)),
        ("you return log-probabilities: return the logits (no log_softmax)", lambda: torch.log_softmax(run(), dim=-1)),
    ]


def check_rotary_embedding(fn: Callable) -> None:
    """Check an ``apply_rotary(x, positions)`` function: RoPE on pairs (2i, 2i+1), theta_i = 10000 ** (-2i/d)."""
    with seeded():
        cases = [("x (T=5, d=8), positions 0..4", (torch.randn(5, 8), torch.arange(5))),
                 ("batched x (B=2, H=3, T=4, d=16), positions 0..3", (torch.randn(2, 3, 4, 16), torch.arange(4))),
                 ("positions not starting at 0 (7, 8, 9: a KV-cache step)", (torch.randn(2, 3, 8), torch.arange(7, 10))),
                 ("d=2: one pair, one frequency", (torch.randn(4, 2), torch.tensor([0, 1, 5, 100])))]
        run_cases("apply_rotary", cases, lambda case: _rotary_case(fn, *case))


def _rotary_variant(x: Tensor, positions: Tensor, pairs: str = "interleaved", sign: float = 1.0,
                    exponent: str = "2i/d", positions_from: str = "given") -> Tensor:
    d, T = x.shape[-1], x.shape[-2]
    i = torch.arange(0, d, 2, dtype=torch.float64)  # 2i
    theta = 10000.0 ** (-(i if exponent == "2i/d" else i / 2) / d)  # (d/2,)
    p = positions if positions_from == "given" else torch.arange(T)
    angle = p.to(torch.float64)[:, None] * theta  # (T, d/2)
    cos, sin = angle.cos().to(x.dtype), (sign * angle.sin()).to(x.dtype)
    if pairs == "interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]  # the "rotate_half" convention: pairs (i, i + d/2)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def _rotary_case(fn: Callable, x: Tensor, positions: Tensor) -> None:
    got = call(fn, x, positions, names=["x", "positions"])
    variants = [
        ("you rotate the pairs (i, i + d/2) (the rotate_half convention): this exercise pairs dims (2i, 2i+1), "
         "like the sinusoidal encoding", lambda: _rotary_variant(x, positions, pairs="half")),
        ("rotation in the wrong direction: the pair (x1, x2) becomes (x1 cos - x2 sin, x1 sin + x2 cos)",
         lambda: _rotary_variant(x, positions, sign=-1.0)),
        ("wrong frequencies: theta_i = 10000 ** (-2i / d) for pair i (the sinusoidal encoding's), not "
         "10000 ** (-i / d)", lambda: _rotary_variant(x, positions, exponent="i/d")),
        ("the positions argument is ignored: rotate by positions[t] * theta_i, not by t * theta_i",
         lambda: _rotary_variant(x, positions, positions_from="arange")),
        ("positions ignored entirely: the output equals x (rotate each pair by the angle positions[t] * theta_i)",
         lambda: x),
    ]
    compare(got, gpt.apply_rotary(x, positions), variants=variants, **MODULE_TOL,
            inputs=f"x={describe(x)}, positions={positions.tolist()}",
            shape_hint=lambda shape: "the output has the shape of x")
