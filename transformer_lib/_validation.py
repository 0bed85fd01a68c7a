"""Input validation for the library's public entry points (private: not part of the course's API).

Rule of the house ("validate at the door"): a public entry point (a pure function such as
``scaled_dot_product_attention``, a module called directly by the user, ``Transformer.forward``)
checks its input once and says what it expected: the argument, the shape, the dtype. The modules
it calls trust it. :func:`door` implements the rule: a function or ``forward`` wrapped in
``@door(check)`` runs ``check`` only when it is called from outside the library's own call stack,
never inside another door, and never while ``torch.compile`` traces. No check forces a GPU->CPU
sync: values (e.g. token ids out of the vocabulary) are only inspected on CPU tensors.

The messages look the same everywhere: they name the argument, the expected shape and what was received.
"""

from __future__ import annotations

import functools
import numbers
import threading
from typing import Any, Callable, Sequence, TypeVar

import torch

__all__ = ["door", "check_tensor", "check_dim", "check_positive_int", "check_probability", "check_token_ids",
           "check_device", "check_bool", "validate_mask"]

F = TypeVar("F", bound=Callable[..., Any])
_state = threading.local()  # _state.depth > 0 while a door's function runs (per thread)


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def door(check: Callable[..., None]) -> Callable[[F], F]:
    """Decorate a public entry point: run ``check(*args, **kwargs)`` first, unless already inside one.

    The wrapped function runs with the same arguments. Inside it, every other ``@door`` function
    skips its check: the caller already validated what it passes on (a model validates its token
    ids once; its layers, attention modules and attention function do not re-check per call).
    Under ``torch.compile`` no check runs (the compiled graph then has no Python checks in it).

    Example:
        >>> def _check_x(x):
        ...     check_tensor(x, "x", "(B, T)", ndim=2)
        >>> @door(_check_x)
        ... def double(x):
        ...     return 2 * x
        >>> double(torch.ones(1, 2)).shape
        torch.Size([1, 2])
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def entry(*args: Any, **kwargs: Any) -> Any:
            if _is_compiling() or getattr(_state, "depth", 0):
                return fn(*args, **kwargs)
            check(*args, **kwargs)
            _state.depth = 1
            try:
                return fn(*args, **kwargs)
            finally:
                _state.depth = 0

        return entry  # type: ignore[return-value]

    return decorate


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

    The range is checked only for CPU tensors: on a GPU, reading ``min``/``max`` would make every
    training step wait for the device. Batches come from the tokenizer on the CPU, where it is free.

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
    if tokens.numel() > 0 and tokens.device.type == "cpu":  # on a GPU, .min()/.max() would force a sync
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(
                f"{name} contains token ids outside [0, {vocab_size}) (vocab_size = {vocab_size}); "
                f"got min {lo}, max {hi}"
            )
    return tokens


def check_device(device: torch.device, where: str, **tensors: torch.Tensor | None) -> None:
    """Check that each tensor (``None`` skipped) is on ``device``, the device of ``where`` (``"q"``, ``"the model"``).

    Example:
        >>> check_device(torch.device("cpu"), "the model's parameters", src=torch.zeros(2), src_mask=None)
    """
    for name, x in tensors.items():
        if x is not None and x.device != device:
            raise ValueError(f"{name} is on device {x.device} but {where} on device {device}: move one of them, "
                             f"e.g. {name}.to({str(device)!r})")


def check_bool(value: Any, name: str) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (a string such as ``"no"`` would be truthy).

    Example:
        >>> check_bool(False, "norm_first")
        False
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}")
    return value


def validate_mask(
    mask: Any,
    shape: Sequence[int],
    *,
    name: str = "mask",
    dims: str = "(B, H, T_q, T_k)",
    per_sequence: bool = False,
) -> torch.Tensor | None:
    """Check an attention mask against the library's one convention.

    The convention: a **bool** tensor, ``True`` = this query may attend to this key, broadcastable to the
    attention scores' shape ``(B, H, T_q, T_k)`` (or ``(..., T_q, T_k)``), with **1, 2 or all the dims** of
    the scores. Broadcasting aligns the last dims, so a 2-D mask is always ``(T_q, T_k)`` and a 1-D mask
    ``(T_k,)``: one mask shared by every sequence and head (``causal_mask(T)``). A mask that differs per
    sequence (padding) has all the dims, e.g. ``(B, 1, 1, T_k)`` from ``padding_mask``. Rejected:

    - a mask with more than 2 dims but fewer than the scores: a 3-D ``(B, T_q, T_k)`` mask would be read
      as ``(H, T_q, T_k)``, and silently applied to the wrong sequences when ``B == H``;
    - with ``per_sequence=True`` (the arguments that are padding masks by definition, ``src_mask``), any
      mask with fewer dims than the scores: a ``(B, S)`` padding mask would be read as ``(T, S)`` and
      applied to the wrong sequences when ``B == T``, so ``src_mask`` must be 4-D;
    - a 2-D ``(B, T_k)`` mask where it does not broadcast (``B != T_q``): the message says how to add
      the axes. Where ``B == T_q`` no shape can tell it from a ``(T_q, T_k)`` mask: it is read as one.

    Args:
        mask: the mask to check, or ``None`` (no masking; returned as is).
        shape: the shape of the scores the mask will be applied to, e.g. ``(2, 4, 5, 7)``.
        name: the argument's name in the message.
        dims: the symbolic shape in the message.
        per_sequence: the argument is a padding (per-sequence) mask: it must have all the dims of ``shape``.

    Returns:
        ``mask`` unchanged (or ``None``).

    Raises:
        TypeError: mask is not a bool tensor (e.g. an additive 0/-inf float mask).
        ValueError: mask is not broadcastable to ``shape``, or has a number of dims that could be misread.

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
            if mask.numel() and mask.device.type == "cpu" and bool((mask >= 0).all()):  # no -inf: a 0/1 mask?
                hint += f" If it is a 0/1 mask (1 = may attend), use `{name}.bool()`."
        else:
            hint = f" If you built a 0/1 mask, use `{name}.bool()`."
        raise TypeError(f"{name} must be {expect}; got dtype {mask.dtype}.{hint}")
    n, full, got = mask.ndim, len(shape), _shape(mask.shape)
    symbols = dims.strip("()").split(", ")  # ["B", "H", "T_q", "T_k"]; "(..., T_q, T_k)": the dims' numbers
    symbols = symbols if len(symbols) == full and "..." not in symbols else [
        f"dim {i}" for i in range(full - 2)] + symbols[-2:]
    batch, keys = "B" if symbols[0] == "dim 0" else symbols[0], symbols[-1]
    pad_hint = (f" A per-sequence ({batch}, {keys}) padding mask needs its axes: {name}[:, {'None, ' * (full - 2)}:], "
                f"shape ({batch}, {', '.join(['1'] * (full - 2))}, {keys}), as padding_mask returns.")
    read = f"with {n} dims it would be read as ({', '.join(symbols[full - n:])})" if 0 < n < full else ""
    if per_sequence and n != full:
        raise ValueError(f"{name} must have all {full} dims of {dims} = {_shape(shape)} (a per-sequence mask); "
                         f"got shape {got}" + (f": {read}, one mask for every sequence." if read else ".")
                         + (pad_hint if n == 2 else ""))
    if n > full or not all(m in (1, s) for m, s in zip(reversed(mask.shape), reversed(tuple(shape)))):
        looks_padded = n == 2 and full > 2 and mask.shape[0] == shape[0] != 1
        raise ValueError(f"{name} must be {expect}; got shape {got}" + (f" ({read})" if 2 < n < full else "")
                         + "." + (pad_hint if looks_padded else ""))
    if 2 < n < full:
        raise ValueError(f"{name} must have 1 dim ({keys},) or 2 dims ({symbols[-2]}, {keys}), shared by every "
                         f"sequence, or all {full} dims {dims}; got shape {got}: {read}. Add the missing axes, "
                         f"e.g. {name}[:, None] for ({batch}, 1, ...)")
    return mask
