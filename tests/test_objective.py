"""Tests of transformer_lib.objective: label smoothing (parity with F.cross_entropy), Eq. (3) and its scheduler,
Adam with the paper's hyper-parameters."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from transformer_lib.objective import label_smoothed_cross_entropy, make_optimizer, noam_lr, noam_scheduler

torch.set_num_threads(1)


def batch(B=3, T=6, V=11, pad_id=0, seed=0, dtype=torch.float32):
    """Logits (B, T, V) and a target (B, T) with sentences of different lengths, padded with pad_id."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(B, T, V, generator=g, dtype=dtype)  # (B, T, V)
    target = torch.randint(0, V, (B, T), generator=g)  # (B, T)
    target[target == pad_id] = (pad_id + 1) % V  # real tokens are never pad_id...
    for b, length in enumerate(torch.linspace(T, 1, B).long().tolist()):
        target[b, length:] = pad_id  # ...except the padding at the end
    return logits, target


def torch_loss(logits, target, pad_id, smoothing, reduction):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=pad_id,
                           label_smoothing=smoothing, reduction=reduction)


# -- label_smoothed_cross_entropy -------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("flat", [False, True], ids=["3-D", "2-D"])
def test_parity_with_torch_cross_entropy(flat, smoothing, reduction):
    logits, target = batch(dtype=torch.float64)
    if flat:
        logits, target = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)  # (N, V), (N,)
    got = label_smoothed_cross_entropy(logits, target, smoothing=smoothing, reduction=reduction)
    assert got.shape == () and got.dtype == torch.float64
    assert_close(got, torch_loss(logits, target, 0, smoothing, reduction))


@pytest.mark.parametrize("pad_id", [3, -100])
def test_parity_with_another_pad_id(pad_id):
    logits, target = batch(pad_id=pad_id % 11)
    target[target == pad_id % 11] = pad_id  # -100: torch's default ignore_index, not a class
    got = label_smoothed_cross_entropy(logits, target, pad_id=pad_id)
    assert_close(got, torch_loss(logits, target, pad_id, 0.1, "mean"))


def test_gradient_parity():
    logits, target = batch(dtype=torch.float64)
    ours, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    label_smoothed_cross_entropy(ours, target).backward()
    torch_loss(theirs, target, 0, 0.1, "mean").backward()
    assert_close(ours.grad, theirs.grad)


def test_padding_is_ignored():
    logits, target = batch()
    x = logits.clone().requires_grad_()
    loss = label_smoothed_cross_entropy(x, target)
    loss.backward()
    pad = target == 0  # (B, T)
    assert pad.any() and bool((x.grad[pad] == 0).all())
    changed = logits.clone()
    changed[pad] = 100 * torch.randn(int(pad.sum()), logits.shape[-1])  # anything at the padded positions
    assert torch.equal(label_smoothed_cross_entropy(changed, target), loss.detach())


def test_mean_is_over_real_tokens_and_smoothing_zero_is_cross_entropy():
    logits, target = batch()
    real = int((target != 0).sum())
    assert_close(label_smoothed_cross_entropy(logits, target, reduction="sum") / real,
                 label_smoothed_cross_entropy(logits, target))
    keep = target != 0
    plain = F.cross_entropy(logits[keep], target[keep])
    assert_close(label_smoothed_cross_entropy(logits, target, smoothing=0.0), plain)


def test_by_hand():
    """V = 2, one token with p = softmax([0, log 3]) = [1/4, 3/4] and target 1; eps = 0.2 puts 0.9 on class 1."""
    logits, target = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
    assert label_smoothed_cross_entropy(logits, target, smoothing=0.2, pad_id=-1).item() == pytest.approx(expected)


def test_all_padding_gives_zero_not_nan():
    logits = torch.randn(2, 4, 5, requires_grad=True)
    target = torch.zeros(2, 4, dtype=torch.long)
    for reduction in ("mean", "sum"):
        loss = label_smoothed_cross_entropy(logits, target, reduction=reduction)
        assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert torch.isnan(torch_loss(logits, target, 0, 0.1, "mean"))  # what torch's mean gives: 0/0
    assert label_smoothed_cross_entropy(torch.randn(0, 5), torch.zeros(0, dtype=torch.long)).item() == 0.0


def test_large_logits_stay_finite():
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, -900.0, 500.0]])
    target = torch.tensor([1, 2])
    loss = label_smoothed_cross_entropy(logits, target)
    assert torch.isfinite(loss)
    assert_close(loss, torch_loss(logits, target, 0, 0.1, "mean"))


def test_bf16_autocast_on_cpu_gives_a_float32_loss_close_to_fp32():
    torch.manual_seed(0)
    proj = nn.Linear(16, 50)
    h, target = torch.randn(4, 7, 16), torch.randint(1, 50, (4, 7))
    target[:, 5:] = 0
    reference = label_smoothed_cross_entropy(proj(h), target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = proj(h)  # (B, T, V)
        loss = label_smoothed_cross_entropy(logits, target)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    assert_close(loss, reference, rtol=2e-2, atol=2e-2)
    assert_close(loss, label_smoothed_cross_entropy(logits.float(), target))  # log-softmax in float32
    loss.backward()
    assert proj.weight.grad is not None and torch.isfinite(proj.weight.grad).all()


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    ((torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long)), {}, ValueError,
     r"target must have the shape of logits without its last dim V: logits \(2, 3, 5\) needs target \(2, 3\); "
     r"got target \(2, 4\)"),
    ((torch.randn(2, 3, 5), torch.zeros(2, 3)), {}, TypeError, r"target must be a torch.long tensor.*target.long\(\)"),
    ((torch.randn(2, 3, 5), torch.zeros(2, 3, dtype=torch.int32)), {}, TypeError, r"got dtype torch.int32"),
    ((torch.randint(0, 5, (2, 5)), torch.zeros(2, dtype=torch.long)), {}, TypeError,
     r"logits must be a floating-point tensor"),
    ((torch.randn(5), torch.tensor(1)), {}, ValueError, r"logits must have shape \(B, T, V\) or \(N, V\)"),
    ((torch.randn(2, 5), [1, 2]), {}, TypeError, r"target must be a torch.Tensor"),
    ((torch.randn(2, 5), torch.tensor([1, 5])), {}, ValueError,
     r"target contains class ids outside \[0, V\) = \[0, 5\) \(besides pad_id = 0\); got min 1, max 5"),
    ((torch.randn(2, 5), torch.tensor([-1, 2])), {}, ValueError, r"got min -1, max 2"),
    ((torch.randn(2, 5), torch.tensor([1, 2])), {"smoothing": 1.0}, ValueError,
     r"smoothing must be a float in \[0, 1\)"),
    ((torch.randn(2, 5), torch.tensor([1, 2])), {"smoothing": -0.1}, ValueError, r"smoothing must be a float"),
    ((torch.randn(2, 5), torch.tensor([1, 2])), {"reduction": "none"}, ValueError,
     r"reduction must be 'mean' or 'sum'; got 'none'"),
    ((torch.randn(2, 5), torch.tensor([1, 2])), {"pad_id": 0.5}, TypeError, r"pad_id must be an int"),
])
def test_bad_inputs_raise_clear_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        label_smoothed_cross_entropy(*args, **kwargs)


def test_ids_are_not_read_off_the_cpu():
    """On an accelerator .min()/.max() would make every step wait: the meta device has no values at all."""
    logits = torch.empty(2, 3, 5, device="meta")
    target = torch.empty(2, 3, dtype=torch.long, device="meta")
    assert label_smoothed_cross_entropy(logits, target).shape == ()


# -- noam_lr, the scheduler, the optimizer ------------------------------------------------------------------


def test_noam_lr_by_hand():
    # d_model=512, warmup=4000: peak (512 * 4000)^-0.5; 4 * warmup later it has halved (1/sqrt(step))
    assert noam_lr(4000, d_model=512) == pytest.approx(1 / math.sqrt(2_048_000))
    assert noam_lr(16000, d_model=512) == pytest.approx(noam_lr(4000, d_model=512) / 2)
    assert noam_lr(1, d_model=512) == pytest.approx(512**-0.5 * 4000**-1.5)
    # d_model=64 (1/8), warmup=100 (100^-1.5 = 1/1000), factor=2
    assert noam_lr(25, d_model=64, warmup=100, factor=2.0) == pytest.approx(2 / 8 * 25 / 1000)  # 0.00625
    assert noam_lr(100, d_model=64, warmup=100, factor=2.0) == pytest.approx(0.025)
    assert noam_lr(400, d_model=64, warmup=100, factor=2.0) == pytest.approx(2 / 8 / 20)  # 0.0125
    assert isinstance(noam_lr(7, d_model=64), float)


@pytest.mark.parametrize(("d_model", "warmup"), [(512, 4000), (64, 10), (128, 1)])
def test_noam_lr_rises_linearly_then_peaks_at_warmup(d_model, warmup):
    rates = [noam_lr(s, d_model=d_model, warmup=warmup) for s in range(1, 3 * warmup + 10)]
    assert rates.index(max(rates)) + 1 == warmup
    assert rates[:warmup] == pytest.approx([rates[0] * s for s in range(1, warmup + 1)])  # linear warm-up


def test_noam_lr_bad_inputs():
    with pytest.raises(ValueError, match=r"step counts updates from 1.*got 0"):
        noam_lr(0, d_model=512)
    with pytest.raises(TypeError, match="step must be an int"):
        noam_lr(1.5, d_model=512)
    with pytest.raises(ValueError, match="d_model must be a positive int"):
        noam_lr(1, d_model=0)
    with pytest.raises(ValueError, match="warmup must be a positive int"):
        noam_lr(1, d_model=8, warmup=0)
    with pytest.raises(ValueError, match="factor must be a positive number"):
        noam_lr(1, d_model=8, factor=-1.0)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'd_model'"):
        noam_lr(1)


def test_scheduler_lr_sequence_equals_noam_lr():
    model = nn.Linear(3, 2)
    optimizer = make_optimizer(model)
    scheduler = noam_scheduler(optimizer, d_model=64, warmup=10, factor=2.0)
    seen = []
    for _ in range(30):
        seen.append(optimizer.param_groups[0]["lr"])  # the rate this update uses
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    assert seen == pytest.approx([noam_lr(k, d_model=64, warmup=10, factor=2.0) for k in range(1, 31)])
    # resuming from a checkpoint gives the same rate
    state = scheduler.state_dict()
    optimizer2 = make_optimizer(nn.Linear(3, 2))
    scheduler2 = noam_scheduler(optimizer2, d_model=64, warmup=10, factor=2.0)
    scheduler2.load_state_dict(state)
    scheduler.step()
    scheduler2.step()
    assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == pytest.approx(
        noam_lr(32, d_model=64, warmup=10, factor=2.0))


def test_scheduler_refuses_a_base_lr_other_than_one():
    optimizer = make_optimizer(nn.Linear(3, 2), lr=3e-4)
    with pytest.raises(ValueError, match=r"create the optimizer with lr=1.0.*got lr=0.0003 in param group 0"):
        noam_scheduler(optimizer, d_model=64)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        noam_scheduler(nn.Linear(3, 2), d_model=64)
    with pytest.raises(ValueError, match="warmup must be a positive int"):
        noam_scheduler(make_optimizer(nn.Linear(3, 2)), d_model=64, warmup=0)


def test_make_optimizer_has_the_papers_hyper_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    optimizer = make_optimizer(model)
    assert isinstance(optimizer, torch.optim.Adam)
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.98) and group["eps"] == 1e-9 and group["lr"] == 1.0
    assert {id(p) for p in group["params"]} == {id(p) for p in model.parameters()}
    assert make_optimizer(model, lr=0.5).param_groups[0]["lr"] == 0.5
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        make_optimizer(list(model.parameters()))
    with pytest.raises(ValueError, match="lr must be a positive number"):
        make_optimizer(model, lr=0)
