"""Tests of transformer_lib.train: the Trainer (overfitting, exact resume, bf16, torch.compile, no host sync),
fit's stopping rules, validation and logging. Tiny model, tiny tokenizer, one CPU core."""

from __future__ import annotations

import functools
import itertools
import math
import time

import pytest
import torch
from torch.testing import assert_close

from transformer_lib import train as train_module
from transformer_lib.batching import collate, length_batches
from transformer_lib.corpus import generate_pairs
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.objective import make_optimizer, noam_scheduler
from transformer_lib.tokenizer import BPETokenizer
from transformer_lib.train import Trainer, TrainSettings, resume, save_checkpoint

torch.set_num_threads(1)

PAIRS = generate_pairs(50, seed=0)
TRAIN, VALID = PAIRS[:16], PAIRS[40:44]


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train([text for pair in PAIRS for text in pair], vocab_size=200, min_frequency=1)


def make_trainer(tok, pairs=TRAIN, valid=(), *, dropout=0.0, on_log=None, **settings) -> Trainer:
    """A Trainer of a fresh tiny model (same weights every time); settings default to small batches, log every step."""
    torch.manual_seed(0)
    config = TransformerConfig.tiny(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size, dropout=dropout)
    settings = TrainSettings(**{"max_tokens": 200, "warmup": 10, "log_every": 1, "seed": 3, **settings})
    return Trainer(Transformer(config), tok, pairs, valid, settings=settings, progress=False, on_log=on_log)


def curve(trainer: Trainer) -> list[tuple]:
    """What must not change when a run is interrupted: (step, epoch, loss, lr) of every log row."""
    return [(h["step"], h["epoch"], h["loss"], h["lr"]) for h in trainer.history if "loss" in h]


def test_a_few_pairs_are_overfitted(tok):
    trainer = make_trainer(tok, PAIRS[:4], max_tokens=400, log_every=10).fit(max_steps=60)
    losses = [h["loss"] for h in trainer.history]
    assert trainer.step == 60 and len(losses) == 6
    assert losses[-1] < 0.6 * losses[0], losses  # measured: 4.8 -> 2.6
    assert all(b < a for a, b in itertools.pairwise(losses)), losses


# -- resume: the same run, interrupted or not --------------------------------------------------------------


@pytest.mark.parametrize("offset", [-2, 0, 2], ids=["mid-epoch-then-across-the-boundary", "at-the-epoch-end",
                                                   "mid-second-epoch"])
def test_a_resumed_run_continues_the_same_curve(tok, tmp_path, offset):
    per_epoch = len(make_trainer(tok)._batches())
    k = per_epoch + offset  # run B stops after k steps, run A does not stop
    straight = make_trainer(tok, dropout=0.1).fit(max_steps=2 * k)
    first = make_trainer(tok, dropout=0.1).fit(max_steps=k)
    assert (first.epoch, first.batch_in_epoch) == ((0, k) if offset <= 0 else (1, offset))
    save_checkpoint(first, tmp_path / "last.pt")
    torch.manual_seed(1234)  # whatever happened in between: the checkpoint holds the RNG state
    torch.rand(10)
    resumed = resume(tmp_path / "last.pt", TRAIN, progress=False)
    assert resumed.step == k and resumed.epoch == first.epoch and resumed.batch_in_epoch == first.batch_in_epoch
    resumed.fit(max_steps=2 * k)
    assert resumed.step == straight.step == 2 * k
    assert (resumed.epoch, resumed.batch_in_epoch) == (straight.epoch, straight.batch_in_epoch)
    assert curve(resumed) == curve(straight)  # every loss and rate, bit for bit
    assert_close(resumed.model.state_dict(), straight.model.state_dict(), rtol=0, atol=0)
    assert_close(resumed.optimizer.state_dict(), straight.optimizer.state_dict(), rtol=0, atol=0)


def test_the_rng_state_matters_for_resume_with_dropout(tok, tmp_path, monkeypatch):
    """The control of the test above: without the saved RNG state the dropout masks, so the curve, differ."""
    straight = make_trainer(tok, dropout=0.1).fit(max_steps=6)
    save_checkpoint(make_trainer(tok, dropout=0.1).fit(max_steps=3), tmp_path / "last.pt")
    monkeypatch.setattr(torch, "set_rng_state", lambda state: None)  # resume "forgets" the RNG state
    resumed = resume(tmp_path / "last.pt", TRAIN, progress=False).fit(max_steps=6)
    assert curve(resumed)[:3] == curve(straight)[:3] and curve(resumed)[3:] != curve(straight)[3:]


def test_a_checkpoint_is_written_whole(tok, tmp_path):
    trainer = make_trainer(tok).fit(max_steps=2, checkpoint=tmp_path / "run" / "last.pt")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["last.pt"]  # no .tmp left behind
    assert resume(tmp_path / "run" / "last.pt", TRAIN, progress=False).step == trainer.step == 2


# -- precision, compilation, host syncs ------------------------------------------------------------------


def test_bf16_autocast_on_the_cpu_trains_close_to_fp32(tok):
    fp32 = make_trainer(tok, amp="off").fit(max_steps=4)
    bf16 = make_trainer(tok, amp="bf16").fit(max_steps=4)
    assert bf16.amp and not fp32.amp and not make_trainer(tok, amp="auto").amp  # "auto": bf16 on CUDA only
    losses = [h["loss"] for h in bf16.history]
    assert all(math.isfinite(x) for x in losses)
    first32, first16 = fp32.history[0]["loss"], bf16.history[0]["loss"]
    assert first16 != first32  # autocast did run in bf16...
    assert abs(first16 - first32) < 0.02 * first32, (first16, first32)  # ...and is close (same weights)


def test_compile_traces_the_model_as_one_graph_with_the_same_losses(tok, monkeypatch):
    """compile=True, on a backend that needs no C++ compiler (fast); fullgraph=True: no graph break."""
    eager = make_trainer(tok, PAIRS[:1]).fit(max_steps=2)
    compile_fast = functools.partial(torch.compile, backend="aot_eager", fullgraph=True)
    monkeypatch.setattr(torch, "compile", compile_fast)
    torch._dynamo.reset()
    try:
        compiled = make_trainer(tok, PAIRS[:1], compile=True).fit(max_steps=2)
    finally:
        torch._dynamo.reset()
    assert compiled.forward is not compiled.model  # the compiled wrapper ran...
    assert_close([h["loss"] for h in compiled.history], [h["loss"] for h in eager.history])  # ...the same steps


@pytest.mark.slow  # measured on this machine (1 core): 73 s with an empty inductor cache, 6 s with a warm one
def test_compile_with_inductor_smoke(tok):
    torch._dynamo.reset()
    try:
        start = time.perf_counter()
        trainer = make_trainer(tok, PAIRS[:1], compile=True).fit(max_steps=2)
        seconds = time.perf_counter() - start
    finally:
        torch._dynamo.reset()
    assert trainer.step == 2 and all(math.isfinite(h["loss"]) for h in trainer.history), seconds


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_a_train_step_does_not_sync_with_the_host(tok, amp):
    """On the meta device anything that reads a value (.item(), bool(t), a value check) raises.

    A Trainer cannot be built on meta (get_device takes only real devices), so its model moves there after;
    the step runs Trainer.train_step itself: forward under autocast, loss, backward, clipping, Adam, schedule.
    (CPU autocast leaves meta tensors in float32: the bf16 case checks the autocast context, not the casts.)
    """
    trainer = make_trainer(tok, PAIRS[:4], dropout=0.1, amp=amp)
    trainer.model.to("meta")  # new parameter tensors: the optimizer and schedule must be made for them
    trainer.optimizer = make_optimizer(trainer.model)
    trainer.scheduler = noam_scheduler(trainer.optimizer, d_model=trainer.model.config.d_model, warmup=10)
    trainer.forward = trainer.model
    src, tgt_in, tgt_out = (t.to("meta") for t in collate(trainer.src[:4], trainer.tgt[:4], pad_id=0))
    for _ in range(2):
        loss = trainer.train_step(src, tgt_in, tgt_out)
    assert loss.shape == () and loss.device.type == "meta"
    assert all(p.device.type == "meta" and p.grad is not None for p in trainer.model.parameters())
    assert trainer.scheduler.last_epoch == 2
    with pytest.raises(RuntimeError, match="meta"):  # the control: a host sync does raise here
        loss.item()


# -- fit: when it stops, what it records --------------------------------------------------------------------


def test_fit_without_a_stopping_rule_is_an_error(tok):
    with pytest.raises(ValueError, match="give epochs, max_steps or time_limit"):
        make_trainer(tok).fit()


def test_no_training_pairs_is_an_error(tok):
    with pytest.raises(ValueError, match="train_pairs is empty"):
        make_trainer(tok, [])


def test_one_epoch_ends_at_the_end_of_the_first_epoch(tok):
    trainer = make_trainer(tok)
    trainer.fit(epochs=1)
    assert trainer.step == trainer.batch_in_epoch == len(trainer._batches()) and trainer.epoch == 0


def test_epochs_stop_exactly_at_epoch_ends_although_batch_counts_vary(tok):
    trainer = make_trainer(tok, max_tokens=64)
    counts = [len(length_batches(trainer.lengths, 64, seed=0, epoch=e)) for e in range(3)]
    trainer.fit(epochs=2)
    assert trainer.step == counts[0] + counts[1] and (trainer.epoch, trainer.batch_in_epoch) == (1, counts[1])
    trainer.fit(epochs=2.5)  # continues into the third epoch, half of its own batch count
    assert trainer.step == counts[0] + counts[1] + -(-counts[2] // 2)


def test_max_steps_zero_trains_nothing(tok):
    assert make_trainer(tok).fit(max_steps=0).step == 0


def test_time_limit_stops_training(tok):
    trainer = make_trainer(tok, log_every=1000)
    trainer.fit(time_limit=0.0, max_steps=1000)  # out of time after the first step
    assert trainer.step == 1 and len(trainer.history) == 1  # the partial log still written
    start = time.perf_counter()
    trainer.fit(time_limit=0.5)
    assert 1 < trainer.step < 1000 and time.perf_counter() - start < 5


def test_validation_rows_appear_every_eval_every_steps(tok, tmp_path):
    trainer = make_trainer(tok, valid=VALID, eval_every=2, bleu_sentences=2, log_every=1)
    trainer.fit(max_steps=5, checkpoint=tmp_path / "last.pt")
    rows = [h for h in trainer.history if "valid_loss" in h]
    assert [h["step"] for h in rows] == [2, 4, 5]  # every eval_every steps, and at the end
    for h in rows:
        assert math.isfinite(h["valid_loss"]) and h["valid_loss"] > 0 and 0 <= h["bleu"] <= 100
    assert [h["step"] for h in trainer.history if "loss" in h] == [1, 2, 3, 4, 5]
    assert set(trainer.history[0]) == {"step", "epoch", "loss", "lr", "tokens_per_s", "seconds"}
    assert (tmp_path / "last.pt").is_file()


def test_on_log_is_called_after_every_log_and_validation(tok):
    calls = []
    trainer = make_trainer(tok, valid=VALID, eval_every=2, bleu_sentences=2, log_every=2,
                           on_log=lambda t: calls.append(dict(t.history[-1])))
    trainer.fit(max_steps=4)
    assert [("loss" in c, c["step"]) for c in calls] == [(True, 2), (False, 2), (True, 4), (False, 4)]


@pytest.mark.filterwarnings("ignore:translate. 1 sentence")
def test_long_sentences_are_cut_to_the_models_max_len(tok):
    """TrainSettings.max_len (128) is longer than the tiny model's max_len (64): the model's limit wins."""
    long = [(" ".join([en] * 4), " ".join([fr] * 4)) for en, fr in PAIRS[:2]]
    trainer = make_trainer(tok, long, valid=long, max_tokens=1000, eval_every=1, bleu_sentences=1)
    assert max(map(len, trainer.src + trainer.tgt)) == trainer.model.config.max_len == 64
    assert all(ids[-1] == tok.eos_id for ids in trainer.src + trainer.tgt)  # cut, but still ending with EOS
    trainer.fit(max_steps=1)
    assert trainer.step == 1


def test_the_module_exports(tok):
    assert set(train_module.__all__) == {"TrainSettings", "Trainer", "main", "resume", "save_checkpoint"}
