"""Checks of notebook 10's exercises (the training objective), each beside its catalogue of typical mistakes:
``label_smoothed_cross_entropy(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean")`` (Sec. 5.4, in
torch's convention: ``eps / V`` on every class, the true one included) and ``noam_lr(step, *, d_model,
warmup=4000, factor=1.0)``, the learning rate of Eq. (3).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .. import objective
from ._core import Mistake, call, compare, describe, run_cases, seeded

__all__ = ["check_label_smoothed_cross_entropy", "check_noam_lr"]


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


# ---------------------------------------------------------------------------------------- noam_lr, Eq. (3)
def noam_variant(steps: list[int], d_model: int, warmup: int, factor: float, *, pick: str = "min",
                 warm_exp: float = -1.5, decay_exp: float = -0.5, d_exp: float = -0.5, shift: int = 0,
                 precedence: bool = False, use_factor: bool = True, warmup_as: int | None = None,
                 d_model_as: int | None = None) -> Tensor:
    """Eq. (3) at ``steps`` (float64) with one switch turned to a typical mistake."""
    s = torch.tensor(steps, dtype=torch.float64) + shift  # (n,)
    w, d = float(warmup_as or warmup), float(d_model_as or d_model)
    decay = s**decay_exp  # (n,)
    warm = (s * w) ** warm_exp if precedence else s * w**warm_exp  # (n,)
    rate = torch.minimum(decay, warm) if pick == "min" else torch.maximum(decay, warm)
    return (factor if use_factor else 1.0) * d**d_exp * rate


NOAM_MISTAKES = [  # (diagnosis, noam_variant switches)
    ("min and max swapped: the rate is the SMALLER of step^-0.5 and step * warmup^-1.5 (a linear warm-up, then "
     "a 1/sqrt(step) decay)", dict(pick="max")),
    ("the warm-up term is step * warmup^-1.5, not step * warmup^-0.5: with -1.5 both terms are equal at "
     "step == warmup, where the rate peaks", dict(warm_exp=-0.5)),
    ("the warm-up term is step * warmup^-1.5, not step / warmup", dict(warm_exp=-1.0)),
    ("(step * warmup)^-1.5 is not step * warmup^-1.5: ** binds tighter than *, write step * warmup ** -1.5",
     dict(precedence=True)),
    ("missing the factor d_model^-0.5 (1/sqrt(d_model)): wider models get smaller rates", dict(d_exp=0.0)),
    ("d_model^-0.5 is 1/sqrt(d_model): you multiplied by sqrt(d_model)", dict(d_exp=0.5)),
    ("d_model^-0.5 is 1/sqrt(d_model), not 1/d_model", dict(d_exp=-1.0)),
    ("the decay term is step^-0.5 = 1/sqrt(step), not sqrt(step)", dict(decay_exp=0.5)),
    ("the decay term is step^-0.5 = 1/sqrt(step), not 1/step", dict(decay_exp=-1.0)),
    ("off by one: step is the update number, counted from 1; use step itself, not step + 1", dict(shift=1)),
    ("off by one: step is the update number, counted from 1; use step itself, not step - 1", dict(shift=-1)),
    ("you ignored factor: multiply the rate by it", dict(use_factor=False)),
    ("you ignored warmup (hard-coded 4000?): use the warmup argument", dict(warmup_as=4000)),
    ("you ignored d_model (hard-coded 512?): use the d_model argument", dict(d_model_as=512)),
]


def check_noam_lr(fn: Callable) -> None:
    """Check ``noam_lr(step, *, d_model, warmup=4000, factor=1.0) -> float``, Eq. (3), at several steps."""
    cases = [  # (d_model, warmup or None for the default, factor or None, steps)
        (512, None, None, [1, 2, 10, 1000, 3999, 4000, 4001, 16000, 100000]),
        (64, 10, 1.0, [1, 2, 3, 5, 9, 10, 11, 20, 40, 1000]),
        (256, 100, 2.0, [1, 50, 99, 100, 101, 400, 10000]),
        (1024, 1, 1.0, [1, 2, 3, 4, 100]),
    ]

    def name(d_model: int, warmup: int | None, factor: float | None, steps: list[int]) -> str:
        setting = f"d_model={d_model}, " + ("defaults (warmup=4000, factor=1.0)" if warmup is None else
                                            f"warmup={warmup}, factor={factor}")
        return f"{setting}, at steps {steps}" + (" (no warm-up)" if warmup == 1 else "")

    with seeded():
        run_cases("noam_lr", [(name(*c), c) for c in cases], lambda c: _noam_case(fn, *c))


def _noam_case(fn: Callable, d_model: int, warmup: int | None, factor: float | None, steps: list[int]) -> None:
    options = {"d_model": d_model} if warmup is None else {"d_model": d_model, "warmup": warmup, "factor": factor}
    w, f = warmup or 4000, factor or 1.0
    got = torch.tensor([_rate(fn, step, options) for step in steps], dtype=torch.float64)  # (n,)
    expected = torch.tensor([objective.noam_lr(s, d_model=d_model, warmup=w, factor=f) for s in steps],
                            dtype=torch.float64)  # (n,)
    variants = [(message, lambda kw=kw: noam_variant(steps, d_model, w, f, **kw)) for message, kw in NOAM_MISTAKES]

    def peak(rates: Tensor) -> str | None:
        top = steps[int(rates.argmax())]
        if w in steps and top != w:
            return (f"the rate must peak at step == warmup ({w}), where step^-0.5 = step * warmup^-1.5; yours peaks "
                    f"at step {top}")
        return None

    compare(got, expected, what="the learning rates", variants=variants, structural=[peak], atol=0.0, rtol=1e-5,
            inputs=f"steps={steps}, {options}")


def _rate(fn: Callable, step: int, options: dict[str, Any]) -> float:
    try:
        got = call(fn, step, names=["step"], **options)
    except Mistake as err:
        if not isinstance(err.__cause__, ZeroDivisionError):
            raise
        raise Mistake(f"{err}\n  hint: step counts from 1 (the first update); step - 1 is 0 there and 0^-0.5 is "
                      "infinite") from err.__cause__
    if isinstance(got, Tensor) and got.numel() == 1:
        return float(got)
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        raise Mistake(f"return the learning rate as a float; noam_lr({step}, ...) returned "
                      f"{type(got).__name__} {describe(got)}")
    return float(got)
