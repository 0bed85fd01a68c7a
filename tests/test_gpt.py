"""Tests of transformer_lib.gpt: the decoder-only LM, the course text, sampling."""

import pytest
import torch

from transformer_lib import gpt
from transformer_lib.gpt import CharVocab, DecoderOnlyLM, load_sentences, sample


def _lm(**kw):
    torch.manual_seed(0)
    args = dict(vocab_size=20, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=12)
    return DecoderOnlyLM(**{**args, **kw}).eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_shape_and_causality(norm_first):
    lm = _lm(norm_first=norm_first)
    ids = torch.randint(0, 20, (2, 9))
    out = lm(ids)
    assert out.shape == (2, 9, 20)
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 20  # change the future
    torch.testing.assert_close(lm(changed)[:, :6], out[:, :6])  # the past does not see it
    assert not torch.allclose(lm(changed)[:, 6:], out[:, 6:])


def test_tied_output_and_final_norm():
    lm = _lm()
    assert lm.output_proj.weight is lm.tok_embed.weight
    assert isinstance(lm.final_norm, torch.nn.LayerNorm)
    assert isinstance(_lm(norm_first=False).final_norm, torch.nn.Identity)
    n_params = sum(p.numel() for p in lm.parameters())
    assert n_params == sum(p.numel() for p in _lm().parameters())  # the shared matrix counts once


def test_positions_matter():
    lm = _lm()
    ids = torch.tensor([[3, 3, 3, 3]])
    out = lm(ids)[0]
    assert not torch.allclose(out[1], out[2])  # same token, same visible set up to order: positions differ


def test_gradients_reach_every_parameter():
    lm = _lm().train()
    lm(torch.randint(0, 20, (2, 6))).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lm.parameters())


def test_bad_input_is_named():
    lm = _lm()
    with pytest.raises(ValueError, match="max_len"):
        lm(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises((TypeError, ValueError), match="ids"):
        lm(torch.zeros(1, 3))


def test_load_sentences_checks_checksum(tmp_path, monkeypatch):
    text = load_sentences()
    assert len(text) > 20_000 and text.endswith(".\n")
    (tmp_path / "simple_sentences.txt").write_text(text + "x")
    monkeypatch.setattr(gpt, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        load_sentences()


def test_char_vocab_round_trip():
    text = load_sentences()[:500]
    vocab = CharVocab(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_sample_shapes_greedy_and_seeded():
    lm = _lm().train()
    prompt = torch.zeros(2, 3, dtype=torch.long)
    a = sample(lm, prompt, 15, temperature=1.0, generator=torch.Generator().manual_seed(0))
    b = sample(lm, prompt, 15, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 18) and torch.equal(a, b) and torch.equal(a[:, :3], prompt)
    assert lm.training  # restored
    greedy = sample(lm, prompt, 5, temperature=0)
    assert torch.equal(greedy[:, 3], lm.eval()(prompt)[:, -1].argmax(-1))
    with pytest.raises(ValueError, match="temperature"):
        sample(lm, prompt, 3, temperature=-1.0)
