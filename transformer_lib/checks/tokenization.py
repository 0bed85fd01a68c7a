"""Checks of notebook 09's exercise, byte-pair encoding by hand, each beside its catalogue of typical mistakes:
``count_pairs(vocab)``, ``merge_pair(vocab, pair)`` and ``learn_bpe(texts, num_merges)`` (:mod:`..bpe`).

A vocabulary maps words, tuples of symbols ending with ``"</w>"``, to their counts. ``learn_bpe`` is checked on
its own: it may call the student's ``count_pairs`` and ``merge_pair`` or not. Its merges are replayed on the
texts, so a list of valid merges that breaks ties another way is told exactly that.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from .. import bpe
from ._core import Mistake, call, run_cases

__all__ = ["check_count_pairs", "check_learn_bpe", "check_merge_pair"]

EOW = bpe.END_OF_WORD
PAPER = ["low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3]  # Sennrich et al. (2016), Sec. 3.2
TIES = ("the course breaks ties by the highest count, then the lexicographically smallest pair, "
        "min(pairs, key=lambda p: (-pairs[p], p))")


def _short(value: Any, width: int = 70) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _call(fn: Callable, *args: Any, names: list[str]) -> Any:
    """``call`` on copies of dicts and lists; a changed argument is a mistake (``call`` only guards tensors)."""
    copies = [type(a)(a) if isinstance(a, (dict, list)) else a for a in args]
    got = call(fn, *copies, names=names)
    for name, original, passed in zip(names, args, copies):
        if passed != original:
            raise Mistake(f"your code changed its input `{name}` in place: build and return a new "
                          f"{type(original).__name__} and leave `{name}` as it was")
    return got


def _paper_after(n: int) -> dict:  # the paper's vocabulary after the course's first n merges
    return functools.reduce(bpe.merge_pair, bpe.learn_bpe(PAPER, n), bpe.word_counts(PAPER))


def _differences(got: Mapping, expected: Mapping, key: str) -> str:
    keys = [k for k in [*expected, *(k for k in got if k not in expected)] if got.get(k, 0) != expected.get(k, 0)]
    lines = [f"\n  {key} {_short(k, 50)}: expected {expected.get(k, 0)}, got {got.get(k, 0)}" for k in keys[:3]]
    return "".join(lines) + (f"\n  ... and {len(keys) - 3} more" if len(keys) > 3 else "")


def _check_mapping(got: Any, what: str, key: str, example: str) -> dict:
    """``got`` as a plain dict (zero counts dropped), or a mistake naming what it should be."""
    if not isinstance(got, Mapping):
        raise Mistake(f"return {what}; got {type(got).__name__} {_short(got, 40)}")
    for k, v in got.items():
        if not isinstance(k, tuple) or not all(isinstance(s, str) for s in k):
            raise Mistake(f"each key must be a {key}, a tuple of str such as {example}; got the key {_short(k, 40)}")
        if isinstance(v, bool) or not isinstance(v, int):
            raise Mistake(f"each count must be an int; got {_short(v, 30)} for {_short(k, 40)}")
    return {k: v for k, v in got.items() if v}


# ---------------------------------------------------------------------------------------- count_pairs
def check_count_pairs(fn: Callable) -> None:
    """Check ``count_pairs(vocab) -> Counter({(left, right): count})``, weighted by the words' counts."""
    cases = [
        ("the paper's example (low, lower, newest, widest)", bpe.word_counts(PAPER)),
        ("a pair twice in one word", {("a", "a", "a", EOW): 2, ("b", "a", "b", "a", EOW): 1}),
        ("after 4 merges (symbols of several characters)", _paper_after(4)),
        ("a one-symbol word has no pair", {("a" + EOW,): 4, ("h", "i", EOW): 1}),
        ("an empty vocabulary", {}),
    ]
    run_cases("count_pairs", cases, lambda vocab: _count_pairs_case(fn, vocab))


def _pairs_of(vocab: Mapping, *, weighted: bool = True, once: bool = False, drop_last: bool = False) -> Counter:
    pairs: Counter = Counter()
    for word, count in vocab.items():
        found = list(zip(word, word[1:] if not drop_last else word[1:-1]))
        for pair in set(found) if once else found:
            pairs[pair] += count if weighted else 1
    return pairs


def _count_pairs_case(fn: Callable, vocab: dict) -> None:
    got = _check_mapping(_call(fn, vocab, names=["vocab"]), "a Counter (or dict) {(left, right): count}",
                         "pair", "('e', 's')")
    expected = dict(bpe.count_pairs(vocab))
    if got == expected:
        return
    variants = [
        ("you forgot to weight by the word's count: each pair in a word occurs vocab[word] times",
         _pairs_of(vocab, weighted=False)),
        (("a pair that occurs twice in a word counts twice (('a', 'a') in ('a', 'a', 'a', '</w>')): "
          "don't count a word's pairs through a set"), _pairs_of(vocab, once=True)),
        (("you missed the last pair of each word (the one with '</w>'): the pairs of a word are "
          "zip(word, word[1:]), i.e. range(len(word) - 1)"), _pairs_of(vocab, drop_last=True)),
    ]
    inputs = f"\n  vocab: {_short(vocab)}"
    for message, wrong in variants:
        if got == {k: v for k, v in wrong.items() if v}:
            raise Mistake(message + _differences(got, expected, "pair") + inputs)
    if any(len(k) != 2 for k in got):
        raise Mistake(f"each key must be a pair of two symbols; got {_short(next(k for k in got if len(k) != 2))}")
    stray = [k for k in got if k not in expected]
    if stray and any(k[0] == EOW for k in stray):
        raise Mistake(f"you counted pairs across word boundaries, e.g. {stray[0]}: count the pairs inside each word "
                      f"only" + _differences(got, expected, "pair") + inputs)
    if stray:
        raise Mistake(f"the pair {stray[0]} is not two adjacent symbols of any word"
                      + _differences(got, expected, "pair") + inputs)
    raise Mistake("your pair counts differ from the reference" + _differences(got, expected, "pair") + inputs)


# ----------------------------------------------------------------------------------------- merge_pair
def check_merge_pair(fn: Callable) -> None:
    """Check ``merge_pair(vocab, pair) -> dict``: every occurrence merged, left to right, no overlap."""
    cases = [
        ("the paper's example, ('e', 's')", (bpe.word_counts(PAPER), ("e", "s"))),
        ("overlapping occurrences: ('a', 'a') in a a a", (
            {("a", "a", "a", EOW): 2, ("a", "a", "a", "a", EOW): 1, ("b", "a", "a", EOW): 3}, ("a", "a"))),
        ("two occurrences in one word", ({("a", "b", "c", "a", "b", EOW): 2, ("a", "b", EOW): 1}, ("a", "b"))),
        ("whole symbols only: 'xa' is not 'a'", (
            {("x", "a", "b", EOW): 1, ("xa", "b", EOW): 3, ("a", "bc", EOW): 2}, ("a", "b"))),
        ("a pair with the end-of-word marker, after 2 merges", (_paper_after(2), ("est", EOW))),
        ("a pair that occurs nowhere: nothing changes", ({("l", "o", "w", EOW): 5}, ("x", "y"))),
    ]
    run_cases("merge_pair", cases, lambda case: _merge_pair_case(fn, *case))


def _merged(word: tuple, pair: tuple, *, first_only: bool = False, from_right: bool = False,
            overlap: bool = False) -> tuple:
    symbols, i, done = list(word[::-1] if from_right else word), 0, False
    target = pair[::-1] if from_right else pair
    out = []
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == target and not done:
            out.append(pair[0] + pair[1])
            i, done = i + (1 if overlap else 2), first_only
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out[::-1] if from_right else out)


def _merge_all(vocab: Mapping, merge: Callable[[tuple], tuple], count: Callable[[int], int] = int) -> dict:
    merged: dict = {}
    for word, c in vocab.items():
        merged[merge(word)] = merged.get(merge(word), 0) + count(c)
    return merged


def _merge_pair_case(fn: Callable, vocab: dict, pair: tuple) -> None:
    got = _check_mapping(_call(fn, vocab, pair, names=["vocab", "pair"]), "a dict {word: count}", "word",
                         "('es', 't', '</w>')")
    expected = bpe.merge_pair(vocab, pair)
    if got == expected:
        return
    joined = " ".join(pair)
    variants = [
        ("you merged only the first occurrence in each word: merge every occurrence (keep scanning after a merge)",
         _merge_all(vocab, lambda w: _merged(w, pair, first_only=True))),
        ("merge left to right: with ('a', 'a'), the word ('a', 'a', 'a') becomes ('aa', 'a'), not ('a', 'aa')",
         _merge_all(vocab, lambda w: _merged(w, pair, from_right=True))),
        (("occurrences must not overlap: after merging word[i] and word[i + 1], go on at i + 2 (('a', 'a', 'a') "
          "becomes ('aa', 'a'))"), _merge_all(vocab, lambda w: _merged(w, pair, overlap=True))),
        ((f"you replaced strings, not symbols: {joined!r} also matches inside 'x{joined}' (the symbol 'xa' is not "
          "'a'); compare whole symbols, word[i] == left and word[i + 1] == right"),
         _merge_all(vocab, lambda w: tuple(" ".join(w).replace(joined, "".join(pair)).split()))),
        ("keep each word's count: the merged word occurs as often as the word did",
         _merge_all(vocab, lambda w: _merged(w, pair), lambda c: 1)),
        ("keep the words without the pair too (unchanged, with their counts): the result is the whole vocabulary",
         {k: v for k, v in expected.items() if k not in vocab}),
    ]
    inputs = f"\n  vocab: {_short(vocab)}\n  pair: {pair}"
    for message, wrong in variants:
        if got == wrong:
            raise Mistake(message + _differences(got, expected, "word") + inputs)
    if sum(got.values()) != sum(vocab.values()):
        raise Mistake(f"the counts add up to {sum(got.values())}, not {sum(vocab.values())}: a merge changes how a "
                      "word is split, never how often it occurs" + _differences(got, expected, "word") + inputs)
    raise Mistake("your merged vocabulary differs from the reference" + _differences(got, expected, "word") + inputs)


# ------------------------------------------------------------------------------------------ learn_bpe
def check_learn_bpe(fn: Callable) -> None:
    """Check ``learn_bpe(texts, num_merges) -> [(left, right), ...]``; its merges are replayed to explain a mismatch."""
    cases = [
        ("the paper's example, 10 merges", (PAPER, 10)),
        ("one merge", (PAPER, 1)),
        ("ties: every pair occurs once", (["zy ab"], 3)),
        ("several texts, repeated spaces and newlines", (["the cat  sat\n", "on the mat", "the hat\n\n"], 8)),
        ("num_merges=0", (PAPER, 0)),
        ("more merges asked than pairs: stop early", (["ab ab", "b"], 10)),
    ]
    run_cases("learn_bpe", cases, lambda case: _learn_bpe_case(fn, *case))


def _learn(texts: list, n: int, *, eow: bool = True, weighted: bool = True, recount: bool = True) -> list:
    """The reference algorithm, or one of its known mistakes."""
    vocab = {(w if eow else w[:-1]): (c if weighted else 1) for w, c in bpe.word_counts(texts).items()}
    if not recount:
        pairs = bpe.count_pairs(vocab)
        return sorted(pairs, key=lambda p: (-pairs[p], p))[:n]
    merges = []
    for _ in range(n):
        pairs = bpe.count_pairs(vocab)
        if not pairs:
            break
        merges.append(min(pairs, key=lambda p: (-pairs[p], p)))
        vocab = bpe.merge_pair(vocab, merges[-1])
    return merges


def _learn_bpe_case(fn: Callable, texts: list, num_merges: int) -> None:
    expected = bpe.learn_bpe(texts, num_merges)
    try:
        got = _call(fn, texts, num_merges, names=["texts", "num_merges"])
    except Mistake as err:  # max() of an empty Counter: the loop did not stop when no pair was left
        if len(expected) < num_merges and "empty" in str(err):
            raise Mistake(f"{err}\n  hint: after {len(expected)} merges no pair is left (every word is one symbol): "
                          "stop early, e.g. `if not pairs: break`") from err.__cause__
        raise
    if not isinstance(got, (list, tuple)):
        raise Mistake(f"return a list of merges [(left, right), ...]; got {type(got).__name__} {_short(got, 40)}")
    for pair in got:
        if isinstance(pair, str):
            raise Mistake(f"return the pairs that were merged, e.g. ('e', 's'), not the merged symbols; got {pair!r}")
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise Mistake(f"each merge must be a tuple of two str (left, right); got {_short(pair, 40)}")
    got = list(got)
    if any(not s or any(c.isspace() for c in s) for pair in got for s in pair):
        raise Mistake("a symbol holds whitespace or is empty: split the texts with text.split() (no argument), which "
                      "splits on any run of spaces, tabs and newlines and drops them")
    if got == expected:
        return
    inputs = f"\n  texts: {_short(texts)}, num_merges={num_merges}\n  expected {_short(expected, 200)}" \
             f"\n  got      {_short(got, 200)}"
    variants = [
        (("you forgot the end-of-word marker: each word is its characters plus '</w>' as the last symbol "
          "(so 'st' at the end of a word is a different symbol from 'st' inside one)"),
         _learn(texts, num_merges, eow=False)),
        ("each word must count as often as it occurs in the texts: weight its pairs by its count",
         _learn(texts, num_merges, weighted=False)),
        (("recount the pairs after each merge: merging changes which pairs exist (you took the most frequent pairs "
          "of the first count)"), _learn(texts, num_merges, recount=False)),
    ]
    for message, wrong in variants:
        if got == wrong:
            raise Mistake(message + inputs)
    without_eow = {word[:-1]: count for word, count in bpe.word_counts(texts).items()}
    if not any(EOW in s for pair in got for s in pair) and _valid(got, without_eow):
        raise Mistake(variants[0][0] + inputs)
    if len(got) > num_merges or (len(expected) == num_merges and got == expected[:-1]):
        raise Mistake(f"off by one? num_merges={num_merges} asks for {num_merges} merges; you returned {len(got)}"
                      + inputs)
    _replay(got, expected, texts, num_merges, inputs)


def _valid(merges: list, vocab: dict) -> bool:
    """Whether each merge is a most frequent pair of ``vocab`` after the merges before it."""
    for pair in merges:
        pairs = bpe.count_pairs(vocab)
        if not pairs or pairs.get(pair, 0) < max(pairs.values()):
            return False
        vocab = bpe.merge_pair(vocab, pair)
    return True


def _replay(got: list, expected: list, texts: list, num_merges: int, inputs: str) -> None:
    """Replay the student's merges; say where one is not the most frequent pair, or that ties went another way."""
    vocab = bpe.word_counts(texts)
    for i, pair in enumerate(got):
        pairs = bpe.count_pairs(vocab)
        if not pairs:
            raise Mistake(f"after {i} merges no pair is left (every word is one symbol): stop early, as soon as "
                          f"there is no pair to count" + inputs)
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pair not in pairs:
            where = " across a word boundary?" if pair[0].endswith(EOW) else ""
            raise Mistake(f"merge {i + 1}, {pair}, is not two adjacent symbols of any word at that point{where} "
                          f"(the most frequent pair is {best}, count {pairs[best]}); is each merge done right? "
                          "check_merge_pair tests one" + inputs)
        if pairs[pair] < pairs[best]:
            raise Mistake(f"merge {i + 1}, {pair}, has count {pairs[pair]}, but {best} has count {pairs[best]}: "
                          f"merge the most frequent pair, counted again after each merge" + inputs)
        if pair != expected[i]:
            raise Mistake(f"your merges are valid but break ties differently: {TIES}. At merge {i + 1}, {pair} and "
                          f"{expected[i]} both have count {pairs[pair]}; the course picks {expected[i]}" + inputs)
        vocab = bpe.merge_pair(vocab, pair)
    raise Mistake(f"you stopped after {len(got)} merges, but num_merges={num_merges} and pairs are left: stop early "
                  f"only when no pair is left" + inputs)
