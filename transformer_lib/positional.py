"""Positional encodings, Sec. 3.5.

Attention alone is permutation-equivariant: it does not know the order of the tokens. The paper adds
a fixed sinusoidal encoding to the (scaled) token embeddings:

    PE[pos, 2i]     = sin(pos / 10000^(2i / d_model))
    PE[pos, 2i + 1] = cos(pos / 10000^(2i / d_model))

Each pair of dims (2i, 2i+1) is a point on a circle that turns by the angle
omega_i = 1 / 10000^(2i/d_model) per position, so PE[pos + k] is a linear function of PE[pos]:
``PE[pos + k] = PE[pos] @ shift_matrix(k, d_model)`` for every pos, with a block-diagonal matrix of
2 x 2 rotations. An odd ``d_model`` would leave one unpaired dim, so it is **rejected** with a
``ValueError`` (the paper and every config in this course use an even ``d_model``).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ._validation import _shape, check_device, check_positive_int, check_probability, check_tensor, door

__all__ = ["sinusoidal_positional_encoding", "shift_matrix", "PositionalEncoding", "LearnedPositionalEncoding"]


def _check_table_args(max_len: int, d_model: int) -> None:
    check_positive_int(max_len, "max_len")
    check_positive_int(d_model, "d_model")
    if d_model % 2:
        raise ValueError(
            f"d_model must be even for the sinusoidal encoding (dims come in sin/cos pairs 2i, 2i+1); got {d_model}"
        )


@door(_check_table_args)
def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """The fixed sinusoidal positional encoding table of Sec. 3.5.

    Args:
        max_len: number of positions ``0 .. max_len - 1``.
        d_model: model width; must be even (odd values raise ``ValueError``).

    Shape:
        - output: ``(max_len, d_model)``, float32.

    Returns:
        ``pe`` with ``pe[pos, 2i] = sin(pos / 10000^(2i/d_model))`` and ``pe[pos, 2i+1] = cos(...)``.

    Example:
        >>> pe = sinusoidal_positional_encoding(50, 16)
        >>> pe.shape, pe[0, :4].tolist()
        (torch.Size([50, 16]), [0.0, 1.0, 0.0, 1.0])
    """
    # float64 for the table itself, then float32: the values are then exact to float32 precision.
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model / 2,)
    freq = torch.exp(-math.log(10000.0) * two_i / d_model)  # (d_model / 2,)  1 / 10000^(2i/d_model)
    angle = pos * freq  # (max_len, d_model / 2)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)  # (max_len, d_model)
    pe[:, 0::2] = torch.sin(angle)  # Sec. 3.5: even dims sin
    pe[:, 1::2] = torch.cos(angle)  # Sec. 3.5: odd dims cos
    return pe.float()


def _check_shift_args(k: int, d_model: int) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an int, a shift in positions (negative: back); got {type(k).__name__} {k!r}")
    _check_table_args(1, d_model)


@door(_check_shift_args)
def shift_matrix(k: int, d_model: int) -> torch.Tensor:
    """The matrix ``M_k`` that shifts the sinusoidal encoding by ``k`` positions (Sec. 3.5).

    ``PE[pos + k] = PE[pos] @ M_k`` for every ``pos`` (rows are positions, as in
    :func:`sinusoidal_positional_encoding`): the "linear function" of the paper. ``M_k`` is
    block-diagonal; its block for the pair of dims (2i, 2i+1) rotates ``(sin, cos)`` of the angle
    ``pos * omega_i`` on to the angle ``(pos + k) * omega_i``, with ``omega_i = 1 / 10000^(2i/d_model)``.
    It does not depend on ``pos``; ``M_0`` is the identity, ``M_a @ M_b = M_(a+b)``, ``M_-k = M_k^T``.

    Args:
        k: the shift in positions, any sign (negative: back).
        d_model: model width; must be even (odd values raise ``ValueError``).

    Shape:
        - output: ``(d_model, d_model)``, float32.

    Returns:
        ``M_k`` with the 2 x 2 block ``[[cos(k omega_i), -sin(k omega_i)], [sin(k omega_i), cos(k omega_i)]]``
        at rows and columns ``2i, 2i+1``, zeros elsewhere.

    Example:
        >>> pe, M = sinusoidal_positional_encoding(50, 16), shift_matrix(3, 16)
        >>> torch.allclose(pe[:-3] @ M, pe[3:], atol=1e-6)
        True
    """
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model / 2,)
    freq = torch.exp(-math.log(10000.0) * two_i / d_model)  # (d_model / 2,)  omega_i = 1 / 10000^(2i/d_model)
    cos, sin = torch.cos(k * freq), torch.sin(k * freq)  # (d_model / 2,) each  the angle k * omega_i
    # [sin a, cos a] @ [[cos b, -sin b], [sin b, cos b]] = [sin(a + b), cos(a + b)]: the angle-addition formulas
    rows = torch.stack([cos, -sin], dim=-1), torch.stack([sin, cos], dim=-1)  # (d_model / 2, 2) each
    blocks = torch.stack(rows, dim=-2)  # (d_model / 2, 2, 2)  one rotation per pair of dims
    return torch.block_diag(*blocks).float()  # (d_model, d_model)


def _check_input(module: nn.Module, x: torch.Tensor) -> None:
    d_model, max_len = module.d_model, module.max_len
    check_tensor(x, "x", "(B, T, d_model)", ndim=3, kind="float")
    if x.shape[-1] != d_model or x.shape[1] > max_len:
        raise ValueError(
            f"x must have shape (B, T, d_model) with d_model = {d_model} and T <= max_len = {max_len}; "
            f"got shape {_shape(x.shape)}"
        )
    table = module.pe if isinstance(module, PositionalEncoding) else module.embedding.weight
    check_device(table.device, f"{type(module).__name__}'s table", x=x)


class PositionalEncoding(nn.Module):
    """Add the fixed sinusoidal encoding to the input, then dropout (Sec. 3.5, Sec. 5.4).

    The table is a non-persistent buffer: it moves with ``.to(device)`` and is not saved in the
    ``state_dict`` (it is recomputed from ``d_model`` and ``max_len``).

    Args:
        d_model: model width (even).
        max_len: longest sequence accepted. The paper fixes none; sinusoids extend to any length.
        dropout: dropout on the sum (the paper uses 0.1 for the base model).

    Shape:
        - x: ``(B, T, d_model)`` with ``T <= max_len``
        - output: ``(B, T, d_model)``

    Example:
        >>> pe = PositionalEncoding(d_model=16, max_len=50)
        >>> pe(torch.zeros(2, 10, 16)).shape
        torch.Size([2, 10, 16])
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(check_probability(dropout, "dropout"))

    @door(_check_input)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pe[: x.shape[1]].to(x.dtype)  # (B, T, d_model) + (T, d_model)
        return self.dropout(x)


class LearnedPositionalEncoding(nn.Module):
    """Add a learned position embedding, then dropout (the alternative of Sec. 3.5 / Table 3 row E).

    Args:
        d_model: model width.
        max_len: number of learned positions; longer inputs are rejected (no extrapolation).
        dropout: dropout on the sum.

    Shape:
        - x: ``(B, T, d_model)`` with ``T <= max_len``
        - output: ``(B, T, d_model)``

    Example:
        >>> pe = LearnedPositionalEncoding(d_model=16, max_len=50)
        >>> pe(torch.zeros(2, 10, 16)).shape
        torch.Size([2, 10, 16])
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_model, self.max_len = check_positive_int(d_model, "d_model"), check_positive_int(max_len, "max_len")
        self.embedding = nn.Embedding(max_len, d_model)  # (max_len, d_model) one row per position
        self.dropout = nn.Dropout(check_probability(dropout, "dropout"))

    @door(_check_input)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device)  # (T,)
        x = x + self.embedding(positions)  # (B, T, d_model) + (T, d_model)
        return self.dropout(x)
