"""Small helpers shared by the whole library: input validation, ``show_source``, ``set_seed``.

The validation helpers live here (and not in ``masks.py``) because ``attention.py`` needs them
and no module may import a later one. ``masks.validate_mask`` is the same function, re-exported.
Every public function of the library validates its inputs with these few helpers, so the error
messages look the same everywhere: they name the argument, the expected shape and what was received.
"""

from __future__ import annotations

import inspect
import numbers
import random
from typing import Any, Sequence

import torch

__all__ = [
    "show_source",
    "set_seed",
    "check_tensor",
    "check_dim",
    "check_positive_int",
    "check_probability",
    "check_token_ids",
    "validate_mask",
]

_KIND_TEST = {
    "float": lambda t: t.is_floating_point(),
    "bool": lambda t: t.dtype == torch.bool,
    "long": lambda t: t.dtype == torch.long,
    "int": lambda t: not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool,
}
_KIND_NAME = {
    "float": "a floating-point tensor",
    "bool": "a bool tensor",
    "long": "a torch.long tensor",
    "int": "an integer tensor",
}


def _shape(t: torch.Tensor | Sequence[int]) -> str:
    """Format a shape as ``(2, 3)`` rather than ``torch.Size([2, 3])``."""
    dims = tuple(int(s) for s in t)
    return "(" + ", ".join(str(s) for s in dims) + ("," if len(dims) == 1 else "") + ")"


def check_tensor(
    x: Any,
    name: str,
    shape_desc: str,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    kind: str | None = None,
) -> torch.Tensor:
    """Check that ``x`` is a tensor with the right number of dims and dtype kind.

    Args:
        x: the value to check.
        name: the argument's name, used in the message (``"q"``, ``"src"``).
        shape_desc: the expected shape in words, e.g. ``"(B, T, d_model)"``.
        ndim: exact number of dims required, or ``None``.
        min_ndim: minimum number of dims, or ``None``.
        kind: ``"float"``, ``"bool"``, ``"long"``, ``"int"`` or ``None`` (any dtype).

    Returns:
        ``x`` unchanged.

    Raises:
        TypeError: not a tensor, or wrong dtype kind.
        ValueError: wrong number of dims.

    Example:
        >>> check_tensor(torch.zeros(2, 3), "x", "(B, T)", ndim=2, kind="float").shape
        torch.Size([2, 3])
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape_desc}; got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_desc} ({ndim} dims); got shape {_shape(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have shape {shape_desc} (at least {min_ndim} dims); got shape {_shape(x.shape)}"
        )
    if kind is not None and not _KIND_TEST[kind](x):
        raise TypeError(f"{name} must be {_KIND_NAME[kind]} of shape {shape_desc}; got dtype {x.dtype}")
    return x


def check_dim(x: torch.Tensor, name: str, shape_desc: str, dim: int, size: int, what: str) -> None:
    """Check ``x.shape[dim] == size``; the message says which symbol (``what``) was wrong.

    Example:
        >>> check_dim(torch.zeros(2, 8), "x", "(B, d_model)", -1, 8, "d_model")
    """
    if x.shape[dim] != size:
        raise ValueError(
            f"{name} must have shape {shape_desc} with {what} = {size}; got shape {_shape(x.shape)}"
        )


def check_positive_int(value: Any, name: str) -> int:
    """Check that ``value`` is an integer (``int``, NumPy integer; not a bool) and ``>= 1``.

    Example:
        >>> check_positive_int(4, "n_heads")
        4
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int; got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int; got {value}")
    return int(value)


def check_probability(value: Any, name: str) -> float:
    """Check ``0 <= value < 1`` (a dropout probability).

    Example:
        >>> check_probability(0.1, "dropout")
        0.1
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1); got {type(value).__name__} {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1); got {value}")
    return float(value)


def check_token_ids(tokens: Any, name: str, shape_desc: str, vocab_size: int) -> torch.Tensor:
    """Check a ``(B, T)`` tensor of token ids: dtype ``torch.long`` and every id in ``[0, vocab_size)``.

    Example:
        >>> check_token_ids(torch.tensor([[1, 2, 0]]), "src", "(B, S)", vocab_size=5).shape
        torch.Size([1, 3])
    """
    check_tensor(tokens, name, shape_desc, ndim=2)
    if tokens.dtype != torch.long:
        raise TypeError(
            f"{name} must be a torch.long tensor of token ids with shape {shape_desc}; "
            f"got dtype {tokens.dtype} (use {name}.long())"
        )
    if tokens.numel() > 0:
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(
                f"{name} contains token ids outside [0, {vocab_size}) (vocab_size = {vocab_size}); "
                f"got min {lo}, max {hi}"
            )
    return tokens


def validate_mask(
    mask: Any,
    shape: Sequence[int],
    *,
    name: str = "mask",
    dims: str = "(B, H, T_q, T_k)",
) -> torch.Tensor | None:
    """Check an attention mask against the library's one convention.

    The convention: a **bool** tensor, ``True`` = this query may attend to this key,
    broadcastable to the attention scores' shape ``(B, H, T_q, T_k)`` (or ``(..., T_q, T_k)``).

    Args:
        mask: the mask to check, or ``None`` (no masking; returned as is).
        shape: the shape of the scores the mask will be applied to, e.g. ``(2, 4, 5, 7)``.
        name: the argument's name in the message.
        dims: the symbolic shape in the message.

    Returns:
        ``mask`` unchanged (or ``None``).

    Raises:
        TypeError: mask is not a bool tensor (e.g. an additive 0/-inf float mask).
        ValueError: mask is not broadcastable to ``shape``.

    Example:
        >>> validate_mask(torch.ones(5, 7, dtype=torch.bool), (2, 4, 5, 7)).shape
        torch.Size([5, 7])
    """
    if mask is None:
        return None
    expect = f"a bool tensor (True = may attend) broadcastable to {dims} = {_shape(shape)}"
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be {expect}; got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point():
            hint = f" If you built an additive 0/-inf mask, use `{name} = additive_mask == 0`."
            if mask.numel() and bool((mask >= 0).all()):  # no -inf: maybe a 0/1 mask
                hint += f" If it is a 0/1 mask (1 = may attend), use `{name}.bool()`."
        else:
            hint = f" If you built a 0/1 mask, use `{name}.bool()`."
        raise TypeError(f"{name} must be {expect}; got dtype {mask.dtype}.{hint}")
    ok = mask.ndim <= len(shape) and all(
        m in (1, s) for m, s in zip(reversed(mask.shape), reversed(tuple(shape)))
    )
    if not ok:
        raise ValueError(f"{name} must be {expect}; got shape {_shape(mask.shape)}")
    return mask


def show_source(obj: Any):
    """Show the source code of a function, class, method or module.

    In Jupyter it renders with syntax highlighting: the returned ``IPython.display.Code`` displays
    itself when it is the last expression of a cell. Without IPython the source is printed and
    returned as a ``str``. An ``nn.Module`` instance shows its class.

    Args:
        obj: a function, class, method, module, or an instance (its class is shown).

    Returns:
        ``IPython.display.Code`` (its ``.data`` is the source text) or, without IPython, ``str``.

    Example:
        >>> from transformer_lib.attention import scaled_dot_product_attention
        >>> code = show_source(scaled_dot_product_attention)  # in a notebook: last line of a cell
    """
    target = obj
    if not (inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj)):
        target = type(obj)  # an instance: show its class
    try:
        src = inspect.getsource(target)
    except (TypeError, OSError) as err:
        raise TypeError(f"show_source cannot find the source of {obj!r}: {err}") from None
    try:
        from IPython.display import Code
    except ImportError:
        print(src)
        return src
    return Code(src, language="python")


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy (if installed) and PyTorch (CPU and all GPUs).

    Example:
        >>> set_seed(0); a = torch.rand(1); set_seed(0); bool(torch.rand(1) == a)
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)  # also seeds every CUDA device
