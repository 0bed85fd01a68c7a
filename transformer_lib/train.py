"""Training a translator: batches grouped by length, the paper's optimiser and schedule, checkpoints that resume.

:class:`Trainer` runs the loop of Sec. 5 of the paper on any device with one code path: Adam
(0.9, 0.98, 1e-9) with the warm-up schedule of Eq. (3) (:mod:`transformer_lib.objective`), label smoothing
0.1, gradient clipping, batches of similar lengths up to ``max_tokens`` tokens (little padding), bf16
autocast on CUDA (``amp="auto"``; ``"bf16"`` forces it anywhere, the CPU included), optional
``torch.compile``, a ``tqdm`` bar with the loss and tokens/s, validation loss and BLEU (``sacrebleu``,
greedy decoding) every ``eval_every`` steps, and checkpoints that hold everything needed to continue
exactly where a run stopped: a resumed run draws the same batches and gives the same curve. Under ``torchrun``
it trains data-parallel (:mod:`transformer_lib.distributed`): each process takes its share of the batches.

The command line trains from a preset (the checkpoint it writes is what ``evaluate`` and ``translate`` read)::

    python -m transformer_lib.train --preset small --epochs 1 --out runs/small
    python -m transformer_lib.train --resume runs/small/last.pt --epochs 2 --out runs/small
    torchrun --standalone --nproc-per-node 2 -m transformer_lib.train --preset small --epochs 1 --out runs/ddp

Example:
    >>> from transformer_lib.tokenizer import BPETokenizer
    >>> pairs = [("I see the car.", "Je vois la voiture."), ("I see it.", "Je la vois.")] * 8
    >>> tok = BPETokenizer.train([t for p in pairs for t in p], vocab_size=60, min_frequency=1)
    >>> model = Transformer(TransformerConfig.tiny(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size))
    >>> trainer = Trainer(model, tok, pairs, settings=TrainSettings(max_tokens=64, warmup=10), progress=False)
    >>> trainer.fit(max_steps=3).step
    3
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import distributed
from .batching import collate, length_batches
from .device import get_device
from .model import Transformer, TransformerConfig
from .objective import label_smoothed_cross_entropy, make_optimizer, noam_scheduler
from .tokenizer import BPETokenizer
from .translator import (FORMAT, corpus_bleu, export_translator, load_checkpoint, load_corpus, model_from_checkpoint,
                         teacher_forced_loss, translate)

__all__ = ["TrainSettings", "Trainer", "main", "resume", "save_checkpoint"]

Pair = tuple[str, str]


@dataclass
class TrainSettings:
    """What a training run needs besides the model (stored in the checkpoint, so a resume is the same run)."""

    max_tokens: int = 4096  # source + target tokens per batch, padding included
    warmup: int = 4000  # Eq. (3)
    lr_factor: float = 1.0  # multiplies Eq. (3)
    smoothing: float = 0.1  # Sec. 5.4
    clip: float = 1.0  # gradient norm
    seed: int = 0
    amp: str = "auto"  # "auto" = bf16 autocast on CUDA only, "bf16" = everywhere, "off"
    compile: bool = False
    eval_every: int = 500  # steps between validations
    bleu_sentences: int = 200  # validation sentences decoded for BLEU
    log_every: int = 50
    max_len: int = 128  # longer sentences are cut

    def __post_init__(self) -> None:
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"TrainSettings.amp must be 'auto', 'bf16' or 'off'; got {self.amp!r}")


class Trainer:
    """Train a :class:`~transformer_lib.model.Transformer` on sentence pairs; see the module docstring.

    Args:
        model: the model (moved to ``device``).
        tokenizer: a :class:`~transformer_lib.tokenizer.BPETokenizer` shared by both languages.
        train_pairs, valid_pairs: ``(english, french)`` pairs; validation is skipped without ``valid_pairs``.
        settings: :class:`TrainSettings`.
        device: ``None`` = CUDA, else MPS, else CPU (:func:`~transformer_lib.device.get_device`).
        progress: show a ``tqdm`` bar (``tqdm.auto``: a widget in Jupyter).
        on_log: called with the trainer after every log line and validation (e.g. a live plot).
    """

    def __init__(self, model: Transformer, tokenizer: BPETokenizer, train_pairs: Sequence[Pair],
                 valid_pairs: Sequence[Pair] = (), *, settings: TrainSettings | None = None, device=None,
                 progress: bool = True, on_log: Callable[[Trainer], None] | None = None) -> None:
        if not train_pairs:
            raise ValueError("train_pairs is empty: give (english, french) pairs")
        self.settings = settings or TrainSettings()
        self.device = get_device(device)
        self.model, self.tokenizer, self.valid_pairs = model.to(self.device), tokenizer, list(valid_pairs)
        self.progress, self.on_log, s = progress, on_log, self.settings
        self.max_len = min(s.max_len, model.config.max_len)  # longer sentences are cut: no positions past max_len
        self.rank, self.world_size = distributed.world()  # (0, 1) unless under torchrun
        torch.manual_seed(s.seed + self.rank)  # dropout differs between processes; the weights come from rank 0
        self.src, self.tgt = (tokenizer.encode_many(side, self.max_len) for side in zip(*train_pairs))  # cut: EOS kept
        self.lengths = [len(a) + len(b) for a, b in zip(self.src, self.tgt)]
        self.optimizer = make_optimizer(model)
        self.scheduler = noam_scheduler(self.optimizer, d_model=model.config.d_model, warmup=s.warmup,
                                        factor=s.lr_factor)
        self.amp = s.amp == "bf16" or (s.amp == "auto" and self.device.type == "cuda")
        self.forward = torch.compile(distributed.wrap(model)) if s.compile else distributed.wrap(model)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.seconds = 0.0
        self.history: list[dict] = []  # {"step", "loss", "lr", "tokens_per_s", "seconds"} and {"step", "valid_loss", "bleu"}

    def _batches(self, epoch: int | None = None) -> list[list[int]]:  # this process's share of an epoch's batches
        epoch = self.epoch if epoch is None else epoch
        batches = length_batches(self.lengths, self.settings.max_tokens, seed=self.settings.seed, epoch=epoch)
        return distributed.shard(batches, self.rank, self.world_size)

    def train_step(self, src: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        """One optimiser step; returns the loss as a tensor (no host sync here)."""
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.forward(src, tgt_in)  # (B, T, V)
        loss = label_smoothed_cross_entropy(logits.float(), tgt_out, pad_id=self.model.config.pad_id,
                                            smoothing=self.settings.smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()

    def fit(self, *, epochs: float | None = None, max_steps: int | None = None,
            time_limit: float | None = None, checkpoint: str | Path | None = None) -> Trainer:
        """Train until ``epochs`` (counted from step 0), ``max_steps`` or ``time_limit`` seconds, whichever first.

        With ``checkpoint``, the state is saved there at every validation and at the end.
        """
        from tqdm.auto import tqdm
        if epochs is None and max_steps is None and time_limit is None:
            raise ValueError("give epochs, max_steps or time_limit (else training never stops)")
        s, pad = self.settings, self.model.config.pad_id
        by_epochs = 10**12
        if epochs is not None:  # the batch count varies a little from epoch to epoch: count each epoch's own
            whole = int(epochs)
            by_epochs = sum(len(self._batches(e)) for e in range(whole))
            if epochs > whole:
                by_epochs += math.ceil((epochs - whole) * len(self._batches(whole)))
        goal = min(10**12 if max_steps is None else max_steps, by_epochs)
        bar = tqdm(total=None if goal == 10**12 else goal, initial=self.step, disable=not self.progress or self.rank > 0,
                   desc="training", unit="step")
        start, tokens, loss_sum, n_loss = time.perf_counter(), 0, torch.zeros((), device=self.device), 0
        base_seconds = self.seconds
        while self.step < goal:
            batches = self._batches()
            for batch in batches[self.batch_in_epoch:]:
                src, tgt_in, tgt_out = (t.to(self.device, non_blocking=True) for t in
                                        collate([self.src[i] for i in batch], [self.tgt[i] for i in batch], pad))
                loss_sum += self.train_step(src, tgt_in, tgt_out)
                n_loss += 1
                tokens += int(sum(len(self.tgt[i]) - 1 for i in batch))
                self.step += 1
                self.batch_in_epoch += 1
                bar.update(1)
                self.seconds = base_seconds + time.perf_counter() - start
                if self.step % s.log_every == 0 or self.step == goal:
                    self._log(*distributed.reduce_log(loss_sum, n_loss, tokens), bar)
                    loss_sum.zero_()
                    n_loss = tokens = 0
                out_of_time = time_limit is not None and distributed.agree(time.perf_counter() - start >= time_limit)
                if self.valid_pairs and self.rank == 0 and (self.step % s.eval_every == 0 or self.step == goal or out_of_time):
                    self.evaluate()
                    if checkpoint:
                        save_checkpoint(self, checkpoint)
                if self.step >= goal or out_of_time:
                    break
            else:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                continue
            break
        if n_loss:
            self._log(*distributed.reduce_log(loss_sum, n_loss, tokens), bar)
        bar.close()
        if checkpoint and self.rank == 0:
            save_checkpoint(self, checkpoint)
        return self

    def _log(self, loss: float, tokens: int, bar) -> dict:
        recent = [h for h in self.history if "loss" in h]
        elapsed = self.seconds - (recent[-1]["seconds"] if recent else 0.0)
        row = {"step": self.step, "epoch": self.epoch, "loss": loss, "lr": self.scheduler.get_last_lr()[0],
               "tokens_per_s": tokens / max(elapsed, 1e-9), "seconds": self.seconds}
        self.history.append(row)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{row['tokens_per_s']:.0f}")
        if self.on_log:
            self.on_log(self)
        return row

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation loss (label-smoothed, like training) and greedy BLEU on ``bleu_sentences`` sentences."""
        s, model = self.settings, self.model.eval()
        pairs = self.valid_pairs[: max(s.bleu_sentences, 1)]
        loss = teacher_forced_loss(model, self.tokenizer, pairs, smoothing=s.smoothing, max_len=self.max_len, amp=self.amp)
        hyps = translate(model, self.tokenizer, [p[0] for p in pairs], max_len=self.max_len)
        row = {"step": self.step, "valid_loss": loss,
               "bleu": corpus_bleu(hyps, [p[1] for p in pairs]).score, "seconds": self.seconds}
        self.history.append(row)
        if self.on_log:
            self.on_log(self)
        return row


def save_checkpoint(trainer: Trainer, path: str | Path) -> Path:
    """Everything a resume needs: config, weights, optimiser, schedule, position in the epoch, history, tokenizer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "config": asdict(trainer.model.config), "model": trainer.model.state_dict(),
             "optimizer": trainer.optimizer.state_dict(), "scheduler": trainer.scheduler.state_dict(),
             "settings": asdict(trainer.settings), "step": trainer.step, "epoch": trainer.epoch,
             "batch_in_epoch": trainer.batch_in_epoch, "seconds": trainer.seconds, "history": trainer.history,
             "tokenizer": trainer.tokenizer.tokenizer.to_str(), "rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # its own name: two runs never write one file
    torch.save(state, tmp)
    tmp.replace(path)  # never a half-written checkpoint
    return path


def resume(path: str | Path, train_pairs: Sequence[Pair], valid_pairs: Sequence[Pair] = (), **kwargs) -> Trainer:
    """A :class:`Trainer` that continues the run saved at ``path`` exactly where it stopped."""
    state = load_checkpoint(path)
    model, tokenizer = model_from_checkpoint(state)
    trainer = Trainer(model, tokenizer, train_pairs, valid_pairs, settings=TrainSettings(**state["settings"]), **kwargs)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.step, trainer.epoch, trainer.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
    trainer.seconds, trainer.history = state["seconds"], state["history"]
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return trainer


def main(argv: list[str] | None = None) -> Trainer:
    import argparse, json, platform, sys  # noqa: E401
    p = argparse.ArgumentParser(prog="python -m transformer_lib.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for last.pt, translator.pt, tokenizer.json")
    p.add_argument("--preset", choices=["tiny", "small", "base"], default="small")
    p.add_argument("--d-model", type=int), p.add_argument("--n-heads", type=int), p.add_argument("--d-ff", type=int)
    p.add_argument("--layers", type=int, help="encoder and decoder layers each")
    p.add_argument("--dropout", type=float)
    p.add_argument("--corpus", default="generated", help="generated (default), catalogs, or a .tsv file of pairs")
    p.add_argument("--pairs", type=int, default=200_000, help="size of the generated corpus")
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--epochs", type=float), p.add_argument("--max-steps", type=int), p.add_argument("--time-limit", type=float)
    p.add_argument("--resume", type=Path, help="a last.pt to continue")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    for f in ("max_tokens", "warmup", "lr_factor", "seed", "amp", "eval_every", "bleu_sentences"):
        p.add_argument("--" + f.replace("_", "-"), type=type(getattr(TrainSettings, f)), default=getattr(TrainSettings, f))
    p.add_argument("--compile", action="store_true")
    args = p.parse_args(argv)
    if args.epochs is None and args.max_steps is None and args.time_limit is None:
        p.error("give --epochs, --max-steps or --time-limit")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    args.device = distributed.init_from_env(args.device)  # under torchrun: join the others (cuda:LOCAL_RANK)
    splits = load_corpus(args.corpus, pairs=args.pairs)
    if args.resume:
        trainer = resume(args.resume, splits["train"], splits["valid"], device=args.device)
    else:
        texts, path = [t for pair in splits["train"] for t in pair], args.out / "tokenizer.json"
        tokenizer = distributed.main_first(lambda: BPETokenizer.train(texts, vocab_size=args.vocab_size).save(path),
                                           lambda: BPETokenizer.load(path))  # under torchrun: one trains, all read
        sizes = {"d_model": args.d_model, "n_heads": args.n_heads, "d_ff": args.d_ff, "dropout": args.dropout,
                 "n_encoder_layers": args.layers, "n_decoder_layers": args.layers}
        config = getattr(TransformerConfig, args.preset)(src_vocab_size=tokenizer.vocab_size,
                                                         tgt_vocab_size=tokenizer.vocab_size,
                                                         **{k: v for k, v in sizes.items() if v is not None})
        settings = TrainSettings(**{f: getattr(args, f) for f in ("max_tokens", "warmup", "lr_factor", "seed", "amp",
                                                                  "eval_every", "bleu_sentences")}, compile=args.compile)
        torch.manual_seed(settings.seed)
        trainer = Trainer(Transformer(config), tokenizer, splits["train"], splits["valid"], settings=settings,
                          device=args.device)
    trainer.fit(epochs=args.epochs, max_steps=args.max_steps, time_limit=args.time_limit,
                checkpoint=args.out / "last.pt")
    distributed.finish()
    if trainer.rank > 0:
        return trainer  # under torchrun only the main process (rank 0) writes and prints
    made_by = {"command": "python -m transformer_lib.train " + " ".join(sys.argv[1:] if argv is None else argv),
               "hardware": f"{platform.machine()}, {trainer.device}, {torch.get_num_threads()} threads, torch {torch.__version__}",
               "seconds": trainer.seconds, "steps": trainer.step, "history": trainer.history, "corpus": args.corpus}
    sha = export_translator(trainer.model, trainer.tokenizer, args.out / "translator.pt", **made_by)
    (args.out / "history.json").write_text(json.dumps(trainer.history, indent=1))
    last = [h for h in trainer.history if "bleu" in h]
    print(f"{trainer.step} steps in {trainer.seconds:.0f} s; " + (f"valid BLEU {last[-1]['bleu']:.1f}; " if last else "")
          + f"wrote {args.out / 'translator.pt'} (SHA-256 {sha})")
    return trainer


if __name__ == "__main__":
    main()
