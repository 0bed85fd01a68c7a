"""Tests of notebook 09's checks, check_count_pairs, check_merge_pair and check_learn_bpe: the references and
correct alternative formulations pass; realistic wrong answers, one mistake each, get the diagnosis that names it."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import pytest
from checking import passes, raises

from transformer_lib import bpe, checks

EOW = "</w>"


# ---------------------------------------------------------------------------------------- count_pairs
def pairs_dict(vocab):
    pairs = defaultdict(int)
    for word, freq in vocab.items():
        for i in range(len(word) - 1):
            pairs[word[i], word[i + 1]] += freq
    return dict(pairs)


def pairs_weighted(vocab, *, weighted=True, once=False, last=True):
    pairs = Counter()
    for word, freq in vocab.items():
        found = list(zip(word, word[1:] if last else word[1:-1]))
        for pair in set(found) if once else found:
            pairs[pair] += freq if weighted else 1
    return pairs


def pairs_across_words(vocab):  # one stream of symbols: the last symbol of a word pairs with the next word's first
    symbols = [s for word, freq in vocab.items() for _ in range(freq) for s in word]
    return Counter(itertools.pairwise(symbols))


COUNT_CORRECT = {
    "library": bpe.count_pairs,
    "dict with index loop": pairs_dict,
    "Counter of a generator": lambda vocab: Counter(
        pair for word, freq in vocab.items() for pair in itertools.pairwise(word) for _ in range(freq)),
}


@pytest.mark.parametrize("fn", COUNT_CORRECT.values(), ids=COUNT_CORRECT)
def test_count_pairs_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_count_pairs, fn, capsys) == ["count_pairs: all 5 cases pass"]


COUNT_MISTAKES = [  # (id, a realistic wrong implementation, the diagnosis it must get)
    ("unweighted", lambda v: pairs_weighted(v, weighted=False),
     r"case 'the paper's example.*you forgot to weight by the word's count.*pair \('l', 'o'\): expected 7, got 2"),
    ("a set per word", lambda v: pairs_weighted(v, once=True),
     r"case 'a pair twice in one word'.*counts twice.*through a set"),
    ("last pair missed", lambda v: pairs_weighted(v, last=False), r"you missed the last pair of each word"),
    ("across words", pairs_across_words, r"you counted pairs across word boundaries, e.g. \('</w>', "),
    ("string keys", lambda v: Counter({" ".join(p): c for p, c in bpe.count_pairs(v).items()}),
     r"each key must be a pair, a tuple of str such as \('e', 's'\); got the key 'l o'"),
    ("list of pairs", lambda v: list(bpe.count_pairs(v).items()), r"return a Counter \(or dict\).*got list"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in COUNT_MISTAKES], ids=[m[0] for m in COUNT_MISTAKES])
def test_count_pairs_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_count_pairs(fn)


def test_count_pairs_in_place_change_is_named():
    def count_pairs(vocab):
        pairs = bpe.count_pairs(vocab)
        vocab.clear()  # "done with it"
        return pairs

    with raises(r"changed its input `vocab` in place"):
        checks.check_count_pairs(count_pairs)


# ----------------------------------------------------------------------------------------- merge_pair
def merged(word, pair, *, first_only=False, overlap=False):
    out, i, done = [], 0, False
    while i < len(word):
        if not done and i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i, done = i + (1 if overlap else 2), first_only
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def merge_with(fn):
    return lambda vocab, pair: {fn(word, pair): freq for word, freq in vocab.items()}


def merge_right_to_left(word, pair):
    return tuple(s[::-1] for s in merged(tuple(s[::-1] for s in word[::-1]), (pair[1][::-1], pair[0][::-1])))[::-1]


def merge_by_string(vocab, pair):  # the classic: replace "a b" in the space-joined word (matches inside "xa b")
    return {tuple(" ".join(w).replace(" ".join(pair), "".join(pair)).split()): f for w, f in vocab.items()}


def merge_in_place(vocab, pair):
    for word in list(vocab):
        new = merged(word, pair)
        if new != word:
            vocab[new] = vocab.pop(word)
    return vocab


MERGE_CORRECT = {
    "library": bpe.merge_pair,
    "while loop": merge_with(merged),
    "copy then rebuild": lambda vocab, pair: dict(merge_with(merged)(dict(vocab), pair)),
}


@pytest.mark.parametrize("fn", MERGE_CORRECT.values(), ids=MERGE_CORRECT)
def test_merge_pair_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_merge_pair, fn, capsys) == ["merge_pair: all 6 cases pass"]


MERGE_MISTAKES = [
    ("first occurrence only", merge_with(lambda w, p: merged(w, p, first_only=True)),
     (r"case 'overlapping occurrences.*you merged only the first occurrence in each word.*"
      r"word \('aa', 'a', 'a', '</w>'\): expected 0, got 1")),
    ("overlapping", merge_with(lambda w, p: merged(w, p, overlap=True)),
     (r"case 'the paper's example.*must not overlap.*word \('n', 'e', 'w', 'es', 's', 't', '</w>'\): expected 0, "
      r"got 6")),
    ("right to left", merge_with(merge_right_to_left), r"merge left to right: with \('a', 'a'\)"),
    ("string replace", merge_by_string, r"case 'whole symbols only.*you replaced strings, not symbols"),
    ("counts lost", lambda vocab, pair: {w: 1 for w in bpe.merge_pair(vocab, pair)}, r"keep each word's count"),
    ("changed words only", lambda vocab, pair: {w: f for w, f in bpe.merge_pair(vocab, pair).items() if w not in vocab},
     r"keep the words without the pair too"),
    ("in place", merge_in_place, r"case 'the paper's example.*changed its input `vocab` in place"),
    ("string keys", lambda vocab, pair: {" ".join(w): f for w, f in bpe.merge_pair(vocab, pair).items()},
     r"each key must be a word, a tuple of str"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in MERGE_MISTAKES], ids=[m[0] for m in MERGE_MISTAKES])
def test_merge_pair_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_merge_pair(fn)


# ------------------------------------------------------------------------------------------ learn_bpe
def learner(*, pick=lambda pairs: min(pairs, key=lambda p: (-pairs[p], p)), steps=lambda n: n, eow=True,
            weighted=True, recount=True, stop=True, split=str.split, merge=bpe.merge_pair):
    """A student's learn_bpe, standalone, with one knob per mistake."""
    def learn_bpe(texts, num_merges):
        vocab = Counter()
        for text in texts:
            for word in split(text):
                vocab[(*word, EOW) if eow else tuple(word)] += 1
        if not weighted:
            vocab = dict.fromkeys(vocab, 1)
        merges, pairs = [], pairs_weighted(vocab)
        for _ in range(steps(num_merges)):
            if recount:
                pairs = pairs_weighted(vocab)
            if stop and not pairs:
                break
            best = pick(pairs)
            merges.append(best)
            if recount:
                vocab = merge(vocab, best)
            else:
                del pairs[best]
        return merges
    return learn_bpe


def learn_with_own_helpers(texts, num_merges):  # what the notebook's solution does: Exercises 9.1 and 9.2
    vocab, merges = bpe.word_counts(texts), []
    for _ in range(num_merges):
        pairs = pairs_dict(vocab)
        if not pairs:
            break
        best = max(sorted(pairs), key=pairs.get)  # sorted first: the first maximum is the smallest pair
        merges.append(best)
        vocab = merge_with(merged)(vocab, best)
    return merges


LEARN_CORRECT = {"library": bpe.learn_bpe, "standalone": learner(), "own helpers": learn_with_own_helpers}


@pytest.mark.parametrize("fn", LEARN_CORRECT.values(), ids=LEARN_CORRECT)
def test_learn_bpe_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_learn_bpe, fn, capsys) == ["learn_bpe: all 6 cases pass"]


LEARN_MISTAKES = [
    ("most_common ties", learner(pick=lambda pairs: Counter(pairs).most_common(1)[0][0]),
     (r"your merges are valid but break ties differently: the course breaks ties by the highest count, then the "
      r"lexicographically smallest pair.*At merge 6, \('n', 'e'\) and \('e', 'w'\) both have count 6; the course "
      r"picks \('e', 'w'\)")),
    ("first seen on ties", learner(pick=lambda pairs: max(pairs, key=pairs.get)), r"valid but break ties differently"),
    ("largest pair on ties", learner(pick=lambda pairs: max(pairs, key=lambda p: (pairs[p], p))),
     r"valid but break ties differently"),
    ("one merge too many", learner(steps=lambda n: n + 1),
     r"case 'the paper's example, 10 merges'.*off by one\? num_merges=10 asks for 10 merges; you returned 11"),
    ("one merge too few", learner(steps=lambda n: n - 1), r"off by one\? num_merges=10 .* you returned 9"),
    ("no end-of-word marker", learner(eow=False), r"you forgot the end-of-word marker"),
    ("unweighted", learner(weighted=False), r"each word must count as often as it occurs"),
    ("no recount", learner(recount=False), r"recount the pairs after each merge"),
    ("least frequent", learner(pick=lambda pairs: min(pairs, key=lambda p: (pairs[p], p))),
     r"merge 1, \(.*\), has count 2, but \('e', 's'\) has count 9: merge the most frequent pair"),
    ("no early stop", learner(stop=False),
     r"case 'more merges asked than pairs.*raised ValueError.*hint: after 2 merges no pair is left.*if not pairs"),
    ("split on spaces", learner(split=lambda text: text.split(" ")), r"split the texts with text.split\(\)"),
    ("overlapping merge inside", learner(merge=merge_with(lambda w, p: merged(w, p, overlap=True))),
     (r"case 'the paper's example.*merge 2, \('es', 's'\), is not two adjacent symbols of any word.*"
      r"check_merge_pair tests one")),
    ("merged symbols", lambda texts, n: ["".join(p) for p in bpe.learn_bpe(texts, n)],
     r"return the pairs that were merged, e.g. \('e', 's'\), not the merged symbols; got 'es'"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in LEARN_MISTAKES], ids=[m[0] for m in LEARN_MISTAKES])
def test_learn_bpe_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_learn_bpe(fn)


def test_learn_bpe_failure_shows_case_expected_and_got():
    with pytest.raises(AssertionError) as err:
        checks.check_learn_bpe(learner(steps=lambda n: n + 1))
    lines = str(err.value).splitlines()
    assert lines[0].startswith("learn_bpe: case 'the paper's example, 10 merges' (1 of 6): off by one?")
    assert lines[1].startswith("  texts: ['low low") and lines[2].startswith("  expected [('e', 's'), ")
    assert lines[3].startswith("  got      [('e', 's'), ") and len(lines) == 4


@pytest.mark.parametrize("check", [checks.check_count_pairs, checks.check_merge_pair, checks.check_learn_bpe])
def test_not_done_is_one_line(check):
    def stub(*args):
        raise NotImplementedError()

    stub.__name__ = check.__name__.removeprefix("check_")
    with pytest.raises(checks.ExerciseNotDone, match=f"write `{stub.__name__}` in place of"):
        check(stub)


def test_student_exception_is_shown_with_its_case():
    with raises(r"merge_pair: case 'the paper's example, \('e', 's'\)' \(1 of 6\): your code raised KeyError"):
        checks.check_merge_pair(lambda vocab, pair: vocab[pair])
