"""Byte-pair encoding by hand (Sennrich, Haddow and Birch, 2016), the reference of notebook 09's exercise.

BPE starts from characters and learns a vocabulary of subwords by repeating three steps: count every
pair of adjacent symbols in the corpus (each word weighted by how often it occurs), pick the most
frequent pair, and merge it into one symbol everywhere. The list of merges, in the order they were
learned, *is* the tokenizer: :func:`apply_bpe` segments a new word by replaying them.

A word is a tuple of symbols ending with the end-of-word marker ``"</w>"`` (Sec. 3.2 of the paper), so
that ``"st"`` inside a word and ``"st</w>"`` at its end are different tokens, and words never merge
across a space. The vocabulary maps each word to its count:

    {('l', 'o', 'w', '</w>'): 5, ('n', 'e', 'w', 'e', 's', 't', '</w>'): 6, ...}

Ties: when several pairs share the highest count, :func:`learn_bpe` picks the lexicographically
smallest pair (Python's tuple order, by code point: ``('e', 's') < ('s', 't')``), so the same texts
always give the same merges, whatever the order the pairs were counted in.

The real tokenizer (:mod:`transformer_lib.tokenizer`) runs the same algorithm, fast, in Rust.

Example:
    >>> merges = learn_bpe(["low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3], num_merges=4)
    >>> merges
    [('e', 's'), ('es', 't'), ('est', '</w>'), ('l', 'o')]
    >>> apply_bpe("lowest", merges)
    ['lo', 'w', 'est</w>']
"""

from __future__ import annotations

import itertools
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._validation import door

__all__ = ["END_OF_WORD", "apply_bpe", "count_pairs", "learn_bpe", "merge_pair", "word_counts"]

END_OF_WORD = "</w>"
Word = tuple[str, ...]
Pair = tuple[str, str]


# -- validation at the door --------------------------------------------------------------------------


def _check_texts(texts: Any, *_: Any) -> None:
    if isinstance(texts, str):
        raise TypeError(f"texts must be an iterable of str (e.g. a list of sentences), not one str; got {texts!r:.40}")
    if not isinstance(texts, Iterable):
        raise TypeError(f"texts must be an iterable of str; got {type(texts).__name__}")


def _check_vocab(vocab: Any, *_: Any) -> None:
    expect = "a dict mapping words (tuples of str symbols) to counts (int)"
    if not isinstance(vocab, Mapping):
        raise TypeError(f"vocab must be {expect}; got {type(vocab).__name__}")
    for word, count in vocab.items():
        if not isinstance(word, tuple) or not all(isinstance(s, str) for s in word):
            raise TypeError(f"vocab must be {expect}; got the key {word!r:.60}")
        if isinstance(count, bool) or not isinstance(count, numbers.Integral):
            raise TypeError(f"vocab must be {expect}; got the count {count!r} for {word!r:.60}")


def _check_pair(pair: Any, name: str = "pair") -> None:
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
        raise TypeError(f"{name} must be a tuple of two str symbols, e.g. ('e', 's'); got {pair!r:.60}")


def _check_merge_args(vocab: Any, pair: Any) -> None:
    _check_vocab(vocab)
    _check_pair(pair)


def _check_learn_args(texts: Any, num_merges: Any) -> None:
    _check_texts(texts)
    if isinstance(num_merges, bool) or not isinstance(num_merges, numbers.Integral):
        raise TypeError(f"num_merges must be an int >= 0; got {type(num_merges).__name__} {num_merges!r}")
    if num_merges < 0:
        raise ValueError(f"num_merges must be an int >= 0; got {num_merges}")


def _check_apply_args(word: Any, merges: Any) -> None:
    if not isinstance(word, str) or not word or any(c.isspace() for c in word):
        raise ValueError(f"word must be one non-empty word (a str without whitespace); got {word!r:.60}")
    if isinstance(merges, str) or not isinstance(merges, Sequence):
        raise TypeError(f"merges must be a list of pairs, as learn_bpe returns; got {type(merges).__name__}")
    for i, pair in enumerate(merges):
        _check_pair(pair, f"merges[{i}]")


# -- the algorithm -------------------------------------------------------------------------------------


@door(_check_texts)
def word_counts(texts: Iterable[str]) -> dict[Word, int]:
    """Split ``texts`` on whitespace; count each word as a tuple of its characters plus ``"</w>"``.

    Args:
        texts: sentences (any iterable of str).

    Returns:
        ``{word: count}``, words in the order they first occur.

    Example:
        >>> word_counts(["low low", "lower"])
        {('l', 'o', 'w', '</w>'): 2, ('l', 'o', 'w', 'e', 'r', '</w>'): 1}
    """
    counts: dict[Word, int] = {}
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must hold str; texts[{i}] is {type(text).__name__} {text!r:.40}")
        for word in text.split():
            symbols = (*word, END_OF_WORD)
            counts[symbols] = counts.get(symbols, 0) + 1
    return counts


@door(_check_vocab)
def count_pairs(vocab: Mapping[Word, int]) -> Counter[Pair]:
    """Count each pair of adjacent symbols, weighted by the count of the word it occurs in.

    Pairs never span two words. A pair that occurs twice in a word counts twice.

    Args:
        vocab: ``{word: count}``, each word a tuple of symbols.

    Returns:
        ``Counter({(left, right): count})``.

    Example:
        >>> count_pairs({('l', 'o', 'w', '</w>'): 5, ('a', 'a', 'a', '</w>'): 2})
        Counter({('l', 'o'): 5, ('o', 'w'): 5, ('w', '</w>'): 5, ('a', 'a'): 4, ('a', '</w>'): 2})
    """
    pairs: Counter[Pair] = Counter()
    for word, count in vocab.items():
        for left, right in itertools.pairwise(word):  # adjacent symbols of this word only
            pairs[left, right] += count
    return pairs


@door(_check_merge_args)
def merge_pair(vocab: Mapping[Word, int], pair: Pair) -> dict[Word, int]:
    """Merge every occurrence of ``pair`` into one symbol; return a new vocabulary (``vocab`` is unchanged).

    Occurrences are merged left to right without overlap: with ``pair = ('a', 'a')``, the word
    ``('a', 'a', 'a')`` becomes ``('aa', 'a')``. Symbols are compared whole: ``('xa', 'b')`` holds no
    ``('a', 'b')``.

    Args:
        vocab: ``{word: count}``, each word a tuple of symbols.
        pair: ``(left, right)``, two adjacent symbols.

    Returns:
        ``{merged word: count}``.

    Example:
        >>> merge_pair({('n', 'e', 'w', 'e', 's', 't', '</w>'): 6, ('a', 'a', 'a', '</w>'): 2}, ('a', 'a'))
        {('n', 'e', 'w', 'e', 's', 't', '</w>'): 6, ('aa', 'a', '</w>'): 2}
    """
    left, right = pair
    merged: dict[Word, int] = {}
    for word, count in vocab.items():
        symbols, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == left and word[i + 1] == right:
                symbols.append(left + right)
                i += 2  # skip past the pair: occurrences never overlap
            else:
                symbols.append(word[i])
                i += 1
        new_word = tuple(symbols)
        merged[new_word] = merged.get(new_word, 0) + count  # two words can become one
    return merged


@door(_check_learn_args)
def learn_bpe(texts: Iterable[str], num_merges: int) -> list[Pair]:
    """Learn ``num_merges`` merges from ``texts`` (Sennrich et al., 2016, Algorithm 1).

    Each step merges the most frequent pair; ties go to the lexicographically smallest pair, i.e. the
    pair that minimises ``(-count, pair)``. Stops early when no pair is left (every word is one symbol).

    Args:
        texts: the training sentences.
        num_merges: how many merges to learn, ``>= 0``.

    Returns:
        The merges ``[(left, right), ...]`` in the order they were learned (at most ``num_merges``).

    Example:
        >>> learn_bpe(["aaa aaa"], num_merges=10)  # merge 2 is a tie: ('a', '</w>') < ('aa', 'a')
        [('a', 'a'), ('a', '</w>'), ('aa', 'a</w>')]
    """
    vocab = word_counts(texts)
    merges: list[Pair] = []
    for _ in range(num_merges):
        pairs = count_pairs(vocab)
        if not pairs:
            break  # every word is a single symbol: nothing left to merge
        best = min(pairs, key=lambda p: (-pairs[p], p))  # highest count, then smallest pair
        vocab = merge_pair(vocab, best)
        merges.append(best)
    return merges


@door(_check_apply_args)
def apply_bpe(word: str, merges: Sequence[Pair]) -> list[str]:
    """Segment one word by replaying ``merges`` in the order they were learned.

    The word starts as its characters plus ``"</w>"``; each merge in turn joins all its (non-overlapping)
    occurrences. A character never seen in training simply stays a symbol of its own.

    Args:
        word: one word, without whitespace.
        merges: as returned by :func:`learn_bpe`.

    Returns:
        The subword symbols; the last one ends with ``"</w>"``.

    Example:
        >>> apply_bpe("newer", [('e', 'r'), ('er', '</w>'), ('n', 'e')])
        ['ne', 'w', 'er</w>']
    """
    symbols = (*word, END_OF_WORD)
    for pair in merges:
        (symbols,) = merge_pair({symbols: 1}, pair)  # the same merge as in training
    return list(symbols)
