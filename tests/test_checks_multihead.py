"""Tests of notebook 05's checks: check_to_torch_multihead (the stretch), and the head-splitting diagnoses as a
student's own code reaches them. The references and correct alternative formulations pass; realistic wrong
answers, one mistake each, get the diagnosis that names the mistake."""

from __future__ import annotations

import contextlib
import re

import pytest
import torch
from checking import passes, raises
from torch import nn

from transformer_lib import checks
from transformer_lib.attention import scaled_dot_product_attention
from transformer_lib.checks import multihead as mha_checks
from transformer_lib.multihead import MultiHeadAttention, to_torch_multihead


# ------------------------------------------------------------------------------------ to_torch_multihead
def student_to_torch(order="qkv", bias_order=None, transpose_in=False, transpose_out=False, copy_in_bias=True,
                     copy_out_bias=True, copy_out=True, batch_first=True, num_heads=None, bias=None, no_grad=True,
                     share_out=False, blocks=None):
    """A student's to_torch_multihead, written out as in the notebook, with the mistakes switchable."""

    def to_torch_multihead(mha):
        d_model, n_heads = mha.d_model, mha.n_heads
        has_bias = mha.q_proj.bias is not None
        theirs = nn.MultiheadAttention(d_model, num_heads(mha) if num_heads else n_heads,
                                       bias=has_bias if bias is None else bias, batch_first=batch_first)
        proj = {"q": mha.q_proj, "k": mha.k_proj, "v": mha.v_proj}
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            weights = [proj[c].weight for c in order] if blocks is None else [proj[c].weight for c in blocks]
            theirs.in_proj_weight.copy_(torch.cat([w.T if transpose_in else w for w in weights], dim=0))
            if copy_out:
                theirs.out_proj.weight.copy_(mha.out_proj.weight.T if transpose_out else mha.out_proj.weight)
            if has_bias and copy_in_bias:
                theirs.in_proj_bias.copy_(torch.cat([proj[c].bias for c in (bias_order or order)]))
            if has_bias and copy_out_bias and copy_out:
                theirs.out_proj.bias.copy_(mha.out_proj.bias)
        if share_out:
            theirs.out_proj.weight = mha.out_proj.weight  # the same Parameter: training one trains the other
        return theirs

    return to_torch_multihead


def by_parameter_assignment(mha):
    """Correct, another way: new Parameters instead of copy_, the sizes read from the layers."""
    q, k, v, o = mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj
    theirs = nn.MultiheadAttention(q.in_features, mha.n_heads, bias=q.bias is not None, batch_first=True)
    theirs.in_proj_weight = nn.Parameter(torch.cat([q.weight, k.weight, v.weight]).detach().clone())
    theirs.out_proj.weight = nn.Parameter(o.weight.detach().clone())
    if q.bias is not None:
        theirs.in_proj_bias = nn.Parameter(torch.cat([q.bias, k.bias, v.bias]).detach().clone())
        theirs.out_proj.bias = nn.Parameter(o.bias.detach().clone())
    return theirs


def by_state_dict(mha):
    """Correct, another way: build PyTorch's state dict and load it."""
    sd = mha.state_dict()
    theirs = nn.MultiheadAttention(mha.d_model, mha.n_heads, bias="q_proj.bias" in sd, batch_first=True)
    packed = {"in_proj_weight": torch.cat([sd[f"{c}_proj.weight"] for c in "qkv"]),
              "out_proj.weight": sd["out_proj.weight"]}
    if "q_proj.bias" in sd:
        packed |= {"in_proj_bias": torch.cat([sd[f"{c}_proj.bias"] for c in "qkv"]), "out_proj.bias": sd["out_proj.bias"]}
    theirs.load_state_dict(packed)
    return theirs


CORRECT = {"library": to_torch_multihead, "student, copy_": student_to_torch(),
           "new Parameters": by_parameter_assignment, "load_state_dict": by_state_dict}


@pytest.mark.parametrize("fn", CORRECT.values(), ids=CORRECT)
def test_to_torch_multihead_correct_formulations_pass(fn, capsys):
    assert passes(checks.check_to_torch_multihead, fn, capsys) == ["to_torch_multihead: all 4 cases pass"]


# Every copying mistake the catalogue knows (mha_checks.packing_variants), made by a student: the parameter it
# spoils and the start of its diagnosis.
CATALOGUED = [(dict(order=o), "in_proj_weight", "the q, k, v blocks are in the wrong order: in_proj_weight stacks "
               "[W^Q; W^K; W^V]") for o in ("kqv", "qvk", "vkq", "kvq", "vqk")]
CATALOGUED += [(dict(bias_order=o), "in_proj_bias", "the q, k, v blocks are in the wrong order: in_proj_bias stacks "
                "[b^Q; b^K; b^V]") for o in ("kqv", "qvk", "vkq", "kvq", "vqk")]
CATALOGUED += [
    (dict(transpose_in=True), "in_proj_weight", "in_proj_weight holds transposed weights"),
    (dict(copy_in_bias=False), "in_proj_bias", "in_proj_bias is not copied (it still holds PyTorch's initial zeros)"),
    (dict(transpose_out=True), "out_proj.weight", "out_proj.weight is transposed"),
    (dict(copy_out_bias=False), "out_proj.bias", "out_proj.bias is not copied (it still holds PyTorch's initial zeros)"),
]


@pytest.mark.parametrize(("kwargs", "parameter", "message"), CATALOGUED, ids=lambda v: str(v)[:30])
def test_each_catalogued_copying_mistake_is_named_with_its_parameter(kwargs, parameter, message):
    # a large parameter's difference is labelled with its name; a small one (12 numbers or fewer) is shown whole
    with raises(r"case 'self-attention.*" + re.escape(message) + r".*\n  (" + re.escape(parameter) + r" at \[|expected )"):
        checks.check_to_torch_multihead(student_to_torch(**kwargs))


def test_the_catalogue_is_covered():
    mha = MultiHeadAttention(12, 3)
    catalogue = {(name, message) for name, (_, variants) in mha_checks.packing_variants(mha).items()
                 for message, _ in variants}
    reached = {(parameter, message) for _, parameter, message in CATALOGUED}
    assert {(n, m.split(":")[0]) for n, m in catalogue} == {(n, m.split(":")[0]) for n, m in reached}


TORCH_DIAGNOSES = [  # (the student's mistake, what the check says)
    (student_to_torch(order="kqv", copy_in_bias=False, copy_out=False),  # several mistakes: the first is named
     r"case 'self-attention.*the q, k, v blocks are in the wrong order: in_proj_weight"),
    (student_to_torch(blocks="qqv"), r"in_proj_weight\[12:24\] should be a copy of mha.k_proj.weight"),
    (student_to_torch(copy_out=False), r"case 'self-attention.*out_proj.weight should be a copy of mha.out_proj.weight"),
    (student_to_torch(batch_first=False), r"batch_first is False: create it with nn.MultiheadAttention\(\.\.\., "
                                          r"batch_first=True\)"),
    (student_to_torch(num_heads=lambda mha: mha.d_head), r"embed_dim=12, num_heads=4; mha has d_model=12, n_heads=3"),
    (student_to_torch(bias=True), r"case 'no biases \(bias=False\)' \(4 of 4\): mha has no biases, your module has: "
                                  r"create it with bias=False"),
    (student_to_torch(bias=False, copy_in_bias=False, copy_out_bias=False),
     r"case 'self-attention.*mha has biases, your module has none: create it with bias=True"),
    (student_to_torch(bias=False), r"case 'self-attention.*AttributeError: 'NoneType' object has no attribute 'copy_'.*"
                                   r"hint: a bias is None: this mha has biases, so create nn.MultiheadAttention\(\.\.\., "
                                   r"bias=True\)"),
    (student_to_torch(share_out=True), r"your module shares out_proj.weight with mha: copy the values"),
    (student_to_torch(no_grad=False), r"RuntimeError: a leaf Variable that requires grad.*\n  called with "
                                      r"mha=a MultiHeadAttention\n  hint: copy values into parameters inside "
                                      r"`with torch.no_grad\(\):`"),
    (lambda mha: mha, r"return a torch.nn.MultiheadAttention; you returned MultiHeadAttention"),
]


@pytest.mark.parametrize(("student", "match"), TORCH_DIAGNOSES, ids=lambda v: v if isinstance(v, str) else "")
def test_each_to_torch_diagnosis_is_reached_by_its_mistake(student, match):
    with raises(match):
        checks.check_to_torch_multihead(student)


def test_a_module_that_copies_right_but_computes_otherwise_fails_on_its_outputs():
    class Averaging(nn.MultiheadAttention):  # right parameters, but a forward of its own
        def forward(self, *args, **kwargs):
            return super().forward(*args, **{**kwargs, "average_attn_weights": True})

    def averaging(mha):
        theirs = to_torch_multihead(mha)
        theirs.__class__ = Averaging
        return theirs

    with raises(r"case 'self-attention.*weights has shape \(2, 5, 5\) but should have shape \(2, 3, 5, 5\)"):
        checks.check_to_torch_multihead(averaging)


def test_a_crash_gets_a_hint():
    def ignores_bias_false(mha):  # copies the biases without asking whether there are any
        theirs = nn.MultiheadAttention(mha.d_model, mha.n_heads, batch_first=True)
        with torch.no_grad():
            theirs.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight]))
            theirs.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
            theirs.out_proj.weight.copy_(mha.out_proj.weight)
            theirs.out_proj.bias.copy_(mha.out_proj.bias)
        return theirs

    with raises(r"case 'no biases \(bias=False\)'.*your code raised TypeError.*\n  hint: this mha has no biases "
                r"\(bias=False\): create nn.MultiheadAttention\(\.\.\., bias=False\)") as info:
        checks.check_to_torch_multihead(ignores_bias_false)
    assert isinstance(info.value.student_error, TypeError)

    def concatenated_along_features(mha):  # torch.cat(..., dim=1): (d_model, 3 d_model) instead of (3 d_model, d_model)
        theirs = nn.MultiheadAttention(mha.d_model, mha.n_heads, batch_first=True)
        with torch.no_grad():
            theirs.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight], dim=1))
        return theirs

    with raises(r"case 'self-attention.*your code raised RuntimeError.*must match the size.*\n  hint: a shape mismatch"):
        checks.check_to_torch_multihead(concatenated_along_features)


def test_the_check_leaves_the_random_state_and_autograd_as_it_found_them(capsys):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    checks.check_to_torch_multihead(to_torch_multihead)
    assert torch.equal(state, torch.get_rng_state()) and torch.is_grad_enabled()


# --------------------------------------------------------- head splitting, as a student's own code gets it wrong
class InlineHeads(nn.Module):
    """A student's MultiHeadAttention that splits and merges the heads inline, with one switchable mistake."""

    mistake = ""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))

    def split(self, t):
        B, T, _ = t.shape
        if self.mistake == "split view":  # the classic: the right shape, the wrong contents
            return t.view(B, self.n_heads, T, self.d_head)
        return t.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def forward(self, query, key, value, mask=None):
        q, k, v = self.split(self.q_proj(query)), self.split(self.k_proj(key)), self.split(self.v_proj(value))
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, H, T_q, d_head)
        B, H, T_q, d_head = out.shape
        if self.mistake == "merge without transpose":
            merged = out.reshape(B, T_q, H * d_head)
        else:
            merged = out.transpose(1, 2).reshape(B, T_q, H * d_head)  # (B, T_q, d_model)
        return self.out_proj(merged), weights


@pytest.mark.parametrize(("mistake", "match"), [
    ("", None),
    ("split view", r"case 'self-attention.*heads split without transpose: view as \(B, T, H, d_head\), then "
                   r"transpose\(1, 2\)\n  weights at \["),
    ("merge without transpose", r"case 'self-attention.*heads merged without transpose: transpose\(1, 2\)"),
])
def test_inline_head_mistakes_are_named(mistake, match, capsys):
    cls = type("MultiHeadAttention", (InlineHeads,), {"mistake": mistake})
    if match is None:
        assert passes(checks.check_multi_head_attention, cls, capsys)[-1] == "MultiHeadAttention: all 5 cases pass"
        return
    with raises(match):
        checks.check_multi_head_attention(cls)


def test_the_classic_split_mistake_reads_as_the_notebook_shows_it():
    def split_heads_without_transpose(x, n_heads):
        B, T, d_model = x.shape
        return x.view(B, n_heads, T, d_model // n_heads)

    with pytest.raises(AssertionError) as info:
        checks.check_split_heads(split_heads_without_transpose)
    first, *details = str(info.value).splitlines()
    assert first == ("split_heads: case 'B=2, T=5, d_model=12, n_heads=3' (1 of 4): reshaped without transpose: "
                     "view as (B, T, H, d_head), then .transpose(1, 2)")
    assert len(details) == 2 and "expected" in details[0] and "got" in details[1]
