"""Score a translator on a test split: ``python -m transformer_lib.evaluate``, last line ``BLEU <score>``.

    python -m transformer_lib.evaluate                                  # the shipped checkpoint, generated test split
    python -m transformer_lib.evaluate --checkpoint runs/small/translator.pt --corpus catalogs --beam 1

It translates every source sentence of the split (beam search, beam 4 and length penalty 0.6 as in the
paper, by default), scores the output against the references with sacreBLEU, and prints the sentence
count, the sacreBLEU signature and, last, ``BLEU <score>``.
"""

from __future__ import annotations

import argparse
import time

import sacrebleu
import torch

from .data import SPLITS, read_pairs_tsv
from .translator import load_corpus, load_translator, translate

__all__ = ["evaluate", "main"]


def evaluate(model, tokenizer, pairs, *, beam_size: int = 4, batch_size: int = 64):
    """``(hypotheses, BLEU score object, sacreBLEU signature)`` of ``model`` on ``(english, french)`` pairs."""
    if isinstance(pairs, str) or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise TypeError(f"pairs must be a list of (english, french) pairs of str; got {str(pairs)[:60]}")
    hypotheses = translate(model, tokenizer, [en for en, _ in pairs], beam_size=beam_size, batch_size=batch_size)
    metric = sacrebleu.BLEU()
    score = metric.corpus_score(hypotheses, [[fr for _, fr in pairs]])
    return hypotheses, score, metric.get_signature()


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(prog="python -m transformer_lib.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="a translator.pt or last.pt (default: the shipped checkpoint)")
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--corpus", default="generated", help="generated (default), catalogs, or a .tsv file (all of it)")
    parser.add_argument("--beam", type=int, default=4, help="beam size; 1 = greedy (default 4)")
    parser.add_argument("--limit", type=int, help="only the first N sentences")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, tokenizer, _ = load_translator(args.checkpoint)
        named = args.corpus in ("generated", "catalogs")  # a .tsv file is scored whole
        pairs = (load_corpus(args.corpus)[args.split] if named else read_pairs_tsv(args.corpus))[: args.limit]
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    start = time.perf_counter()
    _, bleu, signature = evaluate(model, tokenizer, pairs, beam_size=args.beam)
    print(f"{len(pairs)} sentences of {args.corpus}/{args.split} in {time.perf_counter() - start:.0f} s, "
          f"beam {args.beam}")
    print(f"{bleu.format()} | signature: {signature}")
    print(f"BLEU {bleu.score:.2f}")
    return bleu.score


if __name__ == "__main__":
    main()
