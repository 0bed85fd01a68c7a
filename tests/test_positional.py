"""Tests of transformer_lib.positional: the Sec. 3.5 formula, hand values, odd d_model, the modules."""

import math

import pytest
import torch
from torch.testing import assert_close

from transformer_lib.positional import (
    LearnedPositionalEncoding,
    PositionalEncoding,
    shift_matrix,
    sinusoidal_positional_encoding,
)


def test_shape_dtype_and_range():
    pe = sinusoidal_positional_encoding(50, 16)
    assert pe.shape == (50, 16) and pe.dtype == torch.float32
    assert pe.abs().max() <= 1.0


def test_formula_element_by_element():
    max_len, d_model = 20, 10
    pe = sinusoidal_positional_encoding(max_len, d_model)
    for pos in range(max_len):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)  # [pos, 2i] = sin
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)  # [pos, 2i+1] = cos


def test_hand_values():
    pe = sinusoidal_positional_encoding(3, 4)
    # d_model = 4: frequencies 1 and 1/100
    expected = torch.tensor([
        [0.0, 1.0, 0.0, 1.0],
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
    ])
    assert_close(pe, expected)
    assert pe[1, 0].item() == pytest.approx(0.841471, abs=1e-6)
    assert pe[1, 1].item() == pytest.approx(0.540302, abs=1e-6)


def test_relative_position_is_a_linear_function():
    """Sec. 3.5: PE[pos + k] = M_k PE[pos], M_k a rotation per (sin, cos) pair, the same for every pos."""
    d_model, k = 8, 3
    pe = sinusoidal_positional_encoding(30, d_model).double()
    M = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i in range(d_model // 2):
        w = k / 10000 ** (2 * i / d_model)
        c, s = math.cos(w), math.sin(w)
        M[2 * i: 2 * i + 2, 2 * i: 2 * i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    assert_close(pe[:-k] @ M, pe[k:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [-7, -1, 0, 1, 3, 40])
def test_shift_matrix_shifts_the_table(k):
    """PE[pos + k] = PE[pos] @ shift_matrix(k): one matrix for every pos, the test above's M_k."""
    d_model, n = 16, 60
    pe = sinusoidal_positional_encoding(n + abs(k), d_model).double()
    M = shift_matrix(k, d_model)
    assert M.shape == (d_model, d_model) and M.dtype == torch.float32
    before, after = (pe[:n], pe[k:k + n]) if k >= 0 else (pe[-k:-k + n], pe[:n])
    assert_close(before @ M.double(), after, atol=1e-6, rtol=0)


def test_shift_matrix_hand_values_and_blocks():
    # d_model = 4: frequencies 1 and 1/100; block [[cos, -sin], [sin, cos]] of the angle k * w_i
    c1, s1, c2, s2 = math.cos(2), math.sin(2), math.cos(0.02), math.sin(0.02)
    expected = torch.tensor([[c1, -s1, 0, 0], [s1, c1, 0, 0], [0, 0, c2, -s2], [0, 0, s2, c2]])
    assert_close(shift_matrix(2, 4), expected)


def test_shift_matrix_is_a_group_of_rotations():
    d_model = 12
    M = {k: shift_matrix(k, d_model).double() for k in (-5, 0, 2, 3, 5)}
    assert_close(M[0], torch.eye(d_model, dtype=torch.float64))
    assert_close(M[2] @ M[3], M[5])  # shifting by 2 then by 3 is shifting by 5
    assert_close(M[-5], M[5].T)  # back is the transpose: an orthogonal matrix
    assert_close(M[5] @ M[5].T, torch.eye(d_model, dtype=torch.float64))


@pytest.mark.parametrize("args, error, match", [
    ((1.0, 8), TypeError, "k must be an int"), ((True, 8), TypeError, "k must be an int"),
    ((1, 7), ValueError, "d_model must be even"), ((1, 0), ValueError, "d_model"),
])
def test_shift_matrix_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        shift_matrix(*args)


def test_odd_d_model_is_rejected_clearly():
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_positional_encoding(10, 7)


@pytest.mark.parametrize("args, name", [((0, 8), "max_len"), ((10, 0), "d_model"), ((10.0, 8), "max_len")])
def test_bad_arguments(args, name):
    with pytest.raises((ValueError, TypeError), match=name):
        sinusoidal_positional_encoding(*args)


def test_positional_encoding_module_adds_the_table():
    module = PositionalEncoding(d_model=16, max_len=40)
    x = torch.randn(2, 10, 16)
    assert_close(module(x), x + sinusoidal_positional_encoding(40, 16)[:10])
    assert "pe" not in module.state_dict()  # recomputed, not saved
    assert module.pe.shape == (40, 16)


def test_positional_encoding_dropout_only_in_training():
    module = PositionalEncoding(d_model=16, max_len=40, dropout=0.5)
    x = torch.randn(2, 10, 16)
    assert (module(x) == 0).any()
    module.eval()
    assert_close(module(x), x + module.pe[:10])


def test_positional_encoding_errors():
    module = PositionalEncoding(d_model=16, max_len=8)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model\).*T <= max_len = 8"):
        module(torch.randn(1, 9, 16))
    with pytest.raises(ValueError, match=r"d_model = 16"):
        module(torch.randn(1, 4, 12))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model\)"):
        module(torch.randn(4, 16))


def test_learned_positional_encoding():
    module = LearnedPositionalEncoding(d_model=16, max_len=12)
    x = torch.randn(2, 10, 16)
    out = module(x)
    assert out.shape == (2, 10, 16)
    assert_close(out, x + module.embedding.weight[:10])
    out.sum().backward()
    assert module.embedding.weight.grad[:10].abs().sum() > 0
    assert (module.embedding.weight.grad[10:] == 0).all()
    with pytest.raises(ValueError, match="max_len = 12"):
        module(torch.randn(1, 13, 16))
