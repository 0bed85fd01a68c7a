"""Tests of transformer_lib.tokenizer: the BPE tokenizer of the translation notebooks (Hugging Face tokenizers)."""

import json
import unicodedata

import pytest
import tokenizers
import torch

from transformer_lib.data import sha256_file
from transformer_lib.tasks import BOS_ID, EOS_ID, PAD_ID
from transformer_lib.tokenizer import BOS, EOS, PAD, UNK, UNK_ID, BPETokenizer, train_bpe_tokenizer

CORPUS = [  # small, inline: the tests train in milliseconds
    "I see the small red car.", "The car is red.", "I have 2 cats and 13 dogs.", "Where are you going?",
    "Je vois la petite voiture rouge.", "La voiture est rouge.", "J'ai vu l'arbre.", "Où est-ce que vous allez ?",
    "C'est l'été, n'est-ce pas ?", "Elle a 42 ans !", "Qu'il fait beau ; allons-y : « vite » !",
    "Il était une fois, en 1999, un garçon.", "Tu sais, j'ai faim.", "Où êtes-vous allés ? Ça va ?",
    "Noël à l'hôtel, 0 5 6 7 8.",
] * 3

SENTENCES = [  # every character appears in CORPUS
    "j'ai vu l'arbre.", "Où est-ce que vous allez ?", "Je vois la petite voiture ?", "I see the small red car.",
    "Elle a 1999 ans !", "C'est l'été, n'est-ce pas ?", "« vite » ; allons-y : Noël !", "Ça va  bien ?", "car ",
]


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train(CORPUS, vocab_size=200, min_frequency=2)


@pytest.mark.parametrize("text", SENTENCES)
def test_round_trip_english_and_french(tok, text):
    ids = tok.encode(text)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and tok.unk_id not in ids
    assert tok.decode(ids) == text


def test_round_trip_normalises_to_nfc(tok):
    decomposed = unicodedata.normalize("NFD", "l'été")
    assert decomposed != "l'été" and tok.decode(tok.encode(decomposed)) == "l'été"


def test_specials_have_the_ids_of_tasks_py(tok):
    assert (PAD, BOS, EOS, UNK) == ("<pad>", "<bos>", "<eos>", "<unk>")
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert [tok.id_to_token(i) for i in range(4)] == [PAD, BOS, EOS, UNK]
    assert [tok.token_to_id(t) for t in (PAD, BOS, EOS, UNK)] == [0, 1, 2, 3]
    assert tok.encode("") == [1, 2] and tok.decode([0, 1, 2, 0]) == ""
    assert tok.encode("the car", add_special=False) == tok.encode("the car")[1:-1]


def test_special_names_in_a_text_are_text(tok):
    ids = tok.encode("a <eos> b")
    assert ids.count(tok.eos_id) == 1 and ids[-1] == tok.eos_id


def test_pieces_keep_punctuation_apostrophes_and_digits_apart(tok):
    assert tok.tokens("l'arbre.")[-1] == "." and "'" in tok.tokens("l'arbre.")
    assert tok.tokens("voiture ?")[-2:] == ["▁", "?"]  # the French space before "?" is kept
    assert [p for p in tok.tokens("1999") if p != "▁"] == ["1", "9", "9", "9"]
    assert all(tok.token_to_id(p) == i for p, i in zip(tok.tokens("the red car"), tok.encode("the red car")[1:-1]))
    with pytest.raises(KeyError, match="not in the vocabulary"):
        tok.token_to_id("▁zzzz")


def test_unknown_characters_map_to_unk(tok):
    ids = tok.encode("the 🚗 car")
    assert tok.unk_id in ids
    assert tok.decode(ids) == "the <unk> car"  # shown, not silently dropped


def test_encode_batch_pads_and_truncates_keeping_eos(tok):
    texts = ["The car is red.", "Où est-ce que vous allez ?", "Oui"]
    rows = [tok.encode(t) for t in texts]
    ids, lengths = tok.encode_batch(texts)
    assert ids.dtype == lengths.dtype == torch.long
    assert ids.shape == (3, max(map(len, rows))) and lengths.tolist() == [len(r) for r in rows]
    for row, length, expected in zip(ids, lengths, rows):
        assert row[:length].tolist() == expected and (row[length:] == tok.pad_id).all()
    ids, lengths = tok.encode_batch(texts, max_len=5)
    assert ids.shape[1] <= 5 and lengths.max() <= 5
    for row, length, expected in zip(ids, lengths, rows):
        kept = row[:length].tolist()
        assert kept == (expected if len(expected) <= 5 else expected[:4] + [tok.eos_id])
        assert kept[0] == tok.bos_id and kept[-1] == tok.eos_id
    ids, lengths = tok.encode_batch(texts, max_len=3, add_special=False)
    assert ids[1].tolist() == rows[1][1:4] and lengths[1] == 3
    assert tok.encode_batch(["Oui"], max_len=50)[0].shape == (1, len(rows[2]))  # padded to the longest, not max_len


def test_training_is_deterministic(tmp_path):
    a, b = BPETokenizer.train(CORPUS, 200), BPETokenizer.train(list(reversed(CORPUS * 2))[::2], 200)
    assert a.tokenizer.to_str() == BPETokenizer.train(iter(CORPUS), 200).tokenizer.to_str()
    assert a.save(tmp_path / "a.json") == BPETokenizer.train(CORPUS, 200).save(tmp_path / "again.json")
    assert b.vocab_size <= 200 and a.vocab_size == len(a)


def test_save_load_with_checksum(tok, tmp_path):
    path = tmp_path / "sub" / "tokenizer.json"
    digest = tok.save(path)
    assert digest == sha256_file(path) and json.loads(path.read_text())["model"]["type"] == "BPE"
    for loaded in (BPETokenizer.load(path, sha256=digest), BPETokenizer.load(str(path))):
        assert loaded.vocab_size == tok.vocab_size and loaded.encode(SENTENCES[1]) == tok.encode(SENTENCES[1])
        assert loaded.encode("a <eos>").count(EOS_ID) == 1  # set again after loading


def test_load_errors(tok, tmp_path):
    path = tmp_path / "tokenizer.json"
    digest = tok.save(path)
    with pytest.raises(FileNotFoundError, match="missing"):
        BPETokenizer.load(tmp_path / "none.json")
    with pytest.raises(FileNotFoundError, match="missing"):
        BPETokenizer.load(tmp_path / "none.json", sha256=digest)
    path.write_text(path.read_text().replace("▁car", "▁cat"))
    with pytest.raises(ValueError, match="corrupted or has changed: SHA-256 expected"):
        BPETokenizer.load(path, sha256=digest)
    path.write_text('{"version": "1.0", "model": {')
    with pytest.raises(ValueError, match="is not a tokenizer JSON file"):
        BPETokenizer.load(path)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda t: train_bpe_tokenizer("one text"), TypeError, "iterable of str.*got one str"),
    (lambda t: train_bpe_tokenizer(["ok", 3]), TypeError, r"texts\[1\] is int"),
    (lambda t: train_bpe_tokenizer(["a b"], vocab_size=4), ValueError, "vocab_size must be > 4"),
    (lambda t: train_bpe_tokenizer(["a b"], min_frequency=0), ValueError, "min_frequency must be a positive int"),
    (lambda t: train_bpe_tokenizer(["  ", ""]), ValueError, "at least one non-blank sentence"),
    (lambda t: t.encode(["a", "b"]), TypeError, "text must be a str.*encode_batch"),
    (lambda t: t.encode_batch([]), ValueError, "at least one text"),
    (lambda t: t.encode_batch(["a"], max_len=1), ValueError, "max_len must be >= 2"),
    (lambda t: t.encode_batch(["a"], max_len=0), ValueError, "max_len must be a positive int"),
    (lambda t: t.decode(torch.zeros(2, 3, dtype=torch.long)), ValueError, "1-D tensor"),
    (lambda t: t.decode([1, 10**6]), ValueError, r"ids must be ints in \[0, "),
    (lambda t: t.id_to_token(-1), ValueError, "index must be an int in"),
    (lambda t: BPETokenizer(tokenizers.Tokenizer(tokenizers.models.BPE())), ValueError, "ids 0-3 must be"),
    (lambda t: BPETokenizer("tokenizer.json"), TypeError, "must be a tokenizers.Tokenizer"),
])
def test_bad_input_is_a_clear_error(tok, call, error, match):
    with pytest.raises(error, match=match):
        call(tok)
