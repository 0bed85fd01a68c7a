"""A generated English->French corpus with real French grammar: the course's translation data, built offline.

Each pair is rendered in both languages at once from one random plan (who does what to what, when,
where, in which tense, negated or asked), so every pair is a correct translation by construction and
the same seed gives the same corpus on every machine. What it exercises (:mod:`transformer_lib.grammar`
renders each fact): agreement of articles, adjectives and participles; adjectives after the noun;
conjugation in four tenses and six persons; ``ne ... pas`` and ``pas de``; object pronouns before the
verb (``je la vois``); elision and contraction (``j'ai``, ``l'arbre``, ``au``, ``du``); the passé composé
with ``avoir`` and ``être``; partitives; possessives; numbers, clock times and dates in words; questions
with ``est-ce que``; relative clauses with ``qui`` and ``que``; ``the boy's car -> la voiture du garçon``.

    python -m transformer_lib.corpus                 # 200,000 pairs -> data/derived/generated/ (seconds)
    python -m transformer_lib.corpus --pairs 50000 --seed 1 --out DIR

Example:
    >>> pairs = generate_pairs(3, seed=0)
    >>> pairs == generate_pairs(3, seed=0)
    True
    >>> all(4 <= len(en.split()) <= 30 for en, fr in pairs)
    True
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
from pathlib import Path

from . import conjugation as cj
from . import grammar as gr
from . import lexicon as lx
from .data import DERIVED_DIR, split_pairs, vocabulary, write_splits

__all__ = ["GENERATED_DIR", "build_generated_corpus", "generate_pairs", "vocabulary"]

GENERATED_DIR = DERIVED_DIR / "generated"


class _Generator:
    """One random plan at a time; every method returns (english words, french words)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.lex = rng, gr.load_lexicon()

    def noun(self, kinds: str) -> gr.Noun:
        kind = self.rng.choice([k for k in kinds if k in self.lex.nouns])
        return self.rng.choice(self.lex.nouns[kind])

    def adjectives(self, noun: gr.Noun) -> list[gr.Adjective]:
        cls = {"P": "P", "A": "P", "F": "F", "M": "F"}.get(noun.kind, "T")
        fits = [a for a in self.lex.adjectives if cls in a.classes]
        n = self.rng.choices([0, 1, 2], weights=[4, 4, 2])[0]
        chosen = self.rng.sample(fits, n)
        if n == 2 and chosen[0].before == chosen[1].before:
            chosen = chosen[:1]
        return sorted(chosen, key=lambda a: not a.before)  # English order: size/age before colour

    def np(self, noun: gr.Noun, *, negative=False, allow_num=True, plural=None, genitive=True):
        """A noun phrase; returns (en, fr, gender, plural)."""
        rng, mass = self.rng, noun.kind == "M"
        plural = (not mass and rng.random() < 0.35) if plural is None else plural
        dets = ["def"] * 4 + ["dem", "my", "your", "his", "her", "our", "their"]
        dets += ["part"] * 4 if mass else ["indef"] * 3 + (["num"] * 2 if plural and allow_num and not negative else [])
        det = rng.choice(dets)
        count = rng.choice([rng.randint(2, 12), rng.randint(2, 99)]) if det == "num" else None
        en, fr = gr.noun_phrase(noun, det, plural=plural, adjectives=self.adjectives(noun), count=count,
                                negative=negative and det in ("indef", "part"))
        if genitive and det == "def" and noun.kind in "AVROL" and rng.random() < 0.2:
            owner = self.noun("P")
            o_en, o_fr = gr.noun_phrase(owner, "def", plural=False)
            en, fr = o_en[:-1] + [o_en[-1] + "'s"] + en[1:], fr + ["de"] + o_fr  # the boy's car -> la voiture du garçon
        return en, fr, noun.gender, plural

    def subject(self) -> cj.Subject:
        roll = self.rng.random()
        if roll < 0.45:
            return self.rng.choice(cj.PRONOUNS)
        if roll < 0.6:
            name, fr, gender = self.rng.choice(self.lex.names)
            return cj.Subject([name], [fr], 2, gender)
        en, fr, gender, plural = self.np(self.noun("PA"), allow_num=False, genitive=False)
        return cj.Subject(en, fr, 5 if plural else 2, gender)

    def when(self, tense: str) -> tuple[list[str], list[str]]:
        rng, roll = self.rng, self.rng.random()
        if roll < 0.5:
            return [], []
        if roll < 0.65:
            hour, minute = rng.randint(1, 12), rng.choice(range(0, 60, 5))
            return ["at", gr.time_en(hour, minute)], ["à", gr.time_fr(hour, minute)]
        if roll < 0.75:
            day, month = rng.randint(1, 28), rng.randint(1, 12)
            return ["on", gr.date_en(day, month)], ["le", gr.date_fr(day, month)]
        if roll < 0.85:
            day_en, day_fr = rng.choice(lx.WEEKDAYS)
            return ["on", day_en], [day_fr]
        en, fr = rng.choice(lx.WHEN.get(tense, lx.WHEN["present"]))
        return en.split(), fr.split()

    def where(self) -> tuple[list[str], list[str]]:
        rng, roll = self.rng, self.rng.random()
        if roll < 0.55:
            return [], []
        if roll < 0.65:
            en, fr = rng.choice(self.lex.cities)
            return ["in", en], ["à", fr]
        if roll < 0.72:
            en, fr = rng.choice(lx.COUNTRIES)
            return ["in", *en.split()], fr.split()
        prep_en, prep_fr = rng.choice(lx.PLACE_PREPS)
        en, fr, _, _ = self.np(self.noun("L"), allow_num=False, genitive=False)
        return [*prep_en.split(), *en], [*prep_fr.split(), *fr]

    def tense(self, verb: gr.Verb | None = None, modal=True) -> str:
        tenses = ["present"] * 4 + ["past"] * 3 + ["future"] * 2 + (["going", "want", "can", "must"] if modal else [])
        tense = self.rng.choice(tenses)
        # "you read" / "I cut" could be present or past: keep English -> French a function
        return "present" if verb is not None and tense == "past" and verb.en_past == verb.en else tense

    # -- sentences -------------------------------------------------------------------------------

    def transitive(self):
        verb = self.rng.choice(self.lex.transitive)
        subj, tense, neg = self.subject(), self.tense(verb), self.rng.random() < 0.3
        o_en, o_fr, _, _ = self.np(self.noun(verb.arg), negative=neg)
        en, fr = cj.verb_group(verb, subj, tense, neg, adverb=self.adverb(tense, neg))
        w_en, w_fr = self.where()
        t_en, t_fr = self.when(tense)
        return subj.en + en + o_en + w_en + t_en, subj.fr + fr + o_fr + w_fr + t_fr

    def adverb(self, tense, neg):
        if neg or tense not in ("present", "past", "future") or self.rng.random() < 0.8:
            return None
        return self.rng.choice(cj.ADVERBS)

    def pronoun_object(self):
        verb = self.rng.choice([v for v in self.lex.transitive if "P" in v.arg])
        subj, tense, neg = self.subject(), self.tense(verb), self.rng.random() < 0.3
        i = self.rng.choice([j for j in range(6) if j != subj.person or subj.person == 2])
        en, fr = cj.verb_group(verb, subj, tense, neg, pronoun=cj.OBJECT_FR[i])
        t_en, t_fr = self.when(tense)
        return subj.en + en + [cj.OBJECT_EN[i]] + t_en, subj.fr + fr + t_fr

    def antecedent(self):
        """'The red car? I saw it yesterday.': the pronoun takes the gender of a noun one sentence back."""
        verb = self.rng.choice([v for v in self.lex.transitive if set(v.arg) & set("VROF")])
        noun = self.noun("".join(k for k in verb.arg if k in "VROF"))
        a_en, a_fr, gender, plural = self.np(noun, allow_num=False)
        subj, tense, neg = self.rng.choice(cj.PRONOUNS), self.tense(verb), self.rng.random() < 0.3
        pron = ("les", "m", True) if plural else ("la" if gender == "f" else "le", gender, False)
        en, fr = cj.verb_group(verb, subj, tense, neg, pronoun=(pron[0], gender, plural))
        t_en, t_fr = self.when(tense)
        return (a_en + ["?"] + subj.en + en + ["them" if plural else "it"] + t_en,
                a_fr + ["?"] + subj.fr + fr + t_fr)

    def copula(self):
        subj = self.subject()  # a person or an animal
        adj = self.rng.choice([a for a in self.lex.adjectives if "P" in a.classes])
        tense, neg = self.rng.choice(["present"] * 3 + ["imperfect", "future"]), self.rng.random() < 0.3
        en, fr = cj.be(subj, tense, neg)
        t_en, t_fr = self.when("past" if tense == "imperfect" else tense)
        return subj.en + en + [adj.en] + t_en, subj.fr + fr + [adj.fr(subj.gender, subj.plural)] + t_fr

    def motion(self):
        verb = self.rng.choice(self.lex.motion)
        subj, tense, neg = self.subject(), self.tense(verb), self.rng.random() < 0.25
        en, fr = cj.verb_group(verb, subj, tense, neg)
        p_en, p_fr, _, _ = self.np(self.noun("L"), allow_num=False, genitive=False)
        if verb.arg in ("to", "from", "at") and self.rng.random() < 0.15:
            p_en, p_fr = ([word] for word in self.rng.choice(self.lex.cities))
        prep_en, prep_fr = cj.MOTION_PREPS[verb.arg]
        t_en, t_fr = self.when(tense)
        return subj.en + en + prep_en + p_en + t_en, subj.fr + fr + prep_fr + p_fr + t_fr

    def intransitive(self):
        verb = self.rng.choice(self.lex.intransitive)
        subj, tense, neg = self.subject(), self.tense(verb), self.rng.random() < 0.25
        en, fr = cj.verb_group(verb, subj, tense, neg, adverb=self.adverb(tense, neg))
        w_en, w_fr = self.where()
        t_en, t_fr = self.when(tense)
        return subj.en + en + w_en + t_en, subj.fr + fr + w_fr + t_fr

    def ditransitive(self):
        verb = self.rng.choice(self.lex.ditransitive)
        subj, tense, neg = self.subject(), self.tense(verb), self.rng.random() < 0.25
        o_en, o_fr, _, _ = self.np(self.noun(verb.arg), allow_num=False)
        if self.rng.random() < 0.4:  # "I give him the book" -> "je lui donne le livre"
            i = self.rng.randrange(6)
            en, fr = cj.verb_group(verb, subj, tense, neg, pronoun=(cj.INDIRECT_FR[i], "m", False), indirect=True)
            return subj.en + en + [cj.OBJECT_EN[i]] + o_en, subj.fr + fr + o_fr
        r_en, r_fr, _, _ = self.np(self.noun("P"), allow_num=False, genitive=False)
        en, fr = cj.verb_group(verb, subj, tense, neg)
        return subj.en + en + o_en + ["to"] + r_en, subj.fr + fr + o_fr + ["à"] + r_fr

    def relative(self):
        """'I see the man who reads the book.' (qui) / 'The car that she bought is red.' (que + agreement)."""
        rng = self.rng
        if rng.random() < 0.5:  # subject relative, inside a main clause
            head = self.noun("P")
            h_en, h_fr, gender, plural = self.np(head, allow_num=False, genitive=False)
            verb = rng.choice([v for v in self.lex.transitive if "P" in v.arg])
            subj = rng.choice(cj.PRONOUNS)
            m_en, m_fr = cj.verb_group(verb, subj, rng.choice(["present", "past", "future"]))
            inner = rng.choice(self.lex.transitive)
            tense = "present" if inner.en_past == inner.en else rng.choice(["present", "past", "future"])
            r_en, r_fr = cj.verb_group(inner, cj.noun_subject(h_en, h_fr, gender, plural), tense)
            o_en, o_fr = self.np(self.noun(inner.arg), allow_num=False, genitive=False)[:2]
            return (subj.en + m_en + h_en + ["who"] + r_en + o_en,
                    subj.fr + m_fr + h_fr + ["qui"] + r_fr + o_fr)
        head = self.noun("P" if rng.random() < 0.5 else "VRO")
        h_en, h_fr, gender, plural = self.np(head, allow_num=False, genitive=False)
        verb = rng.choice([v for v in self.lex.transitive if head.kind in v.arg])
        subj, tense = rng.choice(cj.PRONOUNS), rng.choice(["present", "past", "future"])
        tense = "present" if verb.en_past == verb.en else tense
        r_en, r_fr = cj.verb_group(verb, subj, tense, False, relative=(gender, plural))
        adj = rng.choice([a for a in self.lex.adjectives if ("P" if head.kind == "P" else "T") in a.classes])
        be_en, be_fr = cj.be(cj.noun_subject(h_en, h_fr, gender, plural), "present", rng.random() < 0.3)
        return (h_en + ["that"] + subj.en + r_en + be_en + [adj.en],
                h_fr + ["que"] + subj.fr + r_fr + be_fr + [adj.fr(gender, plural)])

    def question(self):
        """'Do you see the car?' -> 'Est-ce que vous voyez la voiture ?'; also 'why' and 'when'."""
        rng = self.rng
        wh = rng.choice([None, None, ("why", "pourquoi"), ("when", "quand")])
        verb = rng.choice(self.lex.transitive + self.lex.intransitive)
        subj, tense = self.subject(), self.tense(verb)
        (aux, rest), fr = cj.verb_group(verb, subj, tense, False, ask=True)
        o_en, o_fr = ([], []) if not verb.arg else self.np(self.noun(verb.arg))[:2]
        w_en, w_fr = self.where()
        t_en, t_fr = ([], []) if wh and wh[0] == "when" else self.when(tense)
        start_en, start_fr = ([wh[0]], [wh[1]]) if wh else ([], [])
        return (start_en + aux + subj.en + rest + o_en + w_en + t_en + ["?"],
                start_fr + ["est-ce", "que"] + subj.fr + fr + o_fr + w_fr + t_fr + ["?"])

    def where_is(self):
        en, fr, _, plural = self.np(self.noun("PAVRO"), allow_num=False)
        return ["where", "are" if plural else "is"] + en + ["?"], ["où", "sont" if plural else "est"] + fr + ["?"]

    def sentence(self) -> tuple[str, str]:
        kinds = [self.transitive] * 6 + [self.pronoun_object] * 2 + [self.antecedent, self.copula, self.copula,
                 self.motion, self.motion, self.intransitive, self.ditransitive, self.relative,
                 self.question, self.question, self.where_is]
        en, fr = self.rng.choice(kinds)()
        if self.rng.random() < 0.12 and en[-1] != "?":  # two clauses: "..., but ..."
            joiner = self.rng.choice([("and", "et"), ("but", "mais"), ("because", "parce que")])
            en2, fr2 = self.rng.choice([self.transitive, self.motion, self.intransitive, self.copula])()
            en, fr = en + [","] + [joiner[0]] + en2, fr + [","] + joiner[1].split() + fr2
        end = [] if en[-1] == "?" else ["."]
        return gr.finish_en(en + end), gr.finish_fr(fr + end)


def generate_pairs(n: int, *, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct English->French pairs of 4-30 words, the same for the same ``seed`` on every machine.

    Raises:
        ValueError: ``n`` is not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (number of pairs); got {n!r}")
    gen, seen, pairs = _Generator(random.Random(seed)), set(), []
    while len(pairs) < n:
        en, fr = gen.sentence()
        if en not in seen and 4 <= len(en.split()) <= 30 and 4 <= len(fr.split()) <= 30:
            seen.add(en)
            pairs.append((en, fr))
    return pairs


def build_generated_corpus(out: str | Path = GENERATED_DIR, *, pairs: int = 200_000, seed: int = 0,
                           valid: float = 0.005, test: float = 0.005) -> Path:
    """Generate ``pairs`` pairs and write ``train/valid/test.tsv`` and ``manifest.json`` to ``out``.

    A new folder appears whole (written beside it, then renamed), so processes that build it at the same
    time (notebooks run in parallel) never read a half-written file.
    """
    out = Path(out)
    splits = split_pairs(generate_pairs(pairs, seed=seed), valid=valid, test=test, seed=seed)
    if out.exists():
        return write_splits(splits, out)
    partial = write_splits(splits, out.with_name(f"{out.name}.{os.getpid()}.partial")).parent
    try:
        partial.rename(out)
    except OSError:  # another process finished first: keep its folder (the same pairs)
        shutil.rmtree(partial)
    return out / "manifest.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m transformer_lib.corpus", description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="number of pairs (default 200000)")
    parser.add_argument("--seed", type=int, default=0), parser.add_argument("--out", type=Path, default=GENERATED_DIR)
    args = parser.parse_args(argv)
    manifest = build_generated_corpus(args.out, pairs=args.pairs, seed=args.seed)
    print(f"wrote {args.pairs} pairs to {manifest.parent} ({manifest.name} has their sizes and SHA-256)")


if __name__ == "__main__":
    main()
