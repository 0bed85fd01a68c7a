"""The shipped English->French checkpoint (data/translator_en_fr.pt): its checksum, size and recorded score."""

import json

import pytest

from transformer_lib.data import sha256_file
from transformer_lib.translator import SHIPPED, SHIPPED_SHA256, corpus_bleu, load_corpus, load_translator, translate

RECORD = SHIPPED.with_suffix(".json")


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text(encoding="utf-8"))


def test_checkpoint_is_shipped_with_its_checksum(record):
    assert SHIPPED.is_file(), f"{SHIPPED} is missing: see data/README.md"
    assert SHIPPED_SHA256 == record["sha256"] == sha256_file(SHIPPED)
    assert SHIPPED.stat().st_size <= 25 * 2**20  # the limit for a file in the repository
    assert record["scores"]["generated_test_beam4"]["bleu"] >= 85


def test_a_fixed_subset_reproduces_the_recorded_score(record):
    model, tokenizer, state = load_translator()  # checks SHIPPED_SHA256
    assert all(v.dtype.is_floating_point for v in model.state_dict().values() if v.is_floating_point())
    subset = record["scores"]["generated_test_first50_greedy"]
    pairs = load_corpus("generated")["test"][: subset["sentences"]]
    hypotheses = translate(model, tokenizer, [en for en, _ in pairs])
    # fp16 weights computed in float32 on the CPU: another CPU may round differently, rarely flipping a token
    assert corpus_bleu(hypotheses, [fr for _, fr in pairs]).score == pytest.approx(subset["bleu"], abs=1.0)
    assert state["command"].startswith("python -m transformer_lib.train")
