"""Tests of transformer_lib.translator: translate, corpus_bleu, the fp16 export and checkpoints that fail clearly."""

from __future__ import annotations

import collections
import warnings

import pytest
import torch
from torch.testing import assert_close

from transformer_lib.corpus import generate_pairs
from transformer_lib.data import sha256_file
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.tokenizer import BPETokenizer
from transformer_lib.train import Trainer, TrainSettings, save_checkpoint
from transformer_lib.translator import (
    FORMAT,
    corpus_bleu,
    export_translator,
    load_checkpoint,
    load_translator,
    model_from_checkpoint,
    translate,
)

torch.set_num_threads(1)

PAIRS = generate_pairs(50, seed=0)
SENTENCES = [en for en, _ in PAIRS[:3]]


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train([text for pair in PAIRS for text in pair], vocab_size=200, min_frequency=1)


@pytest.fixture(scope="module")
def model(tok) -> Transformer:
    """A tiny model with random weights, in eval mode (translate needs no training to be tested)."""
    torch.manual_seed(0)
    return Transformer(TransformerConfig.tiny(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size)).eval()


@pytest.fixture(scope="module")
def exported(tok, model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "translator.pt"
    sha = export_translator(model, tok, path, history=[{"step": 1, "loss": 2.5}], command="python -m ...")
    return path, sha


# -- translate and corpus_bleu ----------------------------------------------------------------------------


@pytest.mark.parametrize("beam_size", [1, 3])
def test_translate_gives_one_str_per_sentence(tok, model, beam_size):
    out = translate(model, tok, SENTENCES, beam_size=beam_size)
    assert isinstance(out, list) and len(out) == len(SENTENCES) and all(isinstance(s, str) for s in out)


def test_translate_of_no_sentences_is_an_empty_list(tok, model):
    assert translate(model, tok, []) == []


def test_translate_in_small_batches_gives_the_same_output(tok, model):
    """Batches pad differently; the padding mask makes that invisible."""
    assert translate(model, tok, SENTENCES, batch_size=2) == translate(model, tok, SENTENCES, batch_size=64)


def test_translate_of_one_str_is_a_type_error(tok, model):
    with pytest.raises(TypeError, match=r"sentences must be a list of str; for one sentence write \[sentence\]"):
        translate(model, tok, "I see the car.")


def test_translate_cuts_a_sentence_longer_than_max_len_and_warns(tok, model):
    long = " ".join(SENTENCES * 3)
    with pytest.warns(UserWarning, match="longer than max_len = 16 tokens"):
        out = translate(model, tok, [long, SENTENCES[0]], max_len=16)
    assert len(out) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when nothing is cut
        translate(model, tok, SENTENCES[:1], max_len=64)


def test_corpus_bleu_of_identical_text_is_100_and_of_unrelated_text_near_0():
    refs = [fr for _, fr in PAIRS[:5]]
    assert corpus_bleu(refs, refs).score == pytest.approx(100.0)
    assert corpus_bleu(["xyz"] * 5, refs).score < 1.0


def test_corpus_bleu_with_different_lengths_is_an_error():
    with pytest.raises(ValueError, match="same length; got 2 and 1"):
        corpus_bleu(["a b", "c d"], ["a b"])


# -- export and load ----------------------------------------------------------------------------------------


def test_export_writes_fp16_weights_and_returns_the_sha256(exported):
    path, sha = exported
    assert sha == sha256_file(path)
    state = torch.load(path, weights_only=True)
    assert state["format"] == FORMAT and "optimizer" not in state
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    assert state["history"] == [{"step": 1, "loss": 2.5}] and state["command"] == "python -m ..."  # **info kept


def test_load_translator_restores_the_model_within_fp16_tolerance(tok, model, exported):
    path, sha = exported
    loaded, loaded_tok, _ = load_translator(path, sha256=sha)
    assert not loaded.training and loaded.config == model.config
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert loaded_tok.tokenizer.to_str() == tok.tokenizer.to_str()
    src, _ = tok.encode_batch(SENTENCES)  # (3, S)
    tgt, _ = tok.encode_batch([fr for _, fr in PAIRS[:3]])  # (3, T)
    with torch.no_grad():
        want, got = model(src, tgt), loaded(src, tgt)  # (3, T, V)
    assert_close(got, want, rtol=1e-2, atol=1e-2)  # fp16 keeps about 3 significant digits
    assert not torch.equal(got, want)  # it was rounded
    for name, weight in model.state_dict().items():
        assert_close(loaded.state_dict()[name], weight.half().float(), rtol=0, atol=0)


def test_a_training_checkpoint_loads_as_a_translator_with_exact_weights(tok, tmp_path):
    torch.manual_seed(0)
    config = TransformerConfig.tiny(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size)
    trainer = Trainer(Transformer(config), tok, PAIRS[:8], settings=TrainSettings(max_tokens=200, warmup=10),
                      progress=False).fit(max_steps=2)
    save_checkpoint(trainer, tmp_path / "last.pt")
    loaded, _, state = load_translator(tmp_path / "last.pt")
    assert state["step"] == 2 and "optimizer" in state
    assert_close(loaded.state_dict(), trainer.model.state_dict(), rtol=0, atol=0)


def test_model_from_checkpoint_builds_float32_in_eval_mode(exported):
    model, tokenizer = model_from_checkpoint(load_checkpoint(exported[0]))
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert tokenizer.vocab_size == model.config.src_vocab_size


# -- checkpoints that cannot be loaded ------------------------------------------------------------------------


def one_line_value_error(match: str):
    return pytest.raises(ValueError, match=f"^[^\n]*{match}[^\n]*$")


def test_a_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="is missing"):
        load_translator(tmp_path / "nope.pt", sha256="0" * 64)


@pytest.mark.parametrize("damage", ["truncated", "first bytes", "text", "empty"])
def test_a_corrupted_checkpoint_is_a_one_line_value_error(exported, tmp_path, damage):
    good = exported[0].read_bytes()
    data = {"truncated": good[: len(good) // 2], "first bytes": good[:100],
            "text": b"these are not the weights you are looking for\n", "empty": b""}[damage]
    (tmp_path / "bad.pt").write_bytes(data)
    with one_line_value_error("bad.pt is not a readable checkpoint \\(corrupted or truncated\\?\\)"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_wrong_sha256_is_a_value_error(exported):
    path, sha = exported
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    with pytest.raises(ValueError, match=f"corrupted or has changed: SHA-256 expected {wrong}, got {sha}"):
        load_checkpoint(path, sha256=wrong)
    with pytest.raises(ValueError, match="corrupted or has changed"):
        load_translator(path, sha256=wrong)


@pytest.mark.parametrize("content", ["tensor", "dict", "other format", "counter"])
def test_a_torch_file_that_is_not_our_format_is_a_value_error(tmp_path, content):
    obj = {"tensor": torch.zeros(3), "dict": {"model": {"w": torch.zeros(2)}}, "other format": {"format": "x/1"},
           "counter": collections.Counter(a=1)}[content]
    torch.save(obj, tmp_path / "other.pt")
    with one_line_value_error(f"other.pt is not a transformer_lib checkpoint \\(expected format '{FORMAT}'\\)"):
        load_checkpoint(tmp_path / "other.pt")


class _NotPlainData:
    pass


def test_a_torch_file_with_python_objects_is_refused_without_running_code(tmp_path):
    torch.save({"format": FORMAT, "thing": _NotPlainData()}, tmp_path / "pickled.pt")
    with one_line_value_error("it holds objects other than tensors and plain data"):
        load_checkpoint(tmp_path / "pickled.pt")
