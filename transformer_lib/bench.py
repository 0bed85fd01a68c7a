"""Benchmark: the library against ``torch.nn.Transformer``, the KV cache, naive against fused attention.

    python -m transformer_lib.bench                        # CPU: d_model 128, 2+2 layers, batch 32 x 32 tokens
    python -m transformer_lib.bench --device cuda          # the paper's base model, bf16, with/without compile
    python -m transformer_lib.bench --quick --json b.json  # tiny sizes, seconds (the CI smoke run)

Tables (and JSON with ``--json PATH``) of: (1) training target tokens/s (forward, backward, Adam step) and
TFLOP/s (:func:`train_flops`) of the library :class:`~transformer_lib.model.Transformer` and of
:class:`TorchTransformer` (the same model around ``nn.Transformer``), dropout 0; fp32 on CPU, bf16 autocast
with and without ``torch.compile`` on CUDA; (2) greedy decoding tokens/s with and without the KV cache;
(3) Eq. (1) written out against ``F.scaled_dot_product_attention``, forward + backward, over lengths (with
peak memory on CUDA). Warm-up excluded; the fastest of ``repeats`` rounds (other programs can only slow a round),
the sides of a comparison in turns.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .attention import scaled_dot_product_attention
from .decoding import greedy_decode
from .device import get_device
from .masks import causal_mask, to_torch_attn_mask
from .model import Transformer, TransformerConfig
from .positional import PositionalEncoding

__all__ = ["TorchTransformer", "main", "report", "run", "train_flops"]

BOS_ID, EOS_ID = 1, 2  # synthetic data: 0 = pad, 1 = BOS, 2 = EOS, 3.. = content
_KEYS = ("d_model", "heads", "layers", "vocab_size", "batch", "seq_len", "gen_len", "attn_lengths", "attn_batch",
         "repeats")  # the defaults by device; d_ff = 4 * d_model
CPU = dict(zip(_KEYS, (128, 4, 2, 8000, 32, 32, 128, [64, 128, 256, 512], 4, 5)))
CUDA = dict(zip(_KEYS, (512, 8, 6, 32000, 256, 128, 128, [512, 1024, 2048, 4096, 8192], 4, 5)))  # the paper's base
QUICK = dict(zip(_KEYS, (32, 2, 1, 64, 4, 8, 8, [16, 32], 2, 1)))


class TorchTransformer(nn.Module):
    """``torch.nn.Transformer`` between the library's embedding, positional encoding and output layer.

    Only the core differs from :class:`~transformer_lib.model.Transformer` with the same config (embedding
    times sqrt(d_model), sinusoids, output layer, tying). In post-norm the final LayerNorms that
    ``nn.Transformer`` adds are removed (the paper has none): same parameters, and with copied weights the
    same function. Masks come from ``config.pad_id`` as in ``Transformer.forward``, in PyTorch's polarity.

    Args:
        config: a :class:`~transformer_lib.model.TransformerConfig`.

    Shape:
        - src: ``(B, S)`` long, tgt: ``(B, T)`` long; output: logits ``(B, T, tgt_vocab_size)``

    Example:
        >>> model = TorchTransformer(TransformerConfig.tiny())
        >>> model(torch.randint(1, 32, (2, 7)), torch.randint(1, 32, (2, 5))).shape
        torch.Size([2, 5, 32])
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a TransformerConfig; got {type(config).__name__}")
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = self.src_embed if c.tie_embeddings else nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.pos_encoding = PositionalEncoding(c.d_model, c.max_len, c.dropout)
        self.core = nn.Transformer(c.d_model, c.n_heads, c.n_encoder_layers, c.n_decoder_layers, c.d_ff, c.dropout,
                                   batch_first=True, norm_first=c.norm_first)
        if not c.norm_first:  # post-norm: every layer already ends with a LayerNorm
            self.core.encoder.norm, self.core.decoder.norm = nn.Identity(), nn.Identity()
        self.output_proj = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        if c.tie_embeddings:
            self.output_proj.weight = self.src_embed.weight  # Sec. 3.4

    def _embed(self, ids: torch.Tensor, embedding: nn.Embedding) -> torch.Tensor:
        return self.pos_encoding(embedding(ids) * math.sqrt(self.config.d_model))  # (B, L, d_model)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        src_pad, tgt_pad = src == self.config.pad_id, tgt == self.config.pad_id  # (B, S), (B, T)  True = padding
        future = to_torch_attn_mask(causal_mask(tgt.shape[1], device=tgt.device))  # (T, T)  True = NOT allowed
        x = self.core(self._embed(src, self.src_embed), self._embed(tgt, self.tgt_embed), tgt_mask=future,
                      src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        return self.output_proj(x)  # (B, T, tgt_vocab_size)


def train_flops(n_params: int, config: TransformerConfig, batch: int, seq_len: int) -> int:
    """FLOPs of one training step, source length S = target length T = ``seq_len``::

        FLOPs = 6 * N * B * T  +  12 * d_model * B * T**2 * (n_enc + 2 * n_dec)

    ``6 N`` per token: forward 2 FLOPs (multiply, add) per parameter, backward twice that; ``N`` counts each
    parameter once (the tied embedding is the output matmul; a lookup is free). Attention: per query and key,
    ``Q K^T`` and the sum over ``V`` cost ``2 d_model`` each forward, ``12 d_model`` with the backward, with T
    keys in each of the ``n_enc + 2 n_dec`` blocks (encoder self, decoder self, cross; causal half counted).

    Example:
        >>> train_flops(1000, TransformerConfig.tiny(), batch=2, seq_len=10)  # 20 * (6000 + 12*32*10*6)
        580800
    """
    attention = 12 * config.d_model * seq_len * (config.n_encoder_layers + 2 * config.n_decoder_layers)
    return batch * seq_len * (6 * n_params + attention)


def _time(fns: dict[str, Callable[[], object]], device: torch.device, warmup: int, repeats: int,
          iters: int) -> tuple[dict[str, float], dict[str, float | None]]:
    """Fastest seconds per call of ``repeats`` rounds after ``warmup`` (in turn, order flipped); peak MiB on CUDA."""
    sync = getattr(torch, device.type).synchronize if device.type in ("cuda", "mps") else lambda: None
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round in range(warmup + repeats):
        for name, fn in list(fns.items())[::1 if round % 2 else -1]:  # alternate the order: no one always runs first
            sync()
            start = time.perf_counter()
            for _ in range(iters):
                fn()
            sync()
            times[name].append((time.perf_counter() - start) / iters)
    peaks: dict[str, float | None] = dict.fromkeys(fns)
    for name, fn in fns.items() if device.type == "cuda" else ():
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        peaks[name] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return {name: min(t[warmup:]) for name, t in times.items()}, peaks


def _bench_train(cfg: TransformerConfig, s: dict, device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    src, tgt = torch.randint(3, cfg.src_vocab_size, (2, s["batch"], s["seq_len"] + 1), device=device)  # no pad
    tgt[:, 0] = BOS_ID
    src, tgt_in, labels = src[:, 1:], tgt[:, :-1], tgt[:, 1:]  # (B, T) each; the decoder input starts with BOS

    def train_step(model: nn.Module, amp: torch.dtype | None, compile: bool) -> Callable[[], None]:
        forward, optimizer = torch.compile(model) if compile else model, torch.optim.Adam(model.parameters(), lr=1e-4)

        def step() -> None:
            with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
                loss = F.cross_entropy(forward(src, tgt_in).flatten(0, 1), labels.flatten())  # (B*T, V), (B*T,)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    modes = [("fp32", None, False)] if device.type != "cuda" else [("bf16", torch.bfloat16, False)] + (
        [("bf16+compile", torch.bfloat16, True)] if s["compile"] else [])
    rows, tokens = [], s["batch"] * s["seq_len"]
    for label, amp, compile in modes:
        models = {"library": Transformer(cfg).to(device), "nn.Transformer": TorchTransformer(cfg).to(device)}
        steps = {name: train_step(m, amp, compile) for name, m in models.items()}
        try:  # a compiled model compiles in its first calls: 3 more warm-up rounds
            secs, peaks = _time(steps, device, s["warmup"] + 3 * compile, s["repeats"], s["iters"])
        except Exception as err:  # torch.compile can fail (no compiler, a graph break): report it, go on
            if not compile:
                raise
            rows += [{"impl": n, "precision": label, "error": f"{type(err).__name__}: {err}"[:300]} for n in models]
            continue
        for name, model in models.items():
            flops = train_flops(sum(p.numel() for p in model.parameters()), cfg, s["batch"], s["seq_len"])
            rows.append({"impl": name, "precision": label, "step_ms": 1e3 * secs[name], "peak_mib": peaks[name],
                         "tokens_per_s": tokens / secs[name], "tflops": flops / secs[name] / 1e12})
    return rows


def _bench_decode(cfg: TransformerConfig, s: dict, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = Transformer(cfg).to(device).eval()
    nn.init.zeros_(model.output_proj.weight[EOS_ID])  # EOS's logit is 0: another token wins, the length is forced
    src = torch.randint(3, cfg.src_vocab_size, (s["batch"], s["seq_len"]), device=device)
    fns = {name: functools.partial(greedy_decode, model, src, s["gen_len"] + 1, BOS_ID, EOS_ID, use_cache=cache)
           for name, cache in (("cache", True), ("no_cache", False))}
    secs, _ = _time(fns, device, 1, min(s["repeats"], 3), 1)  # no cache is slow: 3 repeats at most
    tokens = int((fns["cache"]()[:, 1:] != cfg.pad_id).sum())  # generated tokens, BOS excluded
    return {"batch": s["batch"], "generated_tokens": tokens, "cache_tokens_per_s": tokens / secs["cache"],
            "no_cache_tokens_per_s": tokens / secs["no_cache"], "speedup": secs["no_cache"] / secs["cache"]}


def _attention_step(fused: bool, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Forward + backward of one kernel: the fused one, or Eq. (1) written out (it returns the weights too)."""
    (F.scaled_dot_product_attention(q, k, v) if fused else scaled_dot_product_attention(q, k, v)[0]).sum().backward()


def _bench_attention(s: dict, device: torch.device) -> list[dict]:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    B, H, d_head = s["attn_batch"], s["heads"], s["d_model"] // s["heads"]
    rows = []
    for T in s["attn_lengths"]:
        qkv = [torch.randn(B, H, T, d_head, device=device, dtype=dtype, requires_grad=True) for _ in range(3)]
        row: dict = {"seq_len": T, "shape": [B, H, T, d_head], "dtype": str(dtype).removeprefix("torch.")}
        for name in ("naive", "fused"):  # one at a time: the naive kernel may run out of memory alone
            try:
                secs, peaks = _time({name: functools.partial(_attention_step, name == "fused", *qkv)}, device,
                                    s["warmup"], s["repeats"], s["iters"])
                row[f"{name}_ms"], row[f"{name}_peak_mib"] = 1e3 * secs[name], peaks[name]
            except torch.cuda.OutOfMemoryError:
                row[f"{name}_ms"] = row[f"{name}_peak_mib"] = None
        rows.append(row)
    return rows


def _config(s: dict) -> TransformerConfig:  # d_ff = 4 d_model (the paper's ratio), dropout 0, one tied vocabulary
    return TransformerConfig(src_vocab_size=s["vocab_size"], tgt_vocab_size=s["vocab_size"], d_model=s["d_model"],
                             n_heads=s["heads"], n_encoder_layers=s["layers"], n_decoder_layers=s["layers"],
                             d_ff=4 * s["d_model"], dropout=0.0, max_len=max(s["seq_len"], s["gen_len"] + 1))


def run(s: dict) -> dict:
    """Run the three benchmarks with the settings of :func:`main` (a dict); return the results."""
    device, cfg = torch.device(s["device"]), _config(s)
    env = {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type}
    return {"env": env, "settings": s, "config": {**vars(cfg), "params": Transformer(cfg).num_parameters()},
            "flops_formula": "6 * N * B * T + 12 * d_model * B * T**2 * (n_enc + 2 * n_dec), S = T = seq_len",
            "train": _bench_train(cfg, s, device), "decode": _bench_decode(cfg, s, device),
            "attention": _bench_attention(s, device)}


def _table(title: str, rows: list[list]) -> str:
    """``title`` over ``rows`` (the first is the header); floats with ``,`` and 0 or 2 decimals, None as ``-``."""
    rows = [[c if isinstance(c, str) else "-" if c is None else f"{c:,.0f}" if c >= 100 else f"{c:.2f}" for c in r]
            for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join([title, lines[0], "-" * len(lines[0]), *lines[1:]])


def report(results: dict) -> str:
    """The three tables of ``results`` (from :func:`run`) as text."""
    s, env, d, by = results["settings"], results["env"], results["decode"], {}
    for r in results["train"]:
        by.setdefault(r["precision"], {})[r["impl"]] = r
    train = [["precision", "library", "nn.Transformer", "library/nn", "TFLOP/s lib", "TFLOP/s nn"]] + [
        [p, "failed", r["library"]["error"][:60], "", "", ""] if "error" in r["library"] else
        [p, r["library"]["tokens_per_s"], r["nn.Transformer"]["tokens_per_s"],
         f"{r['library']['tokens_per_s'] / r['nn.Transformer']['tokens_per_s']:.2f}x",
         f"{r['library']['tflops']:.3g}", f"{r['nn.Transformer']['tflops']:.3g}"] for p, r in by.items()]
    attn = [["T", "naive ms", "fused ms", "speed-up", "naive MiB", "fused MiB"]] + [
        [str(r["seq_len"]), r["naive_ms"], r["fused_ms"],
         "-" if None in (r["naive_ms"], r["fused_ms"]) else f"{r['naive_ms'] / r['fused_ms']:.1f}x",
         r["naive_peak_mib"], r["fused_peak_mib"]] for r in results["attention"]]
    return "\n\n".join([
        _table(f"{env['device_name']} ({env['device']}), torch {env['torch']}, {env['threads']} threads\ntraining, "
               f"target tokens/s (forward + backward + Adam), batch {s['batch']} x {s['seq_len']}, d_model "
               f"{s['d_model']}, {s['layers']}+{s['layers']} layers, {results['config']['params']:,} params", train),
        _table(f"greedy decoding, {d['generated_tokens']} tokens ({d['batch']} sequences)", [
            ["", "KV cache", "no cache", "speed-up"],
            ["tokens/s", d["cache_tokens_per_s"], d["no_cache_tokens_per_s"], f"{d['speedup']:.1f}x"]]),
        _table(f"attention forward + backward, (B, H, T, d_head) = ({s['attn_batch']}, {s['heads']}, T, "
               f"{s['d_model'] // s['heads']}), {results['attention'][0]['dtype']}", attn),
        f"FLOPs per training step: {results['flops_formula']}"])


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int; got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> dict:
    """Command line: parse ``argv``, run, print the tables, write ``--json``; return the results."""
    parser = argparse.ArgumentParser(prog="python -m transformer_lib.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: CUDA, then MPS, then CPU)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat: seconds (the CI smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    for name in ("d-model", "heads", "layers", "batch", "seq-len", "vocab-size", "gen-len", "repeats"):
        key = name.replace("-", "_")
        parser.add_argument(f"--{name}", type=_positive, help=f"CPU {CPU[key]}, CUDA {CUDA[key]}, --quick {QUICK[key]}")
    parser.add_argument("--attn-lengths", type=lambda text: [_positive(t) for t in text.split(",")],
                        help="comma-separated sequence lengths of the attention test")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows on CUDA")
    args = parser.parse_args(argv)
    try:
        device = get_device(args.device)
        s = dict(QUICK if args.quick else CUDA if device.type == "cuda" else CPU)
        s.update({k: v for k, v in vars(args).items() if k in s and v is not None})
        s.update(device=str(device), quick=args.quick, compile=not (args.no_compile or args.quick),
                 warmup=1 if args.quick else 3, iters=1 if args.quick else 5)
        if s["vocab_size"] < 4:
            raise ValueError(f"--vocab-size must be at least 4 (ids 0-2 are pad, BOS, EOS); got {s['vocab_size']}")
        if args.json and not Path(args.json).absolute().parent.is_dir():  # fail now, not after the run
            raise ValueError(f"--json: the folder of {args.json!r} does not exist")
        _config(s)  # e.g. n_heads must divide d_model
    except ValueError as err:  # an unavailable --device, a bad size
        parser.error(str(err).replace("prefer", "--device", 1))
    print(report(results := run(s)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
