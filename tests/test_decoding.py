"""Tests of transformer_lib.decoding.greedy_decode."""

import pytest
import torch

from transformer_lib.decoding import greedy_decode
from transformer_lib.model import Transformer, TransformerConfig

BOS, EOS, PAD = 1, 2, 0


class Scripted(Transformer):
    """A Transformer whose decoder emits a fixed script per sequence: token 5 until step eos_at[b], then EOS."""

    def __init__(self, eos_at):
        super().__init__(TransformerConfig.tiny(src_vocab_size=8, tgt_vocab_size=8))
        self.eos_at = eos_at
        self.encode_calls = 0

    def encode(self, src, src_mask=None):
        self.encode_calls += 1
        return super().encode(src, src_mask)

    def decode(self, tgt, memory, src_mask=None, tgt_mask=None):
        B, T = tgt.shape
        logits = torch.zeros(B, T, 8)
        for b, at in enumerate(self.eos_at):
            logits[b, -1, EOS if T >= at else 5] = 1.0
        return logits


def test_shape_bos_dtype_and_max_len():
    model = Transformer(TransformerConfig.tiny())
    src = torch.randint(3, 32, (3, 6))
    out = greedy_decode(model, src, max_len=7, bos_id=BOS, eos_id=EOS)
    assert out.dtype == torch.long and out.shape[0] == 3 and 1 <= out.shape[1] <= 7
    assert (out[:, 0] == BOS).all()
    assert greedy_decode(model, src, max_len=1, bos_id=BOS, eos_id=EOS).tolist() == [[BOS]] * 3


def test_deterministic_and_restores_training_mode():
    model = Transformer(TransformerConfig.tiny(dropout=0.1)).train()
    src = torch.randint(3, 32, (2, 6))
    a = greedy_decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS)
    b = greedy_decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS)
    assert torch.equal(a, b)  # eval mode inside: no dropout
    assert model.training


def test_stops_when_all_sequences_ended_and_pads_after_eos():
    model = Scripted(eos_at=[2, 4])  # sequence 0 emits EOS at step 2, sequence 1 at step 4
    out = greedy_decode(model, torch.randint(3, 8, (2, 5)), max_len=20, bos_id=BOS, eos_id=EOS)
    assert out.tolist() == [
        [BOS, 5, EOS, PAD, PAD],
        [BOS, 5, 5, 5, EOS],
    ]
    assert model.encode_calls == 1  # the source is encoded once


def test_stops_at_max_len_without_eos():
    model = Scripted(eos_at=[100, 100])
    out = greedy_decode(model, torch.randint(3, 8, (2, 5)), max_len=6, bos_id=BOS, eos_id=EOS)
    assert out.shape == (2, 6) and (out[:, 1:] == 5).all()


def test_trained_copy_model_reproduces_the_source(copy_task):
    out = greedy_decode(copy_task.model, copy_task.src, max_len=12, bos_id=copy_task.bos_id, eos_id=copy_task.eos_id)
    assert out.shape == (8, 10)  # BOS + 8 tokens + EOS, then stop: all sequences ended
    assert torch.equal(out[:, 1:9], copy_task.src)
    assert (out[:, 9] == copy_task.eos_id).all()


def test_errors():
    model = Transformer(TransformerConfig.tiny())
    src = torch.randint(3, 32, (2, 6))
    with pytest.raises(ValueError, match="max_len must be <= config.max_len = 64"):
        greedy_decode(model, src, max_len=65, bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        greedy_decode(model, src, max_len=0, bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError, match=r"bos_id must be an int token id in \[0, 32\)"):
        greedy_decode(model, src, max_len=5, bos_id=32, eos_id=EOS)
    with pytest.raises(TypeError, match=r"src must be a torch.long tensor"):
        greedy_decode(model, src.float(), max_len=5, bos_id=BOS, eos_id=EOS)
    with pytest.raises(TypeError, match="model must be a transformer_lib.model.Transformer"):
        greedy_decode(torch.nn.Linear(2, 2), src, max_len=5, bos_id=BOS, eos_id=EOS)
