"""Tests of notebook 04's checks: ``check_position_shift_matrix`` and ``check_learned_positional_encoding``.

The references pass with one success line; realistic wrong answers, one mistake each, get the diagnosis
that names that mistake (every catalogued diagnosis is reached by one); correct alternative formulations pass.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from checking import passes, raises
from torch import nn

from transformer_lib import checks
from transformer_lib.checks import positional as pe_checks
from transformer_lib.positional import LearnedPositionalEncoding, shift_matrix, sinusoidal_positional_encoding


# --------------------------------------------------------------------------- Exercise 4.2: shift_matrix
def loop_shift(*, block="rotation", freq="2i/d", use_k=True, at="2i"):
    """A student's shift_matrix written as a loop over the pairs, with one switchable mistake."""
    def shift_matrix(k, d_model):
        M = torch.zeros(d_model, d_model)
        for i in range(d_model // 2):
            w = {"2i/d": 1 / 10000 ** (2 * i / d_model), "i/d": 1 / 10000 ** (i / d_model),
                 "no /d": 1 / 10000 ** (2 * i), "multiply": 10000 ** (2 * i / d_model),
                 "i from 1": 1 / 10000 ** (2 * (i + 1) / d_model), "none": 1.0}[freq]
            c, s = math.cos(k * w if use_k else w), math.sin(k * w if use_k else w)
            B = {"rotation": [[c, -s], [s, c]],
                 "textbook for column vectors": [[c, s], [-s, c]],
                 "sin on the diagonal": [[s, -c], [c, s]],
                 "reflection (sign typo)": [[c, -s], [s, -c]]}[block]
            j = 2 * i if at == "2i" else i
            M[j:j + 2, j:j + 2] = torch.tensor(B)
        return M
    return shift_matrix


def vectorised_shift(k, d_model, two_i_twice=False, dtype=torch.float32):
    """A student's vectorised shift_matrix; ``two_i_twice`` multiplies arange(0, d, 2) by 2 again."""
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model / 2,)
    w = 1.0 / 10000 ** ((2 * two_i if two_i_twice else two_i) / d_model)
    c, s = torch.cos(k * w), torch.sin(k * w)
    M = torch.zeros(d_model, d_model, dtype=torch.float64)
    idx = torch.arange(0, d_model, 2)
    M[idx, idx], M[idx, idx + 1], M[idx + 1, idx], M[idx + 1, idx + 1] = c, -s, s, c
    return M.to(dtype)


def block_diag_shift(k, d_model):
    blocks = []
    for i in range(d_model // 2):
        angle = torch.tensor(k / 10000 ** (2 * i / d_model))
        blocks.append(torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])]))
    return torch.block_diag(*blocks)


@pytest.mark.parametrize("fn", [shift_matrix, loop_shift(), vectorised_shift, block_diag_shift,
                                lambda k, d: vectorised_shift(k, d, dtype=torch.float64)],
                         ids=["library", "loop", "vectorised", "block_diag", "float64"])
def test_shift_matrix_alternatives_pass(fn, capsys):
    assert passes(checks.check_position_shift_matrix, fn, capsys) == ["shift_matrix: all 5 cases pass"]


# Every catalogued diagnosis, reached by the mistake a student would write.
SHIFT_STUDENTS = [
    (loop_shift(block="textbook for column vectors"), 0),
    (loop_shift(block="sin on the diagonal"), 1),
    (loop_shift(freq="i/d"), 2),
    (lambda k, d: vectorised_shift(k, d, two_i_twice=True), 3),
    (loop_shift(freq="no /d"), 4),
    (loop_shift(freq="multiply"), 5),
    (loop_shift(freq="i from 1"), 6),
    (loop_shift(freq="none"), 7),
    (loop_shift(use_k=False), 8),
    (loop_shift(at="i"), 9),
]


@pytest.mark.parametrize(("fn", "index"), SHIFT_STUDENTS, ids=[str(i) for _, i in SHIFT_STUDENTS])
def test_each_shift_matrix_diagnosis_is_reached(fn, index):
    message = pe_checks.SHIFT_MISTAKES[index][0]
    with pytest.raises(AssertionError) as info:
        checks.check_position_shift_matrix(fn)
    assert message in str(info.value), str(info.value)


def test_every_shift_matrix_diagnosis_has_a_student():
    assert sorted(i for _, i in SHIFT_STUDENTS) == list(range(len(pe_checks.SHIFT_MISTAKES)))


@pytest.mark.parametrize(("message", "kwargs"), pe_checks.SHIFT_MISTAKES)
def test_every_shift_matrix_variant_is_named(message, kwargs):
    with pytest.raises(AssertionError) as info:
        checks.check_position_shift_matrix(lambda k, d: pe_checks.shift_variant(k, d, **kwargs))
    assert message in str(info.value)


def pinv_shift(k, d_model):  # solves for M from only 3 positions: a full matrix, not block-diagonal
    pe = sinusoidal_positional_encoding(3 + abs(k), d_model)
    a, b = (pe[:3], pe[k:k + 3]) if k >= 0 else (pe[-k:], pe[:3])
    return torch.linalg.pinv(a) @ b


@pytest.mark.parametrize(("fn", "match"), [
    (loop_shift(block="reflection (sign typo)"), r"case 'k=1, d_model=4'.*each 2x2 block must turn \(sin, cos\)"),
    (pinv_shift, r"M_k must be block-diagonal"),
    (lambda k, d: torch.stack([loop_shift()(k, d)[2 * i:2 * i + 2, 2 * i:2 * i + 2] for i in range(d // 2)]),
     r"shape \(2, 2, 2\) but should have shape \(4, 4\): you returned the blocks: .*torch.block_diag"),
    (lambda k, d: loop_shift()(k, d)[:2, :2], r"shape \(2, 2\) but should have shape \(4, 4\): one 2x2 block per pair"),
    (lambda k, d: loop_shift()(k, d).numpy(), r"M_k must be a torch.Tensor; got ndarray"),
    (lambda k, d: loop_shift()(k, d)[None], r"shape \(1, 4, 4\) but should have shape \(4, 4\)"),
    (lambda k, d: loop_shift()(k, d) @ torch.eye(3), r"case 'k=1, d_model=4'.*RuntimeError.*cannot be multiplied"),
])
def test_shift_matrix_other_mistakes(fn, match):
    with raises(match):
        checks.check_position_shift_matrix(fn)


def test_shift_matrix_not_done():
    def shift_matrix(k, d_model):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `shift_matrix`"):
        checks.check_position_shift_matrix(shift_matrix)


# ------------------------------------------------------------- Exercise 4.3 (stretch): learned positions
def learned(**mistakes):
    """A student's LearnedPositionalEncoding with one switchable mistake (none: right)."""
    m = mistakes

    class LearnedPositionalEncoding(nn.Module):
        def __init__(self, d_model, max_len, dropout=0.0):
            super().__init__()
            if m.get("parameter"):
                self.embedding = nn.Parameter(torch.randn(max_len, d_model))
            else:
                self.embedding = nn.Embedding(max_len, d_model)
            self.dropout = nn.Dropout(0.1 if m.get("fixed_p") else dropout)
            self.p, self.d_model = dropout, d_model

        def forward(self, x):
            T = x.shape[0] if m.get("seq_first") else x.shape[1]
            positions = torch.arange(1, T + 1) if m.get("one_based") else torch.arange(T, device=x.device)
            if m.get("whole_table"):
                rows = self.embedding.weight  # (max_len, d_model)
            elif m.get("data"):
                rows = self.embedding.weight.data[:T]  # (T, d_model), cut off from the graph
            elif m.get("embed_x"):
                rows = self.embedding(x)
            else:
                rows = self.embedding(positions)  # (T, d_model)
            if m.get("seq_first"):
                rows = rows[:, None, :]  # (T, 1, d_model) for a (T, B, d_model) input
            if m.get("scale"):
                x = x * math.sqrt(self.d_model)
            if m.get("no_add"):
                return rows
            if m.get("dropout_x"):
                return self.dropout(x) + rows
            if m.get("dropout_rows"):
                return x + self.dropout(rows)
            if m.get("functional"):
                return F.dropout(x + rows, self.p)  # training=True by default, even in eval mode
            if m.get("no_dropout"):
                return x + rows
            return self.dropout(x + rows)

    return LearnedPositionalEncoding


class ByWeightRows(nn.Module):  # the rows sliced off the table, a functional dropout that knows the mode
    def __init__(self, d_model, max_len, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(max_len, d_model)
        self.p = dropout

    def forward(self, x):
        return F.dropout(x + self.embedding.weight[: x.shape[1]], self.p, self.training)


class WithBuffer(nn.Module):  # positions as a buffer, added with an explicit batch dim
    def __init__(self, d_model, max_len, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(max_len, d_model)
        self.register_buffer("positions", torch.arange(max_len), persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(x + self.embedding(self.positions[: x.size(1)]).unsqueeze(0).expand_as(x))


@pytest.mark.parametrize("cls", [LearnedPositionalEncoding, learned(), ByWeightRows, WithBuffer],
                         ids=["library", "student", "weight rows", "buffer"])
def test_learned_alternatives_pass(cls, capsys):
    assert passes(checks.check_learned_positional_encoding, cls, capsys) == [
        "LearnedPositionalEncoding: copied the reference weights into your module by name (embedding)",
        "LearnedPositionalEncoding: all 6 cases pass"]


LEARNED_STUDENTS = [  # (mistakes, index into LEARNED_MISTAKES)
    (dict(one_based=True), 0),
    (dict(seq_first=True), 1),
    (dict(scale=True), 2),
]


@pytest.mark.parametrize(("mistakes", "index"), LEARNED_STUDENTS, ids=lambda v: str(v))
def test_each_learned_diagnosis_is_reached(mistakes, index):
    with pytest.raises(AssertionError) as info:
        checks.check_learned_positional_encoding(learned(**mistakes))
    assert pe_checks.LEARNED_MISTAKES[index][0] in str(info.value), str(info.value)


def test_every_learned_diagnosis_has_a_student():
    assert sorted(i for _, i in LEARNED_STUDENTS) == list(range(len(pe_checks.LEARNED_MISTAKES)))


@pytest.mark.parametrize(("mistakes", "match"), [
    (dict(whole_table=True), r"case 'T < max_len.*RuntimeError.*note: x is \(B, T, d_model\), batch first: add rows "
                             r"0 \.\. T-1 of the table, T = x.shape\[1\] \(here T = 5, max_len = 12\)"),
    (dict(embed_x=True), r"RuntimeError.*note: nn.Embedding takes integer positions, torch.arange\(T\), not x"),
    (dict(parameter=True), r"`embedding` must be an nn.Embedding\(max_len, d_model\), whose table is embedding.weight"),
    (dict(no_add=True), r"shape \(5, 8\) but should have shape \(2, 5, 8\): return x plus the positions"),
    (dict(functional=True), r"case 'dropout=0.25 in eval mode.*dropout is applied in eval mode too: F.dropout\(x, p\) "
                            r"needs training=self.training"),
    (dict(no_dropout=True), r"case 'dropout=0.25 in training mode'.*no dropout in training mode: nn.Dropout"),
    (dict(dropout_x=True), r"dropout is applied to x before the positions are added"),
    (dict(dropout_rows=True), r"dropout is applied to the positions only"),
    (dict(fixed_p=True), r"your dropout scales the kept entries by 1.111, so its p is 0.1: use the `dropout` argument "
                         r"\(p = 0.25 here\)"),
    (dict(data=True), r"case 'the table learns.*no gradient reaches embedding.weight: .*\.data, \.detach\(\)"),
])
def test_learned_mistakes_are_diagnosed(mistakes, match):
    with raises(match):
        checks.check_learned_positional_encoding(learned(**mistakes))


def test_learned_other_mistakes():
    class Misnamed(nn.Module):
        def __init__(self, d_model, max_len, dropout=0.0):
            super().__init__()
            self.pos_embedding = nn.Embedding(max_len, d_model)

        def forward(self, x):
            return x + self.pos_embedding(torch.arange(x.shape[1]))

    with raises(r"by attribute name.*expected: embedding\n  yours:    pos_embedding"):
        checks.check_learned_positional_encoding(Misnamed)

    class OneExtraRow(learned()):  # a spare row for padding: the table has the wrong size
        def __init__(self, d_model, max_len, dropout=0.0):
            super().__init__(d_model, max_len, dropout)
            self.embedding = nn.Embedding(max_len + 1, d_model)

    with raises(r"wrong size \(embedding.weight: expected \(12, 8\), yours \(13, 8\)\)"):
        checks.check_learned_positional_encoding(OneExtraRow)
    with raises(r"pass the class itself, not an instance"):
        checks.check_learned_positional_encoding(learned()(8, 12))

    class NotDone(nn.Module):
        def __init__(self, d_model, max_len, dropout=0.0):
            super().__init__()
            raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `NotDone`"):
        checks.check_learned_positional_encoding(NotDone)


def test_checks_leave_rng_and_threads_as_they_were(capsys):
    torch.manual_seed(123)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    checks.check_position_shift_matrix(shift_matrix)
    checks.check_learned_positional_encoding(LearnedPositionalEncoding)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    first = capsys.readouterr().out
    checks.check_position_shift_matrix(shift_matrix)
    checks.check_learned_positional_encoding(LearnedPositionalEncoding)
    assert capsys.readouterr().out == first
