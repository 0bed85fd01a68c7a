#!/usr/bin/env python
"""Ship a trained translator: copy it to data/, score it, and record its checksum and scores.

    python tools/ship_checkpoint.py runs/shipped/translator.pt

1. copies the checkpoint (written by ``python -m transformer_lib.train``) to data/translator_en_fr.pt;
2. scores it with ``transformer_lib.evaluate``: the generated corpus's whole test split with beam search
   (beam 4, the CLI's default) and greedy decoding, the catalog pairs' test split when this machine has
   built them (``python -m transformer_lib.catalogs``), and the first 50 test sentences with greedy
   decoding (the subset tests/test_shipped.py reproduces);
3. writes data/translator_en_fr.json (command, hardware, training time, steps, SHA-256, scores) and sets
   ``SHIPPED_SHA256`` in transformer_lib/translator.py.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from pathlib import Path

import torch

from transformer_lib.data import DERIVED_DIR, sha256_file
from transformer_lib.evaluate import evaluate
from transformer_lib.translator import SHIPPED, load_corpus, load_translator

ROOT = Path(__file__).resolve().parent.parent
RECORD = SHIPPED.with_suffix(".json")
SUBSET = 50  # test sentences of the reproducibility test


def score(model, tokenizer, pairs, beam: int) -> dict:
    start = time.perf_counter()
    _, bleu, signature = evaluate(model, tokenizer, pairs, beam_size=beam)
    return {"bleu": round(bleu.score, 2), "sentences": len(pairs), "beam": beam, "signature": str(signature),
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="translator.pt written by python -m transformer_lib.train")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shutil.copyfile(args.checkpoint, SHIPPED)
    sha = sha256_file(SHIPPED)
    model, tokenizer, state = load_translator(SHIPPED, sha256=sha)
    test = load_corpus("generated")["test"]
    scores = {"generated_test_beam4": score(model, tokenizer, test, 4),
              "generated_test_greedy": score(model, tokenizer, test, 1),
              f"generated_test_first{SUBSET}_greedy": score(model, tokenizer, test[:SUBSET], 1)}
    if (DERIVED_DIR / "manifest.json").is_file():
        scores["catalogs_test_beam4"] = score(model, tokenizer, load_corpus("catalogs")["test"], 4)
    bleus = [h for h in state["history"] if "bleu" in h]
    record = {"file": SHIPPED.name, "sha256": sha, "bytes": SHIPPED.stat().st_size, "command": state["command"],
              "hardware": state["hardware"], "training_seconds": round(state["seconds"]), "steps": state["steps"],
              "parameters": model.num_parameters(), "config": state["config"],
              "last_validation": bleus[-1] if bleus else None, "scores": scores}
    RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    source = ROOT / "transformer_lib" / "translator.py"
    text = re.sub(r'SHIPPED_SHA256 = .*', f'SHIPPED_SHA256 = "{sha}"  # data/translator_en_fr.json',
                  source.read_text(encoding="utf-8"), count=1)
    source.write_text(text, encoding="utf-8")
    print(json.dumps(record["scores"], indent=1))
    print(f"shipped {SHIPPED} ({record['bytes']:,} bytes, SHA-256 {sha}); record in {RECORD}")


if __name__ == "__main__":
    main()
