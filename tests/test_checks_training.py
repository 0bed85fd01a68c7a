"""Tests of notebook 10's checks, check_label_smoothed_cross_entropy and check_noam_lr: the references and correct
alternative formulations pass; realistic wrong answers, one mistake each, get the diagnosis that names it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from checking import passes, raises

from transformer_lib import checks
from transformer_lib.objective import label_smoothed_cross_entropy, noam_lr


# ----------------------------------------------------------------------------- label_smoothed_cross_entropy
def student(*, spread="V", weights="ok", pad="ignore", reduce="arg", log="log_softmax", flatten="same",
            out="tensor"):
    """A student's solution with one switch turned to a mistake; the defaults give a correct one."""
    def fn(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean"):
        eps, V = smoothing, logits.shape[-1]
        x = logits.reshape(-1, V)  # (N, V)
        t = (target.transpose(0, 1) if flatten == "time-major" and target.ndim == 2 else target).reshape(-1)
        lp = {"log_softmax": lambda: torch.log_softmax(x, dim=-1), "log of softmax": lambda: torch.softmax(x, -1).log(),
              "logsumexp": lambda: x - x.logsumexp(-1, keepdim=True),
              "dim=1": lambda: torch.log_softmax(logits, dim=1).reshape(-1, V)}[log]()  # (N, V)
        keep = t != (0 if pad == "zero" else pad_id)  # (N,)
        nll = -lp.gather(1, t.clamp(min=0)[:, None]).squeeze(1)  # (N,)
        others = -lp.masked_fill(F.one_hot(t.clamp(min=0), V).bool(), 0.0)  # (N, V) true class left out
        uniform = {"V": -lp.mean(-1), "V-1": others.sum(-1) / (V - 1), "V excl": others.sum(-1) / V,
                   "sum": -lp.sum(-1)}[spread]  # (N,)
        a, b = {"ok": (1 - eps, eps), "none": (1, 0), "minus": (1 - eps, -eps), "unscaled": (1, eps),
                "swapped": (eps, 1 - eps)}[weights]
        per = a * nll + b * uniform  # (N,)
        if pad == "nll only":
            per = a * nll * keep + b * uniform
        elif pad != "count":
            per = per * keep
        count = keep.sum() if pad != "count" else torch.tensor(t.numel())
        mode = reduction if reduce in ("arg", "no clamp") else reduce
        if mode == "none":
            return per
        if mode == "sentence":
            return (per.view(target.shape).sum(-1) / keep.view(target.shape).sum(-1).clamp(min=1)).mean()
        total = per.sum()
        loss = {"sum": total, "mean": total / (count if reduce == "no clamp" else count.clamp(min=1)),
                "N": total / t.numel()}[mode]
        return {"tensor": loss, "item": loss.item() if loss.numel() == 1 else loss, "detach": loss.detach()}[out]
    return fn


def one_hot_distribution(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean"):
    V = logits.shape[-1]
    lp = F.log_softmax(logits.view(-1, V), dim=-1)  # (N, V)
    t = target.view(-1)  # (N,)
    q = torch.full_like(lp, smoothing / V).scatter(1, t[:, None], 1 - smoothing + smoothing / V)  # (N, V)
    loss = -(q * lp).sum(-1)[t != pad_id]  # (N_real,)
    return loss.sum() if reduction == "sum" else loss.sum() / max(len(loss), 1)


def torch_with_guard(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean"):
    if not (target != pad_id).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.flatten(0, -2), target.flatten(), ignore_index=pad_id, label_smoothing=smoothing,
                           reduction=reduction)


LS_CORRECT = {
    "library": label_smoothed_cross_entropy,
    "student": student(),
    "logsumexp": student(log="logsumexp"),
    "one-hot distribution": one_hot_distribution,
    "F.cross_entropy with an all-pad guard": torch_with_guard,
}


@pytest.mark.parametrize("fn", LS_CORRECT.values(), ids=LS_CORRECT)
def test_label_smoothing_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_label_smoothed_cross_entropy, fn, capsys) == [
        "label_smoothed_cross_entropy: all 9 cases pass"]


def unflattened(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean"):  # written for (N, V) only
    lp = torch.log_softmax(logits, dim=-1)  # (N, V)
    nll = -lp[torch.arange(len(target)), target]  # (N,)
    per = (1 - smoothing) * nll - smoothing * lp.mean(-1)  # (N,)
    keep = target != pad_id  # (N,)
    total = (per * keep).sum()
    return total if reduction == "sum" else total / keep.sum().clamp(min=1)


LS_MISTAKES = [  # (id, a realistic wrong implementation, the diagnosis it must get)
    ("padding not ignored", student(pad="count"), r"case '2-D with padding.*padding is not ignored"),
    ("divided by all positions", student(reduce="N"), r"averaged over all positions, padding included"),
    ("only the NLL masked", student(pad="nll only"), r"only the NLL term ignores the padding"),
    ("pad_id hard-coded", student(pad="zero"), r"case 'pad_id=3.*you ignored pad_id \(hard-coded 0\?\)"),
    ("mean per sentence", student(reduce="sentence"), r"case '3-D.*averaged per sentence, then over the batch"),
    ("eps / (V-1)", student(spread="V-1"),
     r"case '2-D \(N=6.*spread eps over the V-1 wrong classes.*torch's convention.*eps/V on EVERY class"
     r".*expected \d.*got +\d"),
    ("true class left out of eps / V", student(spread="V excl"), r"the uniform term leaves out the true class"),
    ("sum over V", student(spread="sum"), r"the uniform term is the MEAN over the V classes"),
    ("smoothing forgotten", student(weights="none"), r"no smoothing: your loss is the plain cross-entropy"),
    ("wrong sign", student(weights="minus"), r"the smoothing term has the wrong sign"),
    ("NLL not scaled", student(weights="unscaled"), r"scale the NLL by \(1 - smoothing\)"),
    ("weights swapped", student(weights="swapped"), r"the weights are swapped"),
    ("always the sum", student(reduce="sum"), r"you returned the sum: reduction='mean'"),
    ("always the mean", student(reduce="mean"), r"case 'reduction='sum'.*you returned the mean"),
    ("log of softmax", student(log="log of softmax"),
     r"case 'large logits.*nan or inf.*use torch.log_softmax .*not softmax\(...\).log\(\)"),
    ("0/0 on all padding", student(reduce="no clamp"),
     r"case 'no real token.*nan or inf.*must give 0, not 0/0 = NaN.*expected 0.0\s+got +nan"),
    ("torch without a guard", lambda logits, target, *, pad_id=0, smoothing=0.1, reduction="mean": F.cross_entropy(
        logits.flatten(0, -2), target.flatten(), ignore_index=pad_id, label_smoothing=smoothing, reduction=reduction),
     r"case 'no real token.*must give 0, not 0/0"),
    ("per-position losses", student(reduce="none"),
     r"has shape \(6,\) but should have shape \(\): return a scalar"),
    (".item()", student(out="item"), r"return the loss as a 0-dim tensor, not a Python number \(float; .item\(\)\?\)"),
    ("detached", student(out="detach"), r"case 'gradient.*your loss carries no gradient"),
    ("target flattened time-major", student(flatten="time-major"),
     r"case '3-D.*right for \(N, V\) logits but not for \(B, T, V\)"),
    ("(B, T, V) not flattened", unflattened,
     r"case '3-D.*your code raised IndexError.*hint: logits \(B, T, V\) and target \(B, T\) are B\*T classifications"),
    ("log-softmax over dim=1", student(log="dim=1"), r"case '3-D.*log-softmax over the wrong axis"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in LS_MISTAKES], ids=[m[0] for m in LS_MISTAKES])
def test_label_smoothing_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_label_smoothed_cross_entropy(fn)


def test_label_smoothing_failure_shows_case_and_values():
    with pytest.raises(AssertionError) as err:
        checks.check_label_smoothed_cross_entropy(student(spread="V-1"))
    lines = str(err.value).splitlines()
    assert lines[0].startswith("label_smoothed_cross_entropy: case '2-D (N=6, V=5), no padding, defaults")
    assert lines[1].strip().startswith("expected") and lines[2].strip().startswith("got") and len(lines) == 3


def test_label_smoothing_not_done_and_in_place():
    def label_smoothed_cross_entropy(logits, target, *, pad_id=0, smoothing=0.1, reduction="mean"):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `label_smoothed_cross_entropy` in place of"):
        checks.check_label_smoothed_cross_entropy(label_smoothed_cross_entropy)

    def in_place(logits, target, **kw):
        logits -= logits.max(-1, keepdim=True).values  # "stabilise" the input itself
        return student()(logits, target, **kw)

    with raises(r"changed its input `logits` in place"):
        checks.check_label_smoothed_cross_entropy(in_place)


# ----------------------------------------------------------------------------------------------- noam_lr
def noam(pick=min, warm=-1.5, decay=-0.5, d_exp=-0.5, shift=0, precedence=False, use_factor=True, warmup_as=None,
         d_model_as=None, slope=1.0):
    """A student's noam_lr with one switch turned to a mistake; the defaults give a correct one."""
    def fn(step, *, d_model, warmup=4000, factor=1.0):
        s, w, d = step + shift, warmup_as or warmup, d_model_as or d_model
        warm_term = (s * w) ** warm if precedence else slope * s * w**warm
        return (factor if use_factor else 1.0) * d**d_exp * pick(s**decay, warm_term)
    return fn


def torch_noam(step, *, d_model, warmup=4000, factor=1.0):
    s = torch.tensor(float(step))
    return factor * torch.rsqrt(torch.tensor(float(d_model))) * torch.minimum(s.rsqrt(), s * warmup**-1.5)


NOAM_CORRECT = {
    "library": noam_lr,
    "student": noam(),
    "math.sqrt and a branch": lambda step, *, d_model, warmup=4000, factor=1.0: factor / math.sqrt(d_model) * (
        step / warmup**1.5 if step < warmup else 1 / math.sqrt(step)),
    "torch, 0-dim tensor": torch_noam,
    "step 0 treated as 1": lambda step, **kw: noam_lr(max(step, 1), **kw),
}


@pytest.mark.parametrize("fn", NOAM_CORRECT.values(), ids=NOAM_CORRECT)
def test_noam_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_noam_lr, fn, capsys) == ["noam_lr: all 4 cases pass"]


NOAM_MISTAKES = [
    ("max", noam(pick=max), r"case 'd_model=512, defaults.*min and max swapped"),
    ("warmup^-0.5", noam(warm=-0.5), r"the warm-up term is step \* warmup\^-1.5, not step \* warmup\^-0.5"),
    ("step / warmup", noam(warm=-1), r"not step / warmup"),
    ("precedence", noam(precedence=True), r"\(step \* warmup\)\^-1.5 is not step \* warmup\^-1.5"),
    ("no d_model", noam(d_exp=0), r"missing the factor d_model\^-0.5"),
    ("sqrt(d_model)", noam(d_exp=0.5), r"you multiplied by sqrt\(d_model\)"),
    ("1/d_model", noam(d_exp=-1), r"not 1/d_model"),
    ("sqrt(step)", noam(decay=0.5), r"the decay term is step\^-0.5 = 1/sqrt\(step\), not sqrt\(step\)"),
    ("1/step", noam(decay=-1), r"not 1/step"),
    ("step + 1", noam(shift=1), r"off by one.*not step \+ 1.*expected \[.*\]\s+got +\["),
    ("step - 1 in Python", noam(shift=-1),
     r"case 'd_model=512.*your code raised ZeroDivisionError.*hint: step counts from 1"),
    ("step - 1 in torch", lambda step, **kw: torch_noam(step - 1, **kw) if step > 1 else torch.tensor(0.0),
     r"off by one.*not step - 1"),
    ("factor ignored", noam(use_factor=False), r"case 'd_model=256, warmup=100, factor=2.0.*you ignored factor"),
    ("warmup hard-coded", noam(warmup_as=4000), r"case 'd_model=64, warmup=10.*you ignored warmup"),
    ("d_model hard-coded", noam(d_model_as=512), r"case 'd_model=64.*you ignored d_model \(hard-coded 512\?\)"),
    ("peak moved", noam(slope=2.0), r"the rate must peak at step == warmup \(4000\).*yours peaks at step 3999"),
    ("returns a list", lambda step, **kw: [noam_lr(step, **kw)], r"return the learning rate as a float"),
]


@pytest.mark.parametrize(("fn", "match"), [m[1:] for m in NOAM_MISTAKES], ids=[m[0] for m in NOAM_MISTAKES])
def test_noam_each_diagnosis_is_reached(fn, match):
    with raises(match):
        checks.check_noam_lr(fn)


def test_noam_not_done_is_one_line():
    def noam_lr(step, *, d_model, warmup=4000, factor=1.0):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `noam_lr` in place of"):
        checks.check_noam_lr(noam_lr)


# -- the stretch: smoothing_floor -----------------------------------------------------------------------

def floor_reference(V, eps):
    true, other = 1 - eps + eps / V, eps / V
    return -true * math.log(true) - ((V - 1) * other * math.log(other) if other > 0 else 0.0)


def test_smoothing_floor_passes_a_correct_version_and_matches_gradient_descent(capsys):
    passes(checks.check_smoothing_floor, floor_reference, capsys)
    z = torch.zeros(1, 50, requires_grad=True)  # the floor is the lowest loss gradient descent reaches
    opt = torch.optim.Adam([z], lr=0.5)
    for _ in range(400):
        loss = label_smoothed_cross_entropy(z, torch.tensor([3]), smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() == pytest.approx(floor_reference(50, 0.1), abs=1e-4)


def _xlogx(p):
    return p * math.log(p) if p > 0 else 0.0


@pytest.mark.parametrize("wrong, message", [
    (lambda V, e: -_xlogx(1 - e) - (V - 1) * _xlogx(e / (V - 1)), "over the V - 1 wrong tokens"),
    (lambda V, e: floor_reference(V, e) / math.log(2), "in bits"),
    (lambda V, e: -floor_reference(V, e), "sign is flipped"),
    (lambda V, e: -_xlogx(1 - e) - (V - 1) * _xlogx(e / V), "misses its own share"),
])
def test_smoothing_floor_diagnoses(wrong, message):
    with raises(message):
        checks.check_smoothing_floor(wrong)


def test_smoothing_floor_explains_log_zero():
    def naive(V, e):
        true, other = 1 - e + e / V, e / V
        return -true * math.log(true) - (V - 1) * other * math.log(other)  # log(0) when e == 0
    with raises("0 \\* log 0 counts as 0"):
        checks.check_smoothing_floor(naive)
