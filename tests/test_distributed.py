"""Data-parallel training (transformer_lib.distributed): the helpers on one process, two Gloo processes on the
CPU that take the same step as one process averaging their two batches, and the torchrun command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch.testing import assert_close

from transformer_lib import distributed
from transformer_lib.batching import collate
from transformer_lib.corpus import generate_pairs
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.objective import label_smoothed_cross_entropy
from transformer_lib.tokenizer import BPETokenizer
from transformer_lib.train import Trainer, TrainSettings

PAIRS = generate_pairs(40, seed=0)
SETTINGS = dict(max_tokens=150, warmup=10, log_every=1, seed=3, smoothing=0.1, clip=1.0)


def test_shard_gives_every_process_the_same_number_of_batches():
    batches = [[i] for i in range(7)]
    shares = [distributed.shard(batches, rank, 3) for rank in range(3)]
    assert shares == [[[0], [3]], [[1], [4]], [[2], [5]]]  # the 7th is dropped: else one process would wait forever
    assert distributed.shard(batches, 0, 1) == batches
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\) = \[0, 2\); got rank=2"):
        distributed.shard(batches, 2, 2)


def test_one_process_is_left_alone(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.world() == (0, 1)
    assert distributed.init_from_env("cpu") == "cpu" and not torch.distributed.is_initialized()
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model
    assert distributed.agree(True) is True and distributed.agree(False) is False
    assert distributed.reduce_log(torch.tensor(6.0), 3, 40) == (2.0, 40)
    assert distributed.main_first(lambda: None, lambda: "loaded") == "loaded"


def _tokenizer() -> BPETokenizer:
    return BPETokenizer.train([t for pair in PAIRS for t in pair], vocab_size=150, min_frequency=1)


def _model(tok: BPETokenizer) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig.tiny(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    assert distributed.init_from_env("cpu") == "cpu"
    tok = _tokenizer()
    model = _model(tok)
    if rank == 1:  # different initial weights on rank 1: DDP must start every process from rank 0's
        torch.nn.init.normal_(model.output_proj.weight)
    trainer = Trainer(model, tok, PAIRS, settings=TrainSettings(**SETTINGS), device="cpu", progress=False)
    per_epoch = len(trainer._batches())
    trainer.fit(max_steps=1)
    results[rank] = {"state": {k: v.clone() for k, v in model.state_dict().items()}, "per_epoch": per_epoch,
                     "history": trainer.history, "first_batches": trainer._batches(0)[:1]}
    distributed.finish()  # only after success: a failing process exits and mp.spawn stops the other


@pytest.fixture(scope="module")
def two_processes():
    """One training step of two Gloo processes on the CPU; what each ended with."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), results), nprocs=2, join=True)
        return dict(results)


def test_two_processes_take_the_step_of_one_process_averaging_their_batches(two_processes):
    tok = _tokenizer()
    model = _model(tok)
    one = Trainer(model, tok, PAIRS, settings=TrainSettings(**SETTINGS), device="cpu", progress=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    # By hand: the gradient of the mean of the two processes' losses, each on its first batch, then one step.
    pad = model.config.pad_id
    losses = []
    for rank in (0, 1):
        batch = two_processes[rank]["first_batches"][0]
        src, tgt_in, tgt_out = collate([one.src[i] for i in batch], [one.tgt[i] for i in batch], pad)
        losses.append(label_smoothed_cross_entropy(model(src, tgt_in), tgt_out, pad_id=pad, smoothing=0.1))
    one.optimizer.zero_grad()
    ((losses[0] + losses[1]) / 2).backward()  # DDP averages the gradients over the processes
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    one.optimizer.step()
    for rank in (0, 1):
        assert_close(two_processes[rank]["state"], model.state_dict(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(model.state_dict()["output_proj.weight"], start["output_proj.weight"])  # it moved
    # The logged loss is the mean over the processes; each process trained on its own share of the batches.
    assert two_processes[0]["history"][0]["loss"] == pytest.approx(float(sum(losses).detach()) / 2, rel=1e-5)
    assert two_processes[0]["first_batches"] != two_processes[1]["first_batches"]
    full = len(Trainer(_model(tok), tok, PAIRS, settings=TrainSettings(**SETTINGS), progress=False)._batches())
    assert two_processes[0]["per_epoch"] == two_processes[1]["per_epoch"] == full // 2


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="no torchrun")
def test_torchrun_trains_with_two_processes(tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{en}\t{fr}\n" for en, fr in generate_pairs(60, seed=1)), encoding="utf-8")
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "transformer_lib.train", "--out",
               str(tmp_path / "run"), "--corpus", str(corpus), "--preset", "tiny", "--max-steps", "3",
               "--vocab-size", "300", "--max-tokens", "300", "--warmup", "10", "--device", "cpu", "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote ") == 1, result.stdout  # only the main process prints and exports
    assert "3 steps in" in result.stdout
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["step"] == 3
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"last.pt", "translator.pt", "tokenizer.json",
                                                              "history.json"}
