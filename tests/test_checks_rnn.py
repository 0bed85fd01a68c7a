"""Tests of notebook 01's checks (transformer_lib.checks.rnn): the references and correct alternatives pass, every
catalogued diagnosis is reached by the mistake a student would actually write, and unfinished work says so."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checking import passes, raises

from transformer_lib import checks
from transformer_lib.checks import rnn as rnn_checks
from transformer_lib.rnn import additive_attention, rnn_forward


def test_references_pass_with_one_success_line(capsys):
    assert passes(checks.check_rnn_forward, rnn_forward, capsys) == ["rnn_forward: all 5 cases pass"]
    assert passes(checks.check_additive_attention, additive_attention, capsys) == ["additive_attention: all 4 cases pass"]


def test_an_unfinished_exercise_says_so_in_one_line():
    def rnn_forward(x, h0, W_xh, W_hh, b):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match=r"^the exercise is not done yet: write `rnn_forward`"):
        checks.check_rnn_forward(rnn_forward)
    def additive_attention(query, keys, values, W_q, W_k, v_a):
        raise NotImplementedError()

    with pytest.raises(checks.ExerciseNotDone, match="write `additive_attention`"):
        checks.check_additive_attention(additive_attention)


def test_checks_restore_the_global_rng_and_threads(capsys):
    torch.manual_seed(123)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    checks.check_rnn_forward(rnn_forward)
    checks.check_additive_attention(additive_attention)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads


# ------------------------------------------------------------------------------------ Exercise 1.1: the loop
def student_rnn(mistake=None):
    """``rnn_forward`` as a student writes it, with at most one mistake."""
    def rnn_forward(x, h0, W_xh, W_hh, b):
        h = torch.zeros_like(h0) if mistake == "zeros" else h0
        if mistake == "h0 detached":
            h = h0.detach().clone()  # "so that h0 is not modified"
        states = [h0] if mistake == "with h0" else []
        for t in range(x.shape[1]):
            if mistake == "append first":
                states.append(h)  # appended before the update: h0 .. h_{T-1}
            inp = x[:, t] @ (W_xh.T if mistake == "W_xh.T" else W_xh)
            rec = (h0 if mistake == "h0 every step" else h) @ (W_hh.T if mistake == "W_hh.T" else W_hh)
            a = inp + rec + {"bias twice": 2 * b, "no bias": 0}.get(mistake, b)
            act = {"no tanh": lambda z: z, "relu": torch.relu, "sigmoid": torch.sigmoid}.get(mistake, torch.tanh)
            if mistake == "pre-activation":
                states.append(act(a))
                h = a  # carries the value before tanh
                continue
            h = act(a)
            if mistake != "append first":
                states.append(h)
            if mistake == "detach":
                h = h.detach()  # truncated backpropagation through time, by habit
        if mistake == "last only":
            return h
        if mistake == "list":
            return states
        if mistake == "tuple":
            return torch.stack(states, dim=1), h
        return torch.stack(states, dim=0 if mistake == "stack dim 0" else 1)

    return rnn_forward


def rnn_in_place(x, h0, W_xh, W_hh, b):
    h = h0
    states = []
    for t in range(x.shape[1]):
        h[:] = torch.tanh(x[:, t] @ W_xh + h @ W_hh + b)  # overwrites h0 itself
        states.append(h.clone())
    return torch.stack(states, dim=1)


def rnn_under_no_grad(x, h0, W_xh, W_hh, b):
    with torch.no_grad():
        return student_rnn()(x, h0, W_xh, W_hh, b)


def rnn_time_first(x, h0, W_xh, W_hh, b):
    h, states = h0, []
    for t in range(x.shape[0]):  # loops over the batch axis
        h = torch.tanh(x[t] @ W_xh + h @ W_hh + b)
        states.append(h)
    return torch.stack(states, dim=1)


RNN_DIAGNOSES = [
    ("no tanh", r"case 'batched.*no tanh: h_t = tanh"),
    ("relu", r"the activation is tanh, not ReLU"),
    ("sigmoid", r"the activation is tanh, not sigmoid"),
    ("h0 every step", r"h is never updated: every step uses h0"),
    ("zeros", r"the recurrence starts from zeros"),
    ("pre-activation", r"the state carried to the next step must be the one after tanh"),
    ("W_hh.T", r"W_hh transposed: vectors are rows here"),
    ("W_xh.T", r"case 'batched \(B=3, T=6, d_in=d_h=4\)'.*W_xh transposed"),
    ("bias twice", r"the bias is added twice"),
    ("no bias", r"the bias b is missing"),
    ("append first", r"your states are shifted by one step: you returned h0 .. h_\{T-1\}"),
    ("with h0", r"you returned T \+ 1 states, h0 included"),
    ("last only", r"you returned only the last state"),
    ("stack dim 0", r"the states are stacked along dim 0, \(T, B, d_h\)"),
    ("detach", r"case 'gradients flow back.*the states are detached.*the gradient with respect to x"),
    ("h0 detached", r"case 'gradients flow back.*no gradient reaches h0"),
    ("list", r"return one tensor H of shape \(B, T, d_h\); you returned a list: stack the states"),
    ("tuple", r"you returned a tuple of 2: return only H \(B, T, d_h\); the last state is H\[:, -1\]"),
]


@pytest.mark.parametrize(("mistake", "match"), RNN_DIAGNOSES, ids=[m for m, _ in RNN_DIAGNOSES])
def test_each_rnn_diagnosis_is_reached_by_its_mistake(mistake, match):
    with raises(match):
        checks.check_rnn_forward(student_rnn(mistake))


def test_every_catalogued_rnn_diagnosis_is_reached():
    """A diagnosis that no realistic mistake reaches is dead code: each one is produced by one of the mistakes above."""
    produced = []
    for mistake, _ in RNN_DIAGNOSES:
        with pytest.raises(AssertionError) as info:
            checks.check_rnn_forward(student_rnn(mistake))
        produced.append(str(info.value))
    for message, _, _ in rnn_checks.RNN_MISTAKES:
        assert any(message in text for text in produced), message


@pytest.mark.parametrize(("fn", "match"), [
    (rnn_in_place, r"your code changed its input `h0` in place"),
    (rnn_under_no_grad, r"case 'gradients flow back.*your H carries no gradient"),
    (rnn_time_first, r"case 'batched.*your code raised RuntimeError.*called with x=\(3, 6, 4\) float32.*hint: a shape"),
])
def test_other_rnn_mistakes_are_explained(fn, match):
    with raises(match):
        checks.check_rnn_forward(fn)


def rnn_precomputed_inputs(x, h0, W_xh, W_hh, b):
    inputs = x @ W_xh + b  # (B, T, d_h) the input terms of every step at once
    H = x.new_zeros(x.shape[0], x.shape[1], h0.shape[1])
    h = h0
    for t in range(x.shape[1]):
        h = torch.tanh(inputs[:, t] + h @ W_hh)
        H[:, t] = h
    return H


def rnn_linear_and_cat(x, h0, W_xh, W_hh, b):
    h, out = h0, []
    for x_t in x.unbind(dim=1):
        h = torch.tanh(F.linear(x_t, W_xh.T) + F.linear(h, W_hh.T, b))
        out.append(h.unsqueeze(1))
    return torch.cat(out, dim=1)


def rnn_einsum(x, h0, W_xh, W_hh, b):
    h, states = h0, []
    for t in range(x.size(1)):
        h = (torch.einsum("bi,ih->bh", x[:, t], W_xh) + torch.einsum("bh,hk->bk", h, W_hh) + b).tanh()
        states += [h]
    return torch.stack(states, 1)


@pytest.mark.parametrize("fn", [student_rnn(), rnn_precomputed_inputs, rnn_linear_and_cat, rnn_einsum],
                         ids=["plain loop", "inputs precomputed, preallocated H", "F.linear + cat", "einsum"])
def test_rnn_alternatives_pass(fn, capsys):
    assert passes(checks.check_rnn_forward, fn, capsys) == ["rnn_forward: all 5 cases pass"]


# ------------------------------------------------------------------------ Exercise 1.2: additive attention
def student_additive(mistake=None):
    """``additive_attention`` as a student writes it, with at most one mistake."""
    def additive_attention(query, keys, values, W_q, W_k, v_a):
        Wq, Wk = (W_k, W_q) if mistake == "swapped" else (W_q, W_k)
        if mistake == "transposed":
            Wq, Wk = W_q.T, W_k.T
        pre = (query @ Wq).unsqueeze(1) + keys @ Wk  # (B, T, d_a)
        hidden = pre if mistake == "no tanh" else torch.tanh(pre)
        if mistake == "dot":
            scores = (keys @ Wk) @ (query @ Wq).unsqueeze(-1)  # (B, T, 1)
            scores = scores.squeeze(-1)
        elif mistake in ("sum", "mean"):
            scores = getattr(hidden, mistake)(dim=-1)
        elif mistake == "tanh outside":
            scores = torch.tanh(pre @ v_a)
        elif mistake == "no v_a":
            scores = hidden  # (B, T, d_a)
        else:
            scores = hidden @ v_a  # (B, T)
        if mistake == "no softmax":
            weights = scores
        elif mistake == "global normalisation":
            weights = scores.exp() / scores.exp().sum()
        else:
            weights = torch.softmax(scores, dim=0 if mistake == "dim 0" else 1)
        if mistake == "no v_a":
            return (weights * values.mean(-1, keepdim=True)).sum(1), weights
        source = keys if mistake == "keys" else values
        if mistake == "unweighted":
            context = values.mean(dim=1)
        elif mistake == "unsqueezed context":
            context = weights.unsqueeze(1) @ source  # (B, 1, d_v)
        else:
            context = (weights.unsqueeze(1) @ source).squeeze(1)
        if mistake == "unsqueezed weights":
            weights = weights.unsqueeze(1)
        if mistake == "context only":
            return context
        return (weights, context) if mistake == "order" else (context, weights)

    return additive_attention


ADDITIVE_DIAGNOSES = [
    ("no tanh", r"tanh missing: score_j = v_a\^T tanh"),
    ("tanh outside", r"tanh in the wrong place"),
    ("sum", r"v_a not applied: .*not by a sum"),
    ("mean", r"v_a not applied: .*not with a mean"),
    ("dot", r"that is a dot product of the projections \(multiplicative attention\)"),
    ("dim 0", r"softmax over the wrong axis: each query's weights are over its T keys"),
    ("no softmax", r"the weights must be a softmax of the scores over the keys"),
    ("swapped", r"W_q projects the query and W_k the keys; you swapped them"),
    ("transposed", r"vectors are rows here: query @ W_q"),
    ("keys", r"the context is the weighted average of the values, not of the keys"),
    ("global normalisation", r"weights do not sum to 1 over the key axis"),
    ("unweighted", r"the weights are right but the context is not"),
    ("unsqueezed weights", r"weights has shape \(2, 1, 6\) but should have shape \(2, 6\): one weight per key, "
                           r"\(B, T\): squeeze"),
    ("no v_a", r"weights has shape \(2, 6, 4\).*one score per key: reduce each key's hidden layer"),
    ("unsqueezed context", r"context has shape \(2, 1, 4\).*: squeeze the middle dim of \(B, 1, T\) @ \(B, T, d_v\)"),
    ("order", r"you returned \(weights, context\): return \(context, weights\), in that order"),
    ("context only", r"return a tuple \(context, weights\); you returned a tensor of shape \(2, 4\)"),
]


@pytest.mark.parametrize(("mistake", "match"), ADDITIVE_DIAGNOSES, ids=[m for m, _ in ADDITIVE_DIAGNOSES])
def test_each_additive_diagnosis_is_reached_by_its_mistake(mistake, match):
    with raises(match):
        checks.check_additive_attention(student_additive(mistake))


def test_every_catalogued_additive_diagnosis_is_reached():
    produced = []
    for mistake, _ in ADDITIVE_DIAGNOSES:
        with pytest.raises(AssertionError) as info:
            checks.check_additive_attention(student_additive(mistake))
        produced.append(str(info.value))
    for message, _ in rnn_checks.ADDITIVE_MISTAKES:
        assert any(message in text for text in produced), message


def additive_einsum(query, keys, values, W_q, W_k, v_a):
    hidden = torch.tanh(torch.einsum("bq,qa->ba", query, W_q)[:, None, :] + torch.einsum("btk,ka->bta", keys, W_k))
    weights = F.softmax(torch.einsum("bta,a->bt", hidden, v_a), dim=-1)
    return torch.einsum("bt,btv->bv", weights, values), weights


def additive_one_key_at_a_time(query, keys, values, W_q, W_k, v_a):
    scores = torch.stack([torch.tanh(query @ W_q + keys[:, j] @ W_k) @ v_a for j in range(keys.shape[1])], dim=1)
    weights = scores.softmax(dim=1)
    return (weights.unsqueeze(-1) * values).sum(dim=1), weights


def additive_bmm(query, keys, values, W_q, W_k, v_a):
    scores = (torch.tanh(query.matmul(W_q)[:, None] + keys.matmul(W_k)) * v_a).sum(-1)
    weights = torch.exp(scores - scores.amax(-1, keepdim=True))
    weights = weights / weights.sum(-1, keepdim=True)
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


@pytest.mark.parametrize("fn", [student_additive(), additive_einsum, additive_one_key_at_a_time, additive_bmm],
                         ids=["as in the hints", "einsum", "one key at a time", "bmm, softmax by hand"])
def test_additive_alternatives_pass(fn, capsys):
    assert passes(checks.check_additive_attention, fn, capsys) == ["additive_attention: all 4 cases pass"]
