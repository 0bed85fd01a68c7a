"""Tests of transformer_lib.bpe: byte-pair encoding by hand (Sennrich et al., 2016)."""

from collections import Counter

import pytest

from transformer_lib.bpe import END_OF_WORD, apply_bpe, count_pairs, learn_bpe, merge_pair, word_counts

PAPER = ["low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3]  # Sec. 3.2 of the paper
EOW = END_OF_WORD


def test_word_counts_splits_on_whitespace_and_adds_the_end_of_word_marker():
    assert word_counts(["the cat\tsat", "  the\n"]) == {
        ("t", "h", "e", EOW): 2, ("c", "a", "t", EOW): 1, ("s", "a", "t", EOW): 1}
    assert word_counts([]) == {} and word_counts(["   "]) == {}
    assert word_counts(t for t in ["où l'été"]) == {("o", "ù", EOW): 1, ("l", "'", "é", "t", "é", EOW): 1}


def test_count_pairs_weights_by_word_count_and_stays_inside_words():
    vocab = {("a", "a", "a", EOW): 2, ("b", "a", EOW): 3, ("c" + EOW,): 7}
    pairs = count_pairs(vocab)
    assert isinstance(pairs, Counter)
    assert pairs == Counter({("a", "a"): 4, ("a", EOW): 5, ("b", "a"): 3})  # no (EOW, 'b'): words never touch
    assert count_pairs({}) == Counter()


def test_merge_pair_left_to_right_without_overlap_and_whole_symbols():
    vocab = {("a", "a", "a", EOW): 2, ("a", "a", "a", "a", EOW): 1, ("x", "a", "b", "a", "b", EOW): 1,
             ("xa", "b", EOW): 4}
    before = dict(vocab)
    assert merge_pair(vocab, ("a", "a")) == {("aa", "a", EOW): 2, ("aa", "aa", EOW): 1,
                                            ("x", "a", "b", "a", "b", EOW): 1, ("xa", "b", EOW): 4}
    assert merge_pair(vocab, ("a", "b")) == {("a", "a", "a", EOW): 2, ("a", "a", "a", "a", EOW): 1,
                                            ("x", "ab", "ab", EOW): 1, ("xa", "b", EOW): 4}  # 'xa' is not 'a'
    assert vocab == before  # the input is never changed
    assert merge_pair({("a", "b", EOW): 1, ("ab", EOW): 2}, ("a", "b")) == {("ab", EOW): 3}  # two words become one


def test_learn_bpe_on_the_papers_example():
    merges = learn_bpe(PAPER, 10)
    assert merges[:4] == [("e", "s"), ("es", "t"), ("est", EOW), ("l", "o")]
    assert len(merges) == 10 and learn_bpe(PAPER, 10) == merges  # deterministic
    assert learn_bpe(PAPER, 3) == merges[:3]  # fewer merges: a prefix


def test_learn_bpe_breaks_ties_by_count_then_smallest_pair():
    # every pair occurs once: the smallest pair wins, whatever the order the pairs were seen in
    assert learn_bpe(["zy ab"], 3) == [("a", "b"), ("ab", EOW), ("y", EOW)]
    assert learn_bpe(["ab zy"], 3) == learn_bpe(["zy ab"], 3)
    assert learn_bpe(["aaa aaa"], 10) == [("a", "a"), ("a", EOW), ("aa", "a" + EOW)]


def test_learn_bpe_stops_early_and_accepts_zero():
    assert learn_bpe(["ab ab", "b"], 10) == [("b", EOW), ("a", "b" + EOW)]  # then every word is one symbol
    assert learn_bpe(PAPER, 0) == [] and learn_bpe([], 5) == []


def test_apply_bpe_replays_the_merges_in_order():
    merges = learn_bpe(PAPER, 10)
    assert apply_bpe("lowest", merges[:4]) == ["lo", "w", "est" + EOW]
    assert apply_bpe("zzz", merges) == ["z", "z", "z", EOW]  # unseen characters stay symbols of their own
    assert apply_bpe("newest", []) == [*"newest", EOW]
    # a training word is split exactly as training left it
    vocab = word_counts(PAPER)
    for pair in merges:
        vocab = merge_pair(vocab, pair)
    for word in ("low", "lower", "newest", "widest"):
        assert tuple(apply_bpe(word, merges)) in vocab


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: word_counts("low lower"), TypeError, "texts must be an iterable of str.*not one str"),
    (lambda: word_counts([1, 2]), TypeError, r"texts\[0\] is int"),
    (lambda: count_pairs([("a", "b")]), TypeError, "vocab must be a dict mapping words"),
    (lambda: count_pairs({"ab": 1}), TypeError, "got the key 'ab'"),
    (lambda: count_pairs({("a", "b"): 1.5}), TypeError, "got the count 1.5"),
    (lambda: merge_pair({("a", "b"): 1}, "ab"), TypeError, "pair must be a tuple of two str"),
    (lambda: merge_pair({("a", "b"): 1}, ("a", "b", "c")), TypeError, "pair must be a tuple of two str"),
    (lambda: learn_bpe(PAPER, -1), ValueError, "num_merges must be an int >= 0; got -1"),
    (lambda: learn_bpe(PAPER, 2.0), TypeError, "num_merges must be an int >= 0"),
    (lambda: learn_bpe("low lower", 2), TypeError, "not one str"),
    (lambda: apply_bpe("two words", []), ValueError, "word must be one non-empty word"),
    (lambda: apply_bpe("", []), ValueError, "word must be one non-empty word"),
    (lambda: apply_bpe("low", [("l", "o", "w")]), TypeError, r"merges\[0\] must be a tuple of two str"),
    (lambda: apply_bpe("low", "lo"), TypeError, "merges must be a list of pairs"),
])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
