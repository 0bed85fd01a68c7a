"""The training objective of "Attention Is All You Need": label smoothing (Sec. 5.4), Adam with the
learning-rate warm-up of Eq. (3) (Sec. 5.3).

Label smoothing replaces the one-hot target of each position by a smoothed distribution ``q``; the loss is
the cross-entropy ``-sum_k q(k) log p(k)``. This library uses **torch's convention**, the one of
``F.cross_entropy(..., label_smoothing=eps)``: ``q = (1 - eps) * one_hot(y) + eps / V`` on **every** class,
the true class and the padding id included (so the true class gets ``1 - eps + eps / V``). The loss then
splits into two terms, each a line of :func:`label_smoothed_cross_entropy`::

    loss = (1 - eps) * (-log p(y))  +  eps * (-(1/V) sum_k log p(k))
               NLL of the true class       cross-entropy with the uniform distribution

(Other codebases spread ``eps`` over the ``V - 1`` wrong classes, or over ``V - 2`` to leave out the padding
id, as the Annotated Transformer does; with thousands of classes, ``eps / V`` and ``eps / (V - 1)`` hardly
differ.) The paper uses ``eps = 0.1``: it "hurts perplexity, as the model learns to be more unsure, but
improves accuracy and BLEU score".

Eq. (3), the learning rate at update ``step`` (counted from 1)::

    lrate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)

rises linearly for ``warmup`` steps (4000 in the paper), peaks at ``step == warmup`` where the two terms
meet, then decays as ``1/sqrt(step)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn

from ._validation import _shape, check_device, check_positive_int, check_probability, check_tensor, door

__all__ = ["label_smoothed_cross_entropy", "make_optimizer", "noam_lr", "noam_scheduler", "smoothing_floor"]

_SHAPES = "(B, T, V) or (N, V)"


def _check_loss_args(logits: Any, target: Any, *, pad_id: Any = 0, smoothing: Any = 0.1,
                     reduction: Any = "mean") -> None:
    """Validate the arguments of :func:`label_smoothed_cross_entropy` (ids only on CPU: no GPU sync)."""
    check_tensor(logits, "logits", _SHAPES, kind="float")
    if logits.ndim not in (2, 3) or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape {_SHAPES} with V >= 1; got shape {_shape(logits.shape)}")
    check_tensor(target, "target", "(B, T) or (N,)")
    if target.dtype != torch.long:
        raise TypeError(f"target must be a torch.long tensor of class ids with shape (B, T) or (N,); got dtype "
                        f"{target.dtype} (use target.long())")
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"target must have the shape of logits without its last dim V: logits "
                         f"{_shape(logits.shape)} needs target {_shape(logits.shape[:-1])}; got target "
                         f"{_shape(target.shape)}")
    if isinstance(pad_id, bool) or not isinstance(pad_id, numbers.Integral):
        raise TypeError(f"pad_id must be an int; got {type(pad_id).__name__} {pad_id!r}")
    check_probability(smoothing, "smoothing")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    check_device(logits.device, "logits", target=target)
    V = logits.shape[-1]
    if target.device.type != "cpu":  # on a GPU, reading the ids (.min(), .max()) would force a sync
        return
    ids = target[target != pad_id]  # padding may be any id (even torch's -100)
    if ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= V:
            raise ValueError(f"target contains class ids outside [0, V) = [0, {V}) (besides pad_id = {pad_id}); "
                             f"got min {lo}, max {hi}")


@door(_check_loss_args)
def label_smoothed_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    pad_id: int = 0,
    smoothing: float = 0.1,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy with label smoothing (Sec. 5.4), padding ignored; torch's convention.

    The target distribution is ``q = (1 - smoothing) * one_hot(target) + smoothing / V`` (every class,
    the true one included), so the result equals ``F.cross_entropy(logits.reshape(-1, V), target.reshape(-1),
    label_smoothing=smoothing, ignore_index=pad_id, reduction=reduction)``, except for a batch with no real
    token: there the loss is ``0`` (with zero gradients), where torch's mean gives ``0/0 = NaN``.

    Args:
        logits: unnormalised scores over the vocabulary (any float dtype; the log-softmax is computed in
            float32 at least, so bf16/fp16 logits under autocast give a float32 loss).
        target: the true class ids, ``torch.long``; positions equal to ``pad_id`` contribute nothing.
        pad_id: id of the padding token (any int: ``-100``, torch's default ``ignore_index``, works too).
        smoothing: ``eps`` in ``[0, 1)``; ``0.1`` in the paper, ``0`` gives the plain cross-entropy.
        reduction: ``"mean"`` (over the non-pad positions) or ``"sum"`` (over the non-pad positions).

    Shape:
        - logits: ``(B, T, V)`` or ``(N, V)``
        - target: ``(B, T)`` or ``(N,)``, the shape of ``logits`` without ``V``
        - output: ``()``, a scalar

    Returns:
        The loss, a 0-dim float tensor (float32 for bf16/fp16/float32 logits, float64 for float64 ones).

    Example:
        >>> logits = torch.tensor([[0.5, 2.0, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])  # (N=3, V=3)
        >>> target = torch.tensor([1, 1, 0])  # the last position is padding (pad_id=0)
        >>> label_smoothed_cross_entropy(logits, target, pad_id=0, smoothing=0.1)
        tensor(0.3639)
        >>> label_smoothed_cross_entropy(logits, target, smoothing=0.0)  # plain cross-entropy: lower
        tensor(0.2056)
    """
    V = logits.shape[-1]
    logits = logits.reshape(-1, V)  # (N, V)  every position is one classification over V classes
    target = target.reshape(-1)  # (N,)
    log_probs = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)  # (N, V)
    keep = target != pad_id  # (N,)  True at real tokens
    true_class = target.masked_fill(~keep, 0).unsqueeze(-1)  # (N, 1)  any valid id at padding: zeroed below
    nll = -log_probs.gather(-1, true_class).squeeze(-1)  # (N,)  -log p(y)
    uniform = -log_probs.mean(dim=-1)  # (N,)  -(1/V) sum_k log p(k): cross-entropy with the uniform q
    loss = torch.where(keep, (1 - smoothing) * nll + smoothing * uniform, 0.0)  # (N,)  -sum_k q(k) log p(k)
    total = loss.sum()
    return total if reduction == "sum" else total / keep.sum().clamp(min=1)  # mean over real tokens; none -> 0


def _check_floor_args(vocab_size: Any, smoothing: Any) -> None:
    check_positive_int(vocab_size, "vocab_size")
    check_probability(smoothing, "smoothing")


@door(_check_floor_args)
def smoothing_floor(vocab_size: int, smoothing: float) -> float:
    """The lowest value of the label-smoothed loss at one position: the entropy (nats) of the smoothed target.

    The cross-entropy ``-sum_k q(k) log p(k)`` is smallest at ``p = q``, where it equals ``H(q)``; with
    ``q_true = 1 - eps + eps / V`` and ``eps / V`` on the ``V - 1`` others (``0 log 0`` counts as 0).

    Example:
        >>> round(smoothing_floor(4000, 0.1), 4), smoothing_floor(4000, 0.0)
        (1.1542, 0.0)
    """
    true, other = 1 - smoothing + smoothing / vocab_size, smoothing / vocab_size
    entropy = -true * math.log(true) - ((vocab_size - 1) * other * math.log(other) if other > 0 else 0.0)
    return entropy + 0.0  # -0.0 + 0.0 is 0.0: no "-0.0" when smoothing is 0


def _check_noam_args(step: Any, *, d_model: Any, warmup: Any = 4000, factor: Any = 1.0) -> None:
    """Validate the arguments of :func:`noam_lr`."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an int (the update number, from 1); got {type(step).__name__} {step!r}")
    if step < 1:
        raise ValueError(f"step counts updates from 1 (Eq. (3) has step^-0.5); got {step}. noam_scheduler "
                         f"passes LambdaLR's count + 1 for you")
    check_positive_int(d_model, "d_model")
    check_positive_int(warmup, "warmup")
    _check_factor(factor)


def _check_factor(factor: Any) -> None:
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor > 0:
        raise ValueError(f"factor must be a positive number; got {factor!r}")


@door(_check_noam_args)
def noam_lr(step: int, *, d_model: int, warmup: int = 4000, factor: float = 1.0) -> float:
    """The learning rate of Eq. (3): ``factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)``.

    Args:
        step: the update number, counted from 1 (the paper's ``step_num``); ``0`` raises ``ValueError``
            (``step^-0.5`` is infinite there). :func:`noam_scheduler` handles ``LambdaLR``'s count from 0.
        d_model: model width (512 in the base model).
        warmup: the paper's ``warmup_steps`` (4000): the rate rises linearly until then, peaks there,
            then decays as ``1/sqrt(step)``.
        factor: a constant multiplier (1 in the paper; the Annotated Transformer uses 1 or 2).

    Returns:
        The learning rate, a float.

    Example:
        >>> round(noam_lr(4000, d_model=512, warmup=4000), 7)  # the peak: (d_model * warmup)^-0.5
        0.0006988
    """
    return factor * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)  # Eq. (3)


def noam_scheduler(optimizer: torch.optim.Optimizer, *, d_model: int, warmup: int = 4000,
                   factor: float = 1.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that sets the learning rate of update ``k`` (from 1) to ``noam_lr(k, ...)``.

    ``LambdaLR`` multiplies each group's base rate by ``lr_lambda(count)``, with ``count`` from 0 at
    construction; the lambda here is ``noam_lr(count + 1, ...)``, so the base rate must be ``1.0`` (as
    :func:`make_optimizer` sets it) for the rate to be Eq. (3) itself; another base rate raises
    ``ValueError``. Call ``scheduler.step()`` after each ``optimizer.step()``. To resume training, save and
    load ``scheduler.state_dict()`` with the optimizer's.

    Args:
        optimizer: the optimizer, every param group with ``lr=1.0``.
        d_model, warmup, factor: as in :func:`noam_lr`.

    Returns:
        The scheduler.

    Example:
        >>> optimizer = make_optimizer(torch.nn.Linear(4, 4))
        >>> scheduler = noam_scheduler(optimizer, d_model=512, warmup=4000)
        >>> optimizer.param_groups[0]["lr"] == noam_lr(1, d_model=512, warmup=4000)
        True
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
    _check_noam_args(1, d_model=d_model, warmup=warmup, factor=factor)
    for i, group in enumerate(optimizer.param_groups):
        base = group.get("initial_lr", group["lr"])
        if base != 1.0:
            raise ValueError(f"noam_scheduler sets the rate to noam_lr(step) itself, as a multiple of the base rate: "
                             f"create the optimizer with lr=1.0 (make_optimizer(model) does); got lr={base} in "
                             f"param group {i}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda count: noam_lr(count + 1, d_model=d_model, warmup=warmup, factor=factor))


def make_optimizer(model: nn.Module, *, lr: float = 1.0) -> torch.optim.Adam:
    """Adam with the paper's hyper-parameters (Sec. 5.3): ``beta1 = 0.9``, ``beta2 = 0.98``, ``eps = 1e-9``.

    Args:
        model: the model whose parameters to train.
        lr: the base learning rate; keep ``1.0`` with :func:`noam_scheduler`, which then sets Eq. (3)'s rate.

    Returns:
        ``torch.optim.Adam`` over ``model.parameters()``.

    Example:
        >>> make_optimizer(torch.nn.Linear(4, 4)).defaults["betas"]
        (0.9, 0.98)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9)
