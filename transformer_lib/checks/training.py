"""Checks of notebook 10's exercises (the training objective), each beside its catalogue of typical mistakes:
``label_smoothed_cross_entropy(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean")`` (Sec. 5.4, in
torch's convention: ``eps / V`` on every class, the true one included) and the stretch
``smoothing_floor(vocab_size, smoothing)``, the lowest loss that smoothing allows. The learning rate's check,
``noam_lr``, is in :mod:`transformer_lib.checks.schedule`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .. import objective
from ._core import Mistake, call, compare, describe, run_cases, seeded

__all__ = ["check_label_smoothed_cross_entropy", "check_smoothing_floor"]


# ------------------------------------------------------------------------------ label-smoothed cross-entropy
def smoothed_variant(logits: Tensor, target: Tensor, *, pad_id: int, smoothing: float, reduction: str,
                     term: str = "V", weights: str = "ok", pad: str = "ignore", reduce: str | None = None,
                     dim: int = -1) -> Tensor:
    """The loss in float64 with one switch turned to a typical mistake (``reduce`` overrides ``reduction``)."""
    V, eps = logits.shape[-1], smoothing
    lp = torch.log_softmax(logits.double(), dim=dim).reshape(-1, V)  # (N, V)
    t = target.reshape(-1)  # (N,)
    keep = t != (0 if pad == "zero" else pad_id)  # (N,)
    true = t.masked_fill(~keep, 0)  # (N,)
    nll = -lp.gather(-1, true[:, None]).squeeze(-1)  # (N,)
    onehot = torch.nn.functional.one_hot(true, V).bool()  # (N, V)
    neg = -lp  # (N, V)
    uniform = {"V": lambda: neg.mean(-1), "V-1": lambda: neg.masked_fill(onehot, 0).sum(-1) / (V - 1),
               "V-2": lambda: neg.masked_fill(onehot, 0)[:, torch.arange(V) != pad_id].sum(-1) / (V - 2),
               "V excl": lambda: neg.masked_fill(onehot, 0).sum(-1) / V, "sum": lambda: neg.sum(-1)}[term]()
    a, b = {"ok": (1 - eps, eps), "none": (1.0, 0.0), "minus": (1 - eps, -eps), "unscaled": (1.0, eps),
            "swapped": (eps, 1 - eps)}[weights]
    per = a * nll + b * uniform  # (N,)
    if pad == "count":
        keep = torch.ones_like(keep)
    per = a * nll * keep + b * uniform if pad == "nll only" else per * keep  # (N,)
    count = keep.sum().clamp(min=1)
    reduce = reduce or reduction
    if reduce == "sentence":  # mean per sentence, then over the batch
        return (per.view(target.shape).sum(-1) / keep.view(target.shape).sum(-1).clamp(min=1)).mean()
    return {"mean": per.sum() / count, "sum": per.sum(), "all": per.sum() / per.numel()}[reduce]


_TORCH_CONVENTION = ("this course uses torch's convention (F.cross_entropy(..., label_smoothing=eps)): "
                     "q = (1-eps)*one_hot(y) + eps/V on EVERY class, the true one included, i.e. "
                     "loss = (1-eps)*(-log p_y) + eps*mean over the V classes of (-log p_k)")
LS_MISTAKES = [  # (diagnosis, smoothed_variant switches)
    ("padding is not ignored: positions where target == pad_id must contribute nothing; average over the real "
     "tokens only", dict(pad="count")),
    ("you averaged over all positions, padding included: divide the sum by the number of real tokens, "
     "(target != pad_id).sum()", dict(reduce="all")),
    ("only the NLL term ignores the padding: mask the smoothing term at the padded positions too",
     dict(pad="nll only")),
    ("you ignored pad_id (hard-coded 0?): mask the positions where target == pad_id", dict(pad="zero")),
    ("you averaged per sentence, then over the batch: average over all the real tokens of the batch at once "
     "(sum / number of real tokens)", dict(reduce="sentence")),
    (f"you spread eps over the V-1 wrong classes (eps/(V-1) each, 1-eps on the true class); {_TORCH_CONVENTION}",
     dict(term="V-1")),
    (f"you spread eps over V-2 classes, leaving out the true class and the padding id (the Annotated Transformer's "
     f"convention); {_TORCH_CONVENTION}", dict(term="V-2")),
    (f"the uniform term leaves out the true class; {_TORCH_CONVENTION}", dict(term="V excl")),
    ("the uniform term is the MEAN over the V classes of -log p_k (eps/V on each class), not the sum",
     dict(term="sum")),
    ("no smoothing: your loss is the plain cross-entropy; add smoothing * (-mean_k log p_k) and scale the NLL "
     "by (1 - smoothing)", dict(weights="none")),
    ("the smoothing term has the wrong sign: loss = (1-eps)*(-log p_y) + eps*(-mean_k log p_k), both terms "
     "positive", dict(weights="minus")),
    ("scale the NLL by (1 - smoothing): the smoothed target puts 1-eps (+ eps/V) on the true class, not 1",
     dict(weights="unscaled")),
    ("the weights are swapped: (1 - smoothing) on the true class's NLL, smoothing on the uniform term",
     dict(weights="swapped")),
    ("log-softmax over the wrong axis: normalise over the vocabulary, the last axis (dim=-1)", dict(dim=-2)),
    ("you returned the sum: reduction='mean' (the default) divides by the number of real (non-pad) tokens",
     dict(reduce="sum")),
    ("you returned the mean: reduction='sum' asks for the sum over the real (non-pad) tokens", dict(reduce="mean")),
]
_LOG_OF_SOFTMAX = ("use torch.log_softmax (or x - x.logsumexp(-1, keepdim=True)), not softmax(...).log(): with "
                   "logits this far apart a probability underflows to 0 and its log is -inf")
_ALL_PAD = ("a batch with no real token must give 0, not 0/0 = NaN: divide by the number of real tokens clamped to "
            "at least 1, e.g. keep.sum().clamp(min=1)")


def check_label_smoothed_cross_entropy(fn: Callable) -> None:
    """Check ``label_smoothed_cross_entropy(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean")``."""
    r, t = torch.randn, torch.tensor
    with seeded():
        padded = t([3, 0, 5, 1, 0, 2, 4, 0])  # (N=8,) three padded positions
        sentences = t([[4, 1, 6, 2, 3], [5, 2, 0, 0, 0]])  # (B=2, T=5) lengths 5 and 2
        big = torch.tensor([[1000.0, 0.0, -1000.0, 10.0], [0.0, -900.0, 500.0, 1.0], [-1000.0, 1000.0, 0.0, 0.0]])
        cases = [
            ("2-D (N=6, V=5), no padding, defaults (pad_id=0, smoothing=0.1, 'mean')",
             (2 * r(6, 5), torch.randint(1, 5, (6,)), None)),
            ("2-D with padding (N=8, V=6, three positions are pad_id=0)",
             (2 * r(8, 6), padded, dict(pad_id=0, smoothing=0.1, reduction="mean"))),
            ("3-D (B=2, T=5, V=7), sentences of 5 and 2 tokens then padding",
             (2 * r(2, 5, 7), sentences, dict(pad_id=0, smoothing=0.1, reduction="mean"))),
            ("pad_id=3 (0 is a real class here), smoothing=0.2", (2 * r(8, 6), t([0, 3, 5, 0, 3, 2, 1, 4]),
                                                                   dict(pad_id=3, smoothing=0.2, reduction="mean"))),
            ("reduction='sum' (B=2, T=5, V=7)", (2 * r(2, 5, 7), sentences,
                                                 dict(pad_id=0, smoothing=0.1, reduction="sum"))),
            ("smoothing=0.0 is the plain cross-entropy", (2 * r(8, 6), padded,
                                                          dict(pad_id=0, smoothing=0.0, reduction="mean"))),
            ("large logits (1000 apart)", (big, t([1, 2, 3]), dict(pad_id=0, smoothing=0.1, reduction="mean"))),
            ("gradient with respect to the logits (B=2, T=5, V=7)",
             (2 * r(2, 5, 7), sentences, dict(pad_id=0, smoothing=0.1, reduction="mean", grad=True))),
            ("no real token (all padding): the loss is 0", (r(2, 3, 5), torch.zeros(2, 3, dtype=torch.long),
                                                            dict(pad_id=0, smoothing=0.1, reduction="mean"))),
        ]
        run_cases("label_smoothed_cross_entropy", cases, lambda case: _ls_case(fn, *case))


def _ls_case(fn: Callable, logits: Tensor, target: Tensor, kwargs: dict[str, Any] | None) -> None:
    options = dict(kwargs or {})
    grad = options.pop("grad", False)
    settings = {"pad_id": 0, "smoothing": 0.1, "reduction": "mean", **options}
    inputs = f"logits={describe(logits)}, target={target.tolist()}, " + ", ".join(
        f"{k}={v!r}" for k, v in settings.items())
    with torch.enable_grad():
        x = logits.clone().requires_grad_(grad)
        got = _call_loss(fn, x, target, options, inputs)
    expected = objective.label_smoothed_cross_entropy(logits, target, **settings)
    variants = [(message, lambda kw=kw: smoothed_variant(logits, target, **settings, **kw))
                for message, kw in LS_MISTAKES]
    all_pad = not bool((target != settings["pad_id"]).any())
    compare(got, expected, what="the loss", variants=variants, inputs=inputs,
            structural=[_flattened(fn, logits, target, options, expected)] if logits.ndim == 3 else [],
            shape_hint=lambda shape: "return a scalar (shape ()): reduce the per-position losses with the mean "
                                     "over the real tokens (or their sum for reduction='sum')",
            nonfinite_hint=_ALL_PAD if all_pad else _LOG_OF_SOFTMAX)
    if grad:
        _ls_gradient(got, x, logits, target, settings, inputs)


def _call_loss(fn: Callable, logits: Tensor, target: Tensor, options: dict[str, Any], inputs: str) -> Any:
    try:
        got = call(fn, logits, target, names=["logits", "target"], **options)
    except Mistake as err:
        if logits.ndim != 3 or err.__cause__ is None:
            raise
        raise Mistake(f"{err}\n  hint: logits (B, T, V) and target (B, T) are B*T classifications: flatten them to "
                      "(B*T, V) and (B*T,) first") from err.__cause__
    if isinstance(got, numbers.Real):
        raise Mistake(f"return the loss as a 0-dim tensor, not a Python number ({type(got).__name__}; .item()?): "
                      f"the training step calls loss.backward() on it\n  inputs: {inputs}")
    return got


def _flattened(fn: Callable, logits: Tensor, target: Tensor, options: dict[str, Any],
               expected: Tensor) -> Callable[[Tensor], str | None]:
    """A structural check: right on the flattened ``(B*T, V)`` input but not on ``(B, T, V)``."""
    def check(got: Tensor) -> str | None:
        try:
            flat = call(fn, logits.reshape(-1, logits.shape[-1]), target.reshape(-1), **options)
        except Mistake:
            return None
        if isinstance(flat, Tensor) and flat.shape == expected.shape and torch.allclose(
                flat.double(), expected.double(), rtol=1e-4, atol=1e-5):
            return ("right for (N, V) logits but not for (B, T, V): flatten logits to (B*T, V) and target to "
                    "(B*T,) the same way (logits.reshape(-1, V), target.reshape(-1))")
        return None
    return check


def _ls_gradient(got: Tensor, x: Tensor, logits: Tensor, target: Tensor, settings: dict[str, Any],
                 inputs: str) -> None:
    """The gradient of the student's loss with respect to the logits against the reference's."""
    if not got.requires_grad:
        raise Mistake("your loss carries no gradient: compute it with torch operations only, without .detach(), "
                      ".item(), torch.tensor(...) or torch.no_grad()")
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(got, x)
        ref = logits.clone().requires_grad_()
        objective.label_smoothed_cross_entropy(ref, target, **settings).backward()
    compare(grad, ref.grad, what="the gradient with respect to the logits", inputs=inputs)


# ------------------------------------------------------------------------- the floor of the loss (stretch)
def _floor_variants(V: int, eps: float) -> list[tuple[str, Callable[[], Tensor]]]:
    def entropy(probs: list[tuple[float, int]]) -> Tensor:  # [(probability, how many tokens have it)]
        return torch.tensor(-sum(n * p * math.log(p) for p, n in probs if p > 0), dtype=torch.float64)
    true, other = 1 - eps + eps / V, eps / V
    return [
        ("you spread the smoothing over the V - 1 wrong tokens (true token 1 - ε, others ε/(V-1)); the course's "
         "convention (F.cross_entropy's) puts ε/V on every token, the true one included: q_true = 1 - ε + ε/V",
         lambda: entropy([(1 - eps, 1), (eps / (V - 1), V - 1)])),
        ("the true token's probability misses its own share ε/V: q_true = 1 - ε + ε/V (q must sum to 1)",
         lambda: entropy([(1 - eps, 1), (other, V - 1)])),
        ("you counted ε/V for all V tokens besides the true one's 1 - ε + ε/V: only the V - 1 others have ε/V",
         lambda: entropy([(true, 1), (other, V)])),
        ("that is the entropy in bits (log base 2); the loss uses natural logarithms (nats)",
         lambda: entropy([(true, 1), (other, V - 1)]) / math.log(2)),
        ("the sign is flipped: entropy is -Σ q log q, which is >= 0", lambda: -entropy([(true, 1), (other, V - 1)])),
    ]


def check_smoothing_floor(fn: Callable) -> None:
    """Check ``smoothing_floor(vocab_size, smoothing) -> float``: the entropy of the smoothed target."""
    cases = [(4000, 0.1), (2, 0.1), (37000, 0.1), (5, 0.5), (10, 0.0)]

    def run(case: tuple[int, float]) -> None:
        V, eps = case
        try:
            got = call(fn, V, eps, names=["vocab_size", "smoothing"])
        except Mistake as err:
            if eps == 0 and isinstance(err.__cause__, ValueError):
                raise Mistake(f"{err}\n  hint: with smoothing 0 the other tokens have probability 0, and 0 * log 0 "
                              "counts as 0 (the limit): the floor of plain cross-entropy is 0") from err.__cause__
            raise
        if isinstance(got, bool) or not isinstance(got, (numbers.Real, Tensor)):
            raise Mistake(f"return the floor as a float; got {type(got).__name__} {describe(got)}")
        expected = torch.tensor(objective.smoothing_floor(V, eps), dtype=torch.float64)
        compare(torch.as_tensor(float(got), dtype=torch.float64), expected, what="the floor",
                variants=_floor_variants(V, eps), atol=1e-9, rtol=1e-9, inputs=f"vocab_size={V}, smoothing={eps}")

    with seeded():
        run_cases("smoothing_floor", [(f"vocab_size={V}, smoothing={eps}", (V, eps)) for V, eps in cases], run)
