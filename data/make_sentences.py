"""Write data/simple_sentences.txt: simple English sentences from a small grammar (seeded, no sources).

Run from anywhere: ``python data/make_sentences.py``. The output is deterministic (seed 12); its
SHA-256 is recorded in data/README.md and checked by ``transformer_lib.gpt.load_sentences``.
"""

import random
from pathlib import Path

SUBJECTS = ["the cat", "the dog", "a small bird", "my friend", "the old man", "the girl", "a red fox", "the teacher",
            "the little boy", "her brother", "the farmer", "a young woman"]
VERBS = ["sees", "likes", "finds", "watches", "follows", "helps", "calls", "visits", "draws", "meets"]
OBJECTS = ["the small red car", "a green tree", "the big house", "a blue ball", "the river", "the black cat",
           "a tall tower", "the yellow door", "an old book", "the quiet garden", "a white boat", "the busy market"]
PLACES = ["in the park", "near the river", "at school", "in the morning", "after dinner", "on the hill",
          "by the sea", "in the garden", "at night", "in the rain"]
INTRANSITIVE = ["sleeps", "runs", "sings", "smiles", "waits", "walks home", "reads", "laughs"]


def sentence(rng: random.Random) -> str:
    subject = rng.choice(SUBJECTS)
    if rng.random() < 0.3:
        words = f"{subject} {rng.choice(INTRANSITIVE)}"
    else:
        words = f"{subject} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    if rng.random() < 0.5:
        words += " " + rng.choice(PLACES)
    if rng.random() < 0.2:
        words += f" and {rng.choice(SUBJECTS)} {rng.choice(INTRANSITIVE)}"
    return words[0].upper() + words[1:] + "."


def main() -> None:
    rng = random.Random(12)
    lines, size = [], 0
    while size < 30_000:
        line = sentence(rng)
        lines.append(line)
        size += len(line) + 1
    Path(__file__).with_name("simple_sentences.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
