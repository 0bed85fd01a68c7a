"""Bad input everywhere (issue 11, part 5): every public name of transformer_lib, tested on what cannot work.

For each public name (each module's ``__all__``, in the course ORDER of tests/test_utils.py) the tables list
the kinds of bad input that apply: a wrong shape, a wrong dtype (float ids, int activations, float masks), a
wrong device (a ``meta`` tensor beside a CPU model stands for "on another device"), a mask of the wrong
polarity convention or shape, an empty sequence, a token id out of the vocabulary, a value that cannot work
(a config, an option). Each must raise ValueError/TypeError naming the argument and what was expected.

What another test file already covers is not repeated: ``ELSEWHERE`` says where (and a test checks that the
file does name it). Constants take no input. ``EXEMPT`` lists the rest, each with its reason.
:func:`test_every_public_name_is_covered` fails when a new name appears in an ``__all__`` without a row.

Empty inputs: the pure functions and layers accept empty dims (``B = 0``, ``T = 0``) and return the empty
(or, for attention over zero keys, the zero) result; the models and decoders, whose inputs are token ids
from the tokenizer (always ``<bos>``/``<eos>``), refuse a sequence of length 0, and the decoders a batch of
0 (test_accepted_empty_inputs and the rows of kind "empty").
"""

from __future__ import annotations

import importlib

import pytest
import test_bad_input_text
import torch
from test_bad_input_text import meta, moved
from test_utils import ORDER

from transformer_lib._validation import check_bool, check_device, check_probability, validate_mask
from transformer_lib.attention import SelfAttention, dot_product_attention, scaled_dot_product_attention
from transformer_lib.cache import IncrementalDecoder
from transformer_lib.decoding import beam_search, greedy_decode
from transformer_lib.layers import DecoderLayer, EncoderLayer, FeedForward
from transformer_lib.masks import causal_mask, padding_mask, to_torch_attn_mask
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.multihead import MultiHeadAttention, split_heads
from transformer_lib.positional import LearnedPositionalEncoding, PositionalEncoding

torch.manual_seed(0)
CPU = torch.device("cpu")
V, D, H = 32, 32, 2  # TransformerConfig.tiny(): vocabulary, d_model, heads
MODEL = Transformer(TransformerConfig.tiny()).eval()
SRC, TGT = torch.randint(3, V, (2, 6)), torch.randint(3, V, (2, 5))  # (B, S), (B, T)
MEMORY = MODEL.encode(SRC)  # (2, 6, 32)
X, X5 = torch.randn(2, 5, D), torch.randn(5, 5, D)  # (B, T, d_model); B == T == 5
Q = torch.randn(2, H, 5, 8)  # (B, H, T, d_head)
MHA, FF, ENC, DEC = MultiHeadAttention(D, H), FeedForward(D, 64), EncoderLayer(D, H, 64), DecoderLayer(D, H, 64)


def ones(*shape: int) -> torch.Tensor:
    return torch.ones(shape, dtype=torch.bool)


PER_SEQUENCE = r"must have all 4 dims of .* \(a per-sequence mask\); got shape \({}\): with 2 dims it would be read as"
PAD_HINT = r"A per-sequence \(B, {k}\) padding mask needs its axes: {name}\[:, None, None, :\]"

# (public name, kind of bad input, call, exception, message regex), in the course ORDER
CASES = [
    ("_validation.check_probability", "config", lambda: check_probability(1.5, "dropout"), ValueError,
     r"dropout must be a float in \[0, 1\); got 1.5"),
    ("_validation.check_probability", "type", lambda: check_probability("0.1", "dropout"), TypeError,
     r"dropout must be a float in \[0, 1\); got str '0.1'"),
    ("_validation.check_device", "device", lambda: check_device(CPU, "the model's parameters", src=meta(SRC)),
     ValueError, moved("src")),
    ("_validation.check_bool", "type", lambda: check_bool("no", "norm_first"), TypeError,
     "norm_first must be True or False; got str 'no'"),
    ("_validation.validate_mask", "mask", lambda: validate_mask(ones(5, 6), (5, H, 5, 6), name="src_mask",
                                                                dims="(B, H, T, S)", per_sequence=True),
     ValueError, "src_mask " + PER_SEQUENCE.format("5, 6") + r" \(T, S\)"),
    ("_validation.validate_mask", "mask", lambda: validate_mask(ones(4, 5, 5), (4, 4, 5, 5)), ValueError,
     r"mask must have 1 dim \(T_k,\) or 2 dims \(T_q, T_k\).*got shape \(4, 5, 5\): with 3 dims it would be "
     r"read as \(H, T_q, T_k\)\. Add the missing axes, e.g\. mask\[:, None\]"),
    ("_validation.validate_mask", "mask", lambda: validate_mask(ones(2, 6), (2, H, 5, 6)), ValueError,
     r"broadcastable to \(B, H, T_q, T_k\) = \(2, 2, 5, 6\); got shape \(2, 6\)\. " + PAD_HINT.format(k="T_k",
                                                                                                      name="mask")),
    # attention
    ("attention.scaled_dot_product_attention", "device", lambda: scaled_dot_product_attention(Q, meta(Q), Q),
     ValueError, moved("k", "q")),
    ("attention.scaled_dot_product_attention", "device",
     lambda: scaled_dot_product_attention(Q, Q, Q, meta(causal_mask(5))), ValueError, moved("mask", "q")),
    ("attention.scaled_dot_product_attention", "mask", lambda: scaled_dot_product_attention(Q, Q, Q, ones(2, 5, 5)),
     ValueError, r"got shape \(2, 5, 5\): with 3 dims it would be read as \(dim 1, T_q, T_k\)"),
    ("attention.scaled_dot_product_attention", "mask", lambda: scaled_dot_product_attention(Q, Q, Q, ones(2, 5)),
     ValueError, r"got shape \(2, 5\)\. " + PAD_HINT.format(k="T_k", name="mask")),
    ("attention.dot_product_attention", "device", lambda: dot_product_attention(X, X, meta(X)), ValueError,
     moved("v", "q")),
    ("attention.SelfAttention", "device", lambda: SelfAttention(D, 8)(meta(X)), ValueError,
     moved("x", "the module's parameters")),
    ("attention.SelfAttention", "config", lambda: SelfAttention(D, 8, d_v=0), ValueError,
     "d_v must be a positive int; got 0"),
    # masks
    ("masks.padding_mask", "dtype", lambda: padding_mask(SRC.bool(), 0), TypeError,
     r"tokens must be an integer tensor of shape \(B, T\); got dtype torch.bool"),
    ("masks.causal_mask", "device", lambda: causal_mask(3, device="gpu"), ValueError,
     "device must be None, a torch.device or a name such as 'cpu' or 'cuda'; got 'gpu'"),
    ("masks.to_torch_attn_mask", "mask", lambda: to_torch_attn_mask(ones(2, 3), shape=(2, H, 4, 3)), ValueError,
     r"got shape \(2, 3\)\. " + PAD_HINT.format(k="T_k", name="mask")),
    # positional
    ("positional.PositionalEncoding", "device", lambda: PositionalEncoding(D, 10)(meta(X)), ValueError,
     moved("x", "PositionalEncoding's table")),
    ("positional.PositionalEncoding", "config", lambda: PositionalEncoding(D, 10, dropout=1.5), ValueError,
     r"dropout must be a float in \[0, 1\); got 1.5"),
    ("positional.PositionalEncoding", "config", lambda: PositionalEncoding(D, 0), ValueError,
     "max_len must be a positive int; got 0"),
    ("positional.LearnedPositionalEncoding", "device", lambda: LearnedPositionalEncoding(D, 10)(meta(X)), ValueError,
     moved("x", "LearnedPositionalEncoding's table")),
    ("positional.LearnedPositionalEncoding", "config", lambda: LearnedPositionalEncoding(D, 0), ValueError,
     "max_len must be a positive int; got 0"),
    # multihead (multihead.py checks its own arguments; the device check waits for the change in the P5 report)
    ("multihead.split_heads", "config", lambda: split_heads(X, 0), ValueError, "n_heads must be a positive int; got 0"),
    ("multihead.split_heads", "dtype", lambda: split_heads(X, 2.0), TypeError, "n_heads must be a positive int"),
    ("multihead.MultiHeadAttention", "mask", lambda: MHA(X, X, X, ones(2, 5, 5)), ValueError,
     r"with 3 dims it would be read as \(H, T_q, T_k\)"),
    ("multihead.MultiHeadAttention", "mask", lambda: MHA(X, X, X, ones(2, 5)), ValueError,
     r"got shape \(2, 5\)\. " + PAD_HINT.format(k="T_k", name="mask")),
    ("multihead.MultiHeadAttention", "device", lambda: MHA(meta(X), meta(X), meta(X)), ValueError,
     moved("query", "the module's parameters")),
    # layers
    ("layers.FeedForward", "device", lambda: FF(meta(X)), ValueError, moved("x", "the FeedForward's parameters")),
    ("layers.FeedForward", "dtype", lambda: FF(X.long()), TypeError, "x must be a floating-point tensor"),
    ("layers.FeedForward", "config", lambda: FeedForward(D, 64, dropout=1.5), ValueError, "dropout must be a float"),
    ("layers.EncoderLayer", "device", lambda: ENC(meta(X)), ValueError, moved("x", "the EncoderLayer's parameters")),
    ("layers.EncoderLayer", "device", lambda: ENC(X, meta(ones(2, 1, 1, 5))), ValueError, moved("mask", "x")),
    ("layers.EncoderLayer", "config", lambda: EncoderLayer(D, H, 64, norm_first="yes"), TypeError,
     "norm_first must be True or False; got str 'yes'"),
    ("layers.EncoderLayer", "mask", lambda: ENC(X, ones(2, 5, 5)), ValueError,
     r"mask must have 1 dim \(S,\) or 2 dims \(S, S\).*got shape \(2, 5, 5\): "
     r"with 3 dims it would be read as \(H, S, S\)"),
    ("layers.EncoderLayer", "mask", lambda: ENC(X, ones(2, 5)), ValueError, PAD_HINT.format(k="S", name="mask")),
    ("layers.DecoderLayer", "device", lambda: DEC(X, meta(MEMORY)), ValueError,
     moved("memory", "the DecoderLayer's parameters")),
    ("layers.DecoderLayer", "device", lambda: DEC(X, MEMORY, tgt_mask=meta(causal_mask(5))), ValueError,
     moved("tgt_mask", "x")),
    ("layers.DecoderLayer", "mask", lambda: DEC(X5, MEMORY.repeat(3, 1, 1)[:5], src_mask=ones(5, 6)), ValueError,
     "src_mask " + PER_SEQUENCE.format("5, 6") + r" \(T, S\)"),
    ("layers.DecoderLayer", "config", lambda: DecoderLayer(D, H, 64, norm_first=1), TypeError,
     "norm_first must be True or False; got int 1"),
    # model
    ("model.TransformerConfig", "config", lambda: TransformerConfig.tiny(norm_first="no"), ValueError,
     "TransformerConfig.norm_first must be True or False; got 'no'"),
    ("model.TransformerConfig", "config", lambda: TransformerConfig.tiny(tie_embeddings="yes"), ValueError,
     "TransformerConfig.tie_embeddings must be True or False; got 'yes'"),
    ("model.TransformerConfig", "config", lambda: TransformerConfig.tiny(max_len=0), ValueError,
     "TransformerConfig.max_len must be a positive int; got 0"),
    ("model.Transformer", "device", lambda: MODEL(meta(SRC), TGT), ValueError, moved("src")),
    ("model.Transformer", "device", lambda: MODEL(SRC, meta(TGT)), ValueError, moved("tgt")),
    ("model.Transformer", "device", lambda: MODEL.encode(SRC, meta(ones(2, 1, 1, 6))), ValueError,
     moved("src_mask", "src")),
    ("model.Transformer", "device", lambda: MODEL.decode(TGT, meta(MEMORY)), ValueError, moved("memory", "tgt")),
    ("model.Transformer", "empty", lambda: MODEL(SRC[:, :0], TGT), ValueError,
     r"src must hold at least one token per sequence, and at most config.max_len = 64; got \(2, 0\)"),
    ("model.Transformer", "empty", lambda: MODEL.decode(TGT[:, :0], MEMORY), ValueError,
     r"tgt must hold at least one token per sequence"),
    ("model.Transformer", "mask", lambda: MODEL.encode(SRC, SRC != 0), ValueError,
     "src_mask " + PER_SEQUENCE.format("2, 6")),
    ("model.Transformer", "mask", lambda: MODEL.decode(TGT, MEMORY, src_mask=ones(2, 6)), ValueError,
     "src_mask " + PER_SEQUENCE.format("2, 6") + r" \(T, S\)"),
    ("model.Transformer", "mask", lambda: MODEL.decode(TGT, MEMORY, tgt_mask=ones(2, 5, 5)), ValueError,
     r"tgt_mask must have 1 dim \(T,\) or 2 dims \(T, T\).* read as \(H, T, T\)"),
    # cache
    ("cache.IncrementalDecoder", "type", lambda: IncrementalDecoder(MHA, MEMORY), TypeError,
     "model must be a transformer_lib.model.Transformer; got MultiHeadAttention"),
    ("cache.IncrementalDecoder", "shape", lambda: IncrementalDecoder(MODEL, MEMORY[0]), ValueError,
     r"memory must have shape \(N, S, d_model\) \(3 dims\); got shape \(6, 32\)"),
    ("cache.IncrementalDecoder", "device", lambda: IncrementalDecoder(MODEL, meta(MEMORY)), ValueError,
     moved("memory")),
    ("cache.IncrementalDecoder", "mask", lambda: IncrementalDecoder(MODEL, MEMORY, SRC != 0), ValueError,
     "src_mask " + PER_SEQUENCE.format("2, 6")),
    ("cache.IncrementalDecoder", "dtype", lambda: IncrementalDecoder(MODEL, MEMORY).step(torch.tensor([1.0, 1.0])),
     TypeError, r"ids must be a torch.long tensor of token ids with shape \(N,\); got dtype torch.float32"),
    ("cache.IncrementalDecoder", "vocab", lambda: IncrementalDecoder(MODEL, MEMORY).step(torch.tensor([1, V])),
     ValueError, r"ids contains token ids outside \[0, 32\) \(vocab_size = 32\); got min 1, max 32"),
    ("cache.IncrementalDecoder", "shape", lambda: IncrementalDecoder(MODEL, MEMORY).step(torch.tensor([1, 1, 1])),
     ValueError, r"ids must have shape \(N,\) with N \(the rows of memory\) = 2; got shape \(3,\)"),
    ("cache.IncrementalDecoder", "device", lambda: IncrementalDecoder(MODEL, MEMORY).step(meta(torch.tensor([1, 1]))),
     ValueError, moved("ids", "the cache")),
    ("cache.IncrementalDecoder", "vocab", lambda: IncrementalDecoder(MODEL, MEMORY).reorder(torch.tensor([0, 2])),
     ValueError, r"index must hold rows of the cache, in \[0, N = 2\); got min 0, max 2"),
    ("cache.IncrementalDecoder", "dtype", lambda: IncrementalDecoder(MODEL, MEMORY).reorder(torch.tensor([0.0, 1.0])),
     TypeError, r"index must be an integer tensor of shape \(N,\)"),
    # decoding
    ("decoding.greedy_decode", "device", lambda: greedy_decode(MODEL, meta(SRC), 5, 1, 2), ValueError,
     moved("src")),
    ("decoding.greedy_decode", "empty", lambda: greedy_decode(MODEL, SRC[:0], 5, 1, 2), ValueError,
     r"src must hold at least one sequence of at least one token; got shape \(0, 6\)"),
    ("decoding.greedy_decode", "empty", lambda: greedy_decode(MODEL, SRC[:, :0], 5, 1, 2), ValueError,
     r"src must hold at least one sequence of at least one token; got shape \(2, 0\)"),
    ("decoding.beam_search", "empty", lambda: beam_search(MODEL, SRC[:0], 5, 1, 2), ValueError,
     r"src must hold at least one sequence of at least one token; got shape \(0, 6\)"),
    ("decoding.beam_search", "device", lambda: beam_search(MODEL, meta(SRC), 5, 1, 2, beam_size=2), ValueError,
     moved("src")),
]

ALL_CASES = CASES + test_bad_input_text.CASES


def _row(row) -> tuple:
    """The values of a row, a plain tuple or a ``pytest.param`` (which is a tuple too: values, marks, id)."""
    return row.values if hasattr(row, "marks") else row


def _param(row):
    row = row if hasattr(row, "marks") else pytest.param(*row)
    name, kind = row.values[:2]
    return pytest.param(*row.values[2:], marks=row.marks, id=f"{name}-{kind}")


@pytest.mark.parametrize(("call", "error", "match"), [_param(row) for row in ALL_CASES])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- coverage: every public name has rows here, is covered in another file, or is exempt --------------------

# name -> the test file that already tests its bad input (checked: the file names it)
ELSEWHERE = {
    "_validation.door": "test_utils.py", "_validation.check_tensor": "test_utils.py",
    "_validation.check_dim": "test_utils.py", "_validation.check_positive_int": "test_utils.py",
    "_validation.check_token_ids": "test_utils.py", "utils.show_source": "test_utils.py",
    "utils.set_seed": "test_utils.py",
    "utils.require_version": "test_reproducibility.py", "device.get_device": "test_utils.py",
    "device.describe_device": "test_utils.py",
    "masks.decoder_mask": "test_masks.py",
    "positional.sinusoidal_positional_encoding": "test_positional.py", "positional.shift_matrix": "test_positional.py",
    "multihead.merge_heads": "test_multihead.py", "multihead.to_torch_multihead": "test_multihead.py",
    "tasks.make_batch": "test_tasks.py", "bpe.count_pairs": "test_bpe.py", "bpe.merge_pair": "test_bpe.py",
    "bpe.learn_bpe": "test_bpe.py", "bpe.apply_bpe": "test_bpe.py", "bpe.word_counts": "test_bpe.py",
    "tokenizer.train_bpe_tokenizer": "test_tokenizer.py",
    "objective.noam_lr": "test_objective.py",
    "objective.noam_scheduler": "test_objective.py", "objective.make_optimizer": "test_objective.py",
    "data.read_pairs_tsv": "test_data.py", "data.write_pairs_tsv": "test_data.py", "data.verify_sha256": "test_data.py",
    "data.write_splits": "test_data.py", "data.load_splits": "test_data.py", "data.download": "test_data.py",
    "catalogs.is_clean_pair": "test_data.py", "catalogs.read_catalog": "test_data.py",
    "catalogs.harvest_pairs": "test_data.py", "catalogs.build_catalog_corpus": "test_data.py",
    "corpus.generate_pairs": "test_corpus.py", "translator.load_checkpoint": "test_translator.py",
    "translator.load_translator": "test_translator.py", "train.Trainer": "test_train.py",
    "bench.TorchTransformer": "test_bench.py",
}
# name -> why it has no bad-input row
EXEMPT = {
    "main": "a command line: argparse and its own checks turn bad arguments into a usage error (tests/test_cli.py)",
    "checks.CheckFailed": "an exception class, raised by the checks, not called with user input",
    "checks.ExerciseNotDone": "an exception class, raised by the checks, not called with user input",
    "data.sha256_file": "reads any file's bytes; a missing file is open()'s FileNotFoundError naming the path",
    "data.vocabulary": "a statistic of the notebooks over pairs that split_pairs already validated",
    "corpus.vocabulary": "the same function as data.vocabulary",
    "catalogs.system_catalogs": "any path is valid: a missing folder gives [] (its doctest)",
    "catalogs.package_catalogs": "any list of folders is valid: missing ones are skipped (its doctest)",
    "catalogs.default_catalogs": "takes no argument",
    "grammar.load_lexicon": "takes no argument",
    "gpt.load_sentences": "takes no argument (a changed file is tested in test_gpt.py)",
    "tasks.Seq2SeqBatch": "a record built by make_batch, which validates its arguments",
    "grammar.Adjective": "a record of the lexicon, built by Lexicon from transformer_lib.lexicon's tables",
    "grammar.Noun": "a record of the lexicon, built by Lexicon from transformer_lib.lexicon's tables",
    "grammar.Verb": "a record of the lexicon, built by Lexicon from transformer_lib.lexicon's tables",
    "grammar.finish_en": "joins any list of words (the corpus generator's last step); test_corpus.py checks its output",
    "grammar.finish_fr": "joins any list of words (the corpus generator's last step); test_corpus.py checks its output",
    "conjugation.Subject": "a record (words, person, gender) built by the corpus generator",
    "conjugation.noun_subject": "builds a Subject record from a noun phrase the generator made",
    "conjugation.be": "the generator's copula; its person and tense are checked by conjugate",
    "translator.load_corpus": "a name or a path: an unknown one is read_pairs_tsv's FileNotFoundError (test_cli.py)",
    "bench.run": "runs the benchmarks on settings that bench.main has validated (test_bench.py)",
    "bench.report": "formats the results dict that bench.run returns",
    "bench.train_flops": "arithmetic on the sizes of a validated TransformerConfig",
    "distributed.world": "takes no argument (asks torch.distributed)",
    "distributed.finish": "takes no argument",
    "distributed.init_from_env": "reads torchrun's environment; the device name goes to torch, which names it",
    "distributed.wrap": "the Trainer's plumbing under torchrun, given the model it built (test_distributed.py)",
    "distributed.agree": "the Trainer's plumbing under torchrun, given a flag it computed (test_distributed.py)",
    "distributed.reduce_log": "the Trainer's plumbing under torchrun, given its own counters (test_distributed.py)",
    "distributed.main_first": "the Trainer's plumbing under torchrun, given its own two callables",
    "train.save_checkpoint": "takes a Trainer, which validated everything when it was built",
    "grade.find_submissions": "main's walk over a folder it has checked exists (tests/test_grade.py)",
    "grade.find_students": "main's look at the folders of a folder it has checked exists (tests/test_grade.py)",
    "grade.grade_submission": "main's per-notebook job, on a path find_submissions found; any file that is not a "
                              "notebook of the course becomes a 'not graded' row (tests/test_grade.py)",
}
# Modules still being written: their names get rows when they settle.
PENDING_MODULES: dict[str, str] = {}


def _public_names():
    """(module, name, object) of every ``__all__`` in ORDER. Private modules are internals
    of a public one, which validates what it passes them; ``_validation``'s helpers are the door itself."""
    for module_name in (m for m in ORDER if m == "_validation" or not m.startswith("_")):
        module = importlib.import_module(f"transformer_lib.{module_name}")
        for name in getattr(module, "__all__", []):
            yield module_name, name, getattr(module, name)


def test_every_public_name_is_covered():
    """A name in an ``__all__`` needs rows in CASES, a file in ELSEWHERE, or a reason in EXEMPT (constants:
    anything that is not callable takes no input). Fails for a new public function or class without one."""
    listed = {_row(row)[0] for row in ALL_CASES} | set(ELSEWHERE) | set(EXEMPT)
    names = list(_public_names())
    covered = {id(obj) for m, n, obj in names if f"{m}.{n}" in listed}  # masks.validate_mask is _validation's
    missing = [f"{m}.{n}" for m, n, obj in names
               if callable(obj) and id(obj) not in covered and n not in EXEMPT and m not in PENDING_MODULES
               and not (m == "checks" and n.startswith("check_"))]  # rows made from checks.__all__ itself
    assert not missing, f"public names with no bad-input test: {missing}; add rows to tests/test_bad_input*.py"


def test_the_lists_name_real_things():
    """No stale entry: every name listed exists, and every file in ELSEWHERE names it."""
    from pathlib import Path

    public = {f"{m}.{n}" for m, n, _ in _public_names()}
    tabled = {_row(row)[0] for row in ALL_CASES}
    assert tabled <= public, tabled - public
    assert set(ELSEWHERE) <= public, set(ELSEWHERE) - public
    assert {n for n in EXEMPT if "." in n} <= public, {n for n in EXEMPT if "." in n} - public
    for name, file in ELSEWHERE.items():
        assert name.split(".")[-1] in (Path(__file__).parent / file).read_text(), f"{file} never names {name}"


def test_accepted_empty_inputs():
    """What the policy above accepts gives the empty (or zero) result, never garbage."""
    no_keys = torch.randn(2, 0, 8)
    out, weights = scaled_dot_product_attention(torch.randn(2, 3, 8), no_keys, no_keys)
    assert out.shape == (2, 3, 8) and weights.shape == (2, 3, 0) and not out.any()  # no key: a zero output
    assert ENC(torch.randn(2, 0, D)).shape == (2, 0, D)  # an empty sequence through a layer
    assert MODEL(SRC[:0], TGT[:0]).shape == (0, 5, V)  # an empty batch through the model
    assert padding_mask(SRC[:0], 0).shape == (0, 1, 1, 6)
