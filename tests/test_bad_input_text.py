"""Bad input everywhere, the second half of the table: text, data, training and beyond (see test_bad_input.py).

``CASES`` rows are ``(public name, kind, call, exception, message regex)``; test_bad_input.py runs them and
checks that every public name has rows, a file that covers it, or a reason.
"""

from __future__ import annotations

import torch

from transformer_lib import checks
from transformer_lib import conjugation as cj
from transformer_lib.batching import collate, length_batches
from transformer_lib.catalogs import catalog_pairs
from transformer_lib.corpus import build_generated_corpus
from transformer_lib.data import split_pairs
from transformer_lib.distributed import shard
from transformer_lib.evaluate import evaluate
from transformer_lib.gpt import CharVocab, DecoderOnlyLM, apply_rotary, sample
from transformer_lib.grammar import date_en, date_fr, load_lexicon, noun_phrase, number_en, number_fr, time_en, time_fr
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.objective import label_smoothed_cross_entropy, smoothing_floor
from transformer_lib.rnn import RNNSeq2Seq, additive_attention, rnn_forward
from transformer_lib.tasks import token_accuracy
from transformer_lib.tokenizer import BPETokenizer, pad_rows
from transformer_lib.train import TrainSettings, resume
from transformer_lib.translator import (corpus_bleu, export_translator, model_from_checkpoint, teacher_forced_loss,
                                        translate)
from transformer_lib.utils import interactive_plot
from transformer_lib.viz import LivePlot, attention_heatmap, plot_history

torch.manual_seed(0)
TOK = BPETokenizer.train(["I see the car.", "Je vois la voiture."], vocab_size=40, min_frequency=1)
MODEL = Transformer(TransformerConfig.tiny(src_vocab_size=TOK.vocab_size, tgt_vocab_size=TOK.vocab_size))
LM = DecoderOnlyLM(vocab_size=20, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=8)
RNN = RNNSeq2Seq(vocab_size=10, d_embed=8, d_hidden=16, attention=True)
IDS = torch.randint(3, 10, (2, 5))  # (B, T) ids for the small models
LEX = load_lexicon()
DEVICE = r"is on device meta but {} on device cpu: move one of them, e.g. \w+\.to\('cpu'\)"


def moved(name: str, where: str = "the model's parameters") -> str:
    """The message regex of ``name`` on the meta device while ``where`` is on the CPU."""
    return f"{name} " + DEVICE.format(where)


def meta(t: torch.Tensor) -> torch.Tensor:
    """The same tensor on the ``meta`` device: a stand-in for "on another device than the model"."""
    return t.to("meta")


def rnn_args(**changes: torch.Tensor) -> list[torch.Tensor]:
    """x, h0, W_xh, W_hh, b of a small RNN (B=2, T=5, d_in=3, d_h=4), some replaced."""
    args = dict(x=torch.randn(2, 5, 3), h0=torch.zeros(2, 4), W_xh=torch.randn(3, 4), W_hh=torch.randn(4, 4),
                b=torch.zeros(4)) | changes
    return list(args.values())


def additive_args(**changes: torch.Tensor) -> list[torch.Tensor]:
    args = dict(query=torch.randn(2, 4), keys=torch.randn(2, 6, 5), values=torch.randn(2, 6, 3),
                W_q=torch.randn(4, 8), W_k=torch.randn(5, 8), v_a=torch.randn(8)) | changes
    return list(args.values())


CASES = [
    # utils
    ("utils.interactive_plot", "type", lambda: interactive_plot(42), TypeError, "draw must be a function"),
    ("utils.interactive_plot", "type", lambda: interactive_plot(lambda beta: None, beta=0.5), TypeError,
     "controls must be widgets with a .value"),
    # viz
    ("viz.attention_heatmap", "type", lambda: attention_heatmap(torch.eye(3), "abc"), TypeError,
     r"queries must be a list of words \(one label per row/column\); got 'abc'"),
    ("viz.attention_heatmap", "shape", lambda: attention_heatmap(torch.eye(3), ["a", "b"]), ValueError,
     r"weights must have shape \(T_q, T_k\) = \(2, 2\).*got shape \(3, 3\)"),
    ("viz.plot_history", "config", lambda: plot_history([], x="time"), ValueError,
     "x must be 'step' or 'seconds' .*; got 'time'"),
    ("viz.LivePlot", "config", lambda: LivePlot(x="epoch"), ValueError, "x must be 'step' or 'seconds'"),
    ("viz.LivePlot", "config", lambda: LivePlot(every=-1), ValueError,
     "every must be a number of seconds >= 0; got -1"),
    # tasks
    ("tasks.token_accuracy", "device", lambda: token_accuracy(torch.randn(2, 3, 5), meta(torch.zeros(2, 3).long())),
     ValueError, moved("tgt_out", "logits")),
    ("tasks.token_accuracy", "vocab", lambda: token_accuracy(torch.randn(2, 3, 5), torch.full((2, 3), 5)), ValueError,
     r"tgt_out contains ids outside \[0, V\) = \[0, 5\) \(besides pad_id = 0\); got min 5, max 5"),
    ("tasks.token_accuracy", "type", lambda: token_accuracy(torch.randn(2, 3, 5), torch.zeros(2, 3).long(), pad_id=0.5),
     TypeError, "pad_id must be an int; got float 0.5"),
    # rnn
    ("rnn.rnn_forward", "empty", lambda: rnn_forward(*rnn_args(x=torch.randn(2, 0, 3))), ValueError,
     r"x must have at least one time step, shape \(B, T, d_in\) with T >= 1; got \(2, 0, 3\)"),
    ("rnn.rnn_forward", "device", lambda: rnn_forward(*rnn_args(W_hh=meta(torch.randn(4, 4)))), ValueError,
     moved("W_hh", "x")),
    ("rnn.additive_attention", "device", lambda: additive_attention(*additive_args(keys=meta(torch.randn(2, 6, 5)))),
     ValueError, moved("keys", "query")),
    ("rnn.RNNSeq2Seq", "device", lambda: RNN(meta(IDS), IDS), ValueError, moved("src")),
    ("rnn.RNNSeq2Seq", "empty", lambda: RNN(IDS[:, :0], IDS), ValueError,
     r"src and tgt_in must hold at least one token per sequence; got src \(2, 0\), tgt_in \(2, 5\)"),
    ("rnn.RNNSeq2Seq", "empty", lambda: RNN(IDS, IDS[:, :0]), ValueError, r"got src \(2, 5\), tgt_in \(2, 0\)"),
    ("rnn.RNNSeq2Seq", "config", lambda: RNNSeq2Seq(10, 8, 16, attention="yes"), TypeError,
     "attention must be True or False; got str 'yes'"),
    # data, catalogs, the corpus grammar
    ("data.split_pairs", "type", lambda: split_pairs(["I see.", "Je vois."]), TypeError,
     r"pairs\[0\] must be an \(english, french\) pair; got 'I see.'"),
    ("catalogs.catalog_pairs", "type", lambda: catalog_pairs(["msgid"]), TypeError,
     r"catalog must be a parsed catalog \(polib.pofile\(...\) or polib.mofile\(...\)\); got list"),
    ("corpus.build_generated_corpus", "config", lambda: build_generated_corpus("unused", pairs=0), ValueError,
     r"n must be a positive int \(number of pairs\); got 0"),
    ("grammar.Lexicon", "vocab", lambda: LEX.noun("unicorn"), KeyError, "no noun 'unicorn' in the lexicon"),
    ("grammar.Lexicon", "vocab", lambda: LEX.adjective("sparkly"), KeyError, "no adjective 'sparkly' in the lexicon"),
    ("grammar.noun_phrase", "config", lambda: noun_phrase(LEX.noun("car"), "num", plural=True), ValueError,
     r"n must be an int in \[0, 1000000\]; got None"),
    ("grammar.number_en", "config", lambda: number_en(-1), ValueError, r"n must be an int in \[0, 1000000\]; got -1"),
    ("grammar.number_fr", "type", lambda: number_fr("3"), ValueError, r"n must be an int in .*; got '3'"),
    ("grammar.time_en", "config", lambda: time_en(13, 0), ValueError, r"hour must be an int in \[0, 12\]; got 13"),
    ("grammar.time_fr", "config", lambda: time_fr(0, 0), ValueError, r"hour must be an int in \[1, 12\]; got 0"),
    ("grammar.date_en", "config", lambda: date_en(1, 13), ValueError, r"month must be an int in \[1, 12\]; got 13"),
    ("grammar.date_fr", "config", lambda: date_fr(32, 1), ValueError, r"day must be an int in \[1, 31\]; got 32"),
    ("conjugation.conjugate", "config", lambda: cj.conjugate("voir", 6, "present"), ValueError,
     r"person must be an int 0..5 .*; got 6"),
    ("conjugation.verb_group", "config", lambda: cj.verb_group(LEX.transitive[0], cj.PRONOUNS[0], "perfect"),
     ValueError, "tense must be present, past, future, going, want, can or must; got 'perfect'"),
    # tokenizer, objective, batching
    ("tokenizer.BPETokenizer", "type", lambda: TOK.tokens(5), TypeError, "text must be a str; got int"),
    ("tokenizer.BPETokenizer", "type", lambda: TOK.encode_batch("I see."), TypeError,
     r"texts must be an iterable of str .*got one str"),
    ("tokenizer.BPETokenizer", "vocab", lambda: TOK.decode(torch.tensor([1, -1])), ValueError,
     r"ids must be ints in \[0, 40\); got -1"),
    ("tokenizer.pad_rows", "empty", lambda: pad_rows([], 0), ValueError,
     "rows must be a non-empty list of lists of ids"),
    ("tokenizer.pad_rows", "type", lambda: pad_rows([[1, 2]], "0"), TypeError, "pad_id must be an int; got str '0'"),
    ("objective.smoothing_floor", "config", lambda: smoothing_floor(0, 0.1), ValueError,
     "vocab_size must be a positive int; got 0"),
    ("objective.smoothing_floor", "config", lambda: smoothing_floor(10, 1.0), ValueError,
     r"smoothing must be a float in \[0, 1\); got 1.0"),
    ("objective.label_smoothed_cross_entropy", "device",
     lambda: label_smoothed_cross_entropy(torch.randn(2, 5), meta(torch.tensor([1, 2]))), ValueError,
     moved("target", "logits")),
    ("batching.collate", "shape", lambda: collate([[5, 6]], [[1, 2], [1, 2]], 0), ValueError,
     r"src_rows and tgt_rows must hold the same number \(>= 1\) of rows; got 1 and 2"),
    ("batching.collate", "empty", lambda: collate([[5, 6]], [[1]], 0), ValueError,
     "each target row needs at least 2 ids"),
    ("batching.length_batches", "empty", lambda: length_batches([3, 0], 10, seed=0, epoch=0), ValueError,
     r"lengths must be a list of positive ints \(ids per example\); got \[3, 0\]"),
    ("batching.length_batches", "type", lambda: length_batches([3, 4], 10, seed=0.5, epoch=0), TypeError,
     "seed must be an int; got float 0.5"),
    # translator, evaluate, train
    ("translator.translate", "type", lambda: translate(MODEL, "tokenizer.json", ["I see."]), TypeError,
     "tokenizer must be a transformer_lib.tokenizer.BPETokenizer; got str"),
    ("translator.translate", "type", lambda: translate(LM, TOK, ["I see."]), TypeError,
     "model must be a transformer_lib.model.Transformer; got DecoderOnlyLM"),
    ("translator.translate", "type", lambda: translate(MODEL, TOK, ["I see.", 3]), TypeError,
     r"sentences must be a list of str; got \['I see.', 3\]"),
    ("translator.translate", "config", lambda: translate(MODEL, TOK, ["I see."], beam_size=0), ValueError,
     "beam_size must be a positive int; got 0"),
    ("translator.translate", "config", lambda: translate(MODEL, TOK, ["I see."], max_len=0), ValueError,
     "max_len must be a positive int; got 0"),
    ("translator.translate", "config", lambda: translate(MODEL, TOK, ["I see."], batch_size=0), ValueError,
     "batch_size must be a positive int; got 0"),
    ("translator.teacher_forced_loss", "type", lambda: teacher_forced_loss(MODEL, TOK, ["I see.", "Je vois."]),
     TypeError, r"pairs must be a list of \(english, french\) pairs; got \['I see.', 'Je vois.'\]"),
    ("translator.teacher_forced_loss", "type", lambda: teacher_forced_loss(MODEL, TOK, [("I see.", None)]),
     TypeError, r"pairs' texts must be a list of str; got \['I see.', None\]"),
    ("translator.teacher_forced_loss", "config", lambda: teacher_forced_loss(MODEL, TOK, [("a", "b")], batch_size=0),
     ValueError, "batch_size must be a positive int; got 0"),
    ("translator.corpus_bleu", "type", lambda: corpus_bleu("le chat", "le chien"), TypeError,
     r"hypotheses must be a list of str \(one sentence each\); got le chat"),
    ("translator.model_from_checkpoint", "type", lambda: model_from_checkpoint({"model": {}}), ValueError,
     r"state must be a checkpoint dict of format 'transformer_lib/checkpoint-1'"),
    ("translator.export_translator", "type", lambda: export_translator(LM, TOK, "unused.pt"), TypeError,
     "model must be a Transformer and tokenizer a BPETokenizer; got DecoderOnlyLM and BPETokenizer"),
    ("evaluate.evaluate", "type", lambda: evaluate(MODEL, TOK, ["I see.", "Je vois."]), TypeError,
     r"pairs must be a list of \(english, french\) pairs of str"),
    ("distributed.shard", "config", lambda: shard([1, 2], rank=2, world_size=2),
     ValueError, r"rank must be in \[0, world_size\) = \[0, 2\); got rank=2"),
    ("train.TrainSettings", "config", lambda: TrainSettings(amp="fp8"), ValueError,
     "TrainSettings.amp must be 'auto', 'bf16' or 'off'; got 'fp8'"),
    ("train.resume", "type", lambda: resume("no/such/last.pt", [("I see.", "Je vois.")]), FileNotFoundError,
     r"checkpoint no/such/last.pt does not exist"),
    # gpt
    ("gpt.DecoderOnlyLM", "device", lambda: LM(meta(IDS)), ValueError, moved("ids")),
    ("gpt.DecoderOnlyLM", "vocab", lambda: LM(torch.tensor([[3, 25]])), ValueError,
     r"ids contains token ids outside \[0, 20\) \(vocab_size = 20\); got min 3, max 25"),
    ("gpt.DecoderOnlyLM", "empty", lambda: LM(IDS[:, :0]), ValueError,
     r"ids must hold at least one token per sequence; got shape \(2, 0\)"),
    ("gpt.DecoderOnlyLM", "config", lambda: DecoderOnlyLM(20, 16, 2, 1, 32, 8, dropout=1.5), ValueError,
     r"dropout must be a float in \[0, 1\); got 1.5"),
    ("gpt.DecoderOnlyLM", "config", lambda: DecoderOnlyLM(20, 16, 2, 1, 32, 8, norm_first="pre"), TypeError,
     "norm_first must be True or False; got str 'pre'"),
    ("gpt.CharVocab", "type", lambda: CharVocab(5), TypeError, "text must be a str .*; got int"),
    ("gpt.CharVocab", "vocab", lambda: CharVocab("abc").encode("abz"), ValueError,
     "text must be a str of the vocabulary's 3 characters; got the characters 'z', not in the vocabulary"),
    ("gpt.CharVocab", "vocab", lambda: CharVocab("abc").decode([0, 3]), ValueError,
     r"ids must be a 1-D tensor or list of ints in \[0, 3\); got \[0, 3\]"),
    ("gpt.sample", "type", lambda: sample(MODEL, IDS, 3), TypeError,
     r"model must be a language model \(an nn.Module with an int max_len\), e.g. a DecoderOnlyLM; got Transformer"),
    ("gpt.sample", "vocab", lambda: sample(LM, torch.tensor([[-1, 3]]), 3), ValueError,
     r"prompt contains token ids outside \[0, 20\) \(vocab_size = 20\); got min -1, max 3"),
    ("gpt.sample", "empty", lambda: sample(LM, IDS[:, :0], 3), ValueError,
     r"prompt must hold at least one token per sequence; got shape \(2, 0\)"),
    ("gpt.sample", "device", lambda: sample(LM, meta(IDS), 3), ValueError, moved("prompt")),
    ("gpt.sample", "type", lambda: sample(LM, IDS, 3, generator=0), TypeError,
     "generator must be a torch.Generator or None; got int"),
    ("gpt.apply_rotary", "device", lambda: apply_rotary(torch.randn(3, 8), meta(torch.arange(3))), ValueError,
     moved("positions", "x")),
    ("gpt.apply_rotary", "config", lambda: apply_rotary(torch.randn(3, 8), torch.arange(3), base=0), ValueError,
     r"base must be a positive number \(10000 in RoPE and in Sec. 3.5\); got 0"),
    # checks: a check given something that is not the student's function or class says so, in one line
    *((f"checks.{name}", "type", lambda fn=getattr(checks, name): fn(42), checks.CheckFailed,
       r"your code raised TypeError: 'int' object is not callable")
      for name in checks.__all__ if name.startswith("check_")),
]


def test_accepted_empty_text_inputs():
    """Empty text is text: it gets the empty (or the <bos> <eos>) result, not an error."""
    assert TOK.encode("") == [TOK.bos_id, TOK.eos_id] and TOK.tokens("") == [] and TOK.decode([]) == ""
    assert translate(MODEL, TOK, []) == [] and len(translate(MODEL, TOK, [""], max_len=4)) == 1
    assert CharVocab("").encode("").shape == (0,) and CharVocab("ab").decode([]) == ""
    assert pad_rows([[]], 0).shape == (1, 0)
