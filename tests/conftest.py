"""Shared fixtures of the library tests: fixed seeds, weight copying from torch modules, a trained copy-task model."""

from __future__ import annotations

import collections
import functools
import importlib
import os
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

# pytest -n N runs N worker processes; each one using every core (torch's default) makes them fight for the
# cores: on a 2-core machine a training step became 10x slower. Give each worker its share of the cores.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same RNG state, so every test is deterministic on its own."""
    torch.manual_seed(0)


def _copy_mha(ours, theirs: nn.MultiheadAttention) -> None:
    """Copy nn.MultiheadAttention's packed in_proj (q, k, v stacked) into our q_proj, k_proj, v_proj."""
    with torch.no_grad():
        for proj, w, b in zip(
            (ours.q_proj, ours.k_proj, ours.v_proj),
            theirs.in_proj_weight.chunk(3),  # 3 x (d_model, d_model)
            theirs.in_proj_bias.chunk(3),  # 3 x (d_model,)
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.weight.copy_(theirs.out_proj.weight)
        ours.out_proj.bias.copy_(theirs.out_proj.bias)


def _copy_layer(ours, theirs: nn.Module) -> None:
    """Copy an nn.TransformerEncoderLayer / nn.TransformerDecoderLayer into our EncoderLayer / DecoderLayer."""
    _copy_mha(ours.self_attn, theirs.self_attn)
    if hasattr(theirs, "multihead_attn"):
        _copy_mha(ours.cross_attn, theirs.multihead_attn)
    with torch.no_grad():
        ours.feed_forward.linear1.load_state_dict(theirs.linear1.state_dict())
        ours.feed_forward.linear2.load_state_dict(theirs.linear2.state_dict())
        for name in ("norm1", "norm2", "norm3"):
            if hasattr(theirs, name):
                getattr(ours, name).load_state_dict(getattr(theirs, name).state_dict())


@pytest.fixture
def copy_mha():
    """``copy_mha(ours, theirs)``: load nn.MultiheadAttention weights into our MultiHeadAttention."""
    return _copy_mha


@pytest.fixture
def copy_layer():
    """``copy_layer(ours, theirs)``: load nn.Transformer{Encoder,Decoder}Layer weights into ours."""
    return _copy_layer


_CHECKS = ("check_tensor", "check_dim", "check_positive_int", "check_probability", "check_token_ids", "validate_mask")
_MODULES = ("_validation", "attention", "masks", "positional", "multihead", "layers", "model", "decoding")


@pytest.fixture
def check_calls(monkeypatch) -> collections.Counter:
    """Count the input checks that run: ``check_calls["validate_mask"]`` after some library calls.

    Every library module imports the checks into its own namespace (``from ._validation import
    check_tensor``), so the name is wrapped in each module that has it, ``_validation`` included
    (``check_token_ids`` calls ``check_tensor`` there).
    """
    calls: collections.Counter = collections.Counter()

    def counting(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    for module_name in _MODULES:
        module = importlib.import_module(f"transformer_lib.{module_name}")
        for name in _CHECKS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting(name, getattr(module, name)))
    return calls


@dataclass
class CopyTask:
    """A tiny model trained to copy one batch: ids 0 pad, 1 BOS, 2 EOS, 3..V-1 content."""

    model: torch.nn.Module
    src: torch.Tensor  # (8, 8)
    final_loss: float
    steps: int
    bos_id: int = 1
    eos_id: int = 2


@pytest.fixture(scope="session")
def copy_task() -> CopyTask:
    """Train ``TransformerConfig.tiny`` on 8 sequences of length 8 (vocab 12) until the loss is < 0.01 (a copy that is exact, EOS included)."""
    from transformer_lib.model import Transformer, TransformerConfig

    torch.manual_seed(0)
    V, bos, eos = 12, 1, 2
    model = Transformer(TransformerConfig.tiny(src_vocab_size=V, tgt_vocab_size=V))
    src = torch.randint(3, V, (8, 8))  # (8, 8) no pad, BOS or EOS inside
    tgt_in = torch.cat([torch.full((8, 1), bos), src], dim=1)  # (8, 9) shifted right
    tgt_out = torch.cat([src, torch.full((8, 1), eos)], dim=1)  # (8, 9)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(1, 301):
        logits = model(src, tgt_in)  # (8, 9, V)
        loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    model.eval()
    return CopyTask(model, src, loss.item(), step)
