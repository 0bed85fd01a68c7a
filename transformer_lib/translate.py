"""Translate English sentences to French: ``python -m transformer_lib.translate "I see the small red car."``.

    python -m transformer_lib.translate "I see the small red car." "She is not tired."
    echo "We will eat bread." | python -m transformer_lib.translate -        # one sentence a line
    python -m transformer_lib.translate --checkpoint runs/small/translator.pt --beam 1 "I see it."

Prints one French line per English sentence (the shipped checkpoint by default, beam search 4).
"""

from __future__ import annotations

import argparse
import sys

from .translator import load_translator, translate

__all__ = ["main"]


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(prog="python -m transformer_lib.translate", description=__doc__.split("\n")[0])
    parser.add_argument("sentences", nargs="+", help='English sentences, or "-" to read them from standard input')
    parser.add_argument("--checkpoint", help="a translator.pt or last.pt (default: the shipped checkpoint)")
    parser.add_argument("--beam", type=int, default=4, help="beam size; 1 = greedy (default 4)")
    args = parser.parse_args(argv)
    sentences = [line.strip() for line in sys.stdin if line.strip()] if args.sentences == ["-"] else args.sentences
    if not sentences or not all(s.strip() for s in sentences):
        parser.error("give at least one non-empty sentence")
    try:
        model, tokenizer, _ = load_translator(args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    outputs = translate(model, tokenizer, sentences, beam_size=args.beam)
    for line in outputs:
        print(line)
    return outputs


if __name__ == "__main__":
    main()
