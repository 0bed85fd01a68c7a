"""Checks of notebook 01's exercises (recurrent networks), with their catalogue of typical mistakes.

``rnn_forward`` is compared with ``torch.nn.RNN`` (weights copied in: ``W_xh = weight_ih_l0.T``,
``W_hh = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0``), its gradients included;
``additive_attention`` with the library's :func:`transformer_lib.rnn.additive_attention`.
Each mistake is simulated by :func:`rnn_variant` or :func:`additive_variant`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import rnn
from ._core import Mistake, call, close, compare, describe, run_cases, seeded, weight_rows

__all__ = ["check_rnn_forward", "check_additive_attention"]


# ------------------------------------------------------------------------------- Exercise 1.1: the RNN loop
def rnn_variant(x: Tensor, h0: Tensor, W_xh: Tensor, W_hh: Tensor, b: Tensor, *, act: Callable = torch.tanh,
                start: str = "h0", carry: str = "state", W_xh_T: bool = False, W_hh_T: bool = False,
                bias: float = 1.0, detach: bool = False) -> Tensor:
    """The Elman RNN with switchable mistakes; returns every state ``h_0 .. h_T``, ``(B, T + 1, d_h)``."""
    W_xh, W_hh = (W_xh.T if W_xh_T else W_xh), (W_hh.T if W_hh_T else W_hh)
    h = torch.zeros_like(h0) if start == "zeros" else h0  # (B, d_h)
    states = [h0]
    for t in range(x.shape[1]):
        prev = {"state": h, "h0": h0}.get(carry, h)  # carry="h0": the state is never updated
        a = x[:, t] @ W_xh + prev @ W_hh + bias * b  # (B, d_h) the pre-activation
        h_out = act(a)
        h = a if carry == "pre-activation" else h_out  # carry="pre-activation": tanh only on what is returned
        h = h.detach() if detach else h
        states.append(h_out)
    return torch.stack(states, dim=1)  # (B, T + 1, d_h)


RNN_MISTAKES = [  # (diagnosis, rnn_variant switches, which states are returned)
    ("no tanh: h_t = tanh(x_t W_xh + h_{t-1} W_hh + b); without it the state is linear in the inputs",
     dict(act=lambda a: a), "h1..hT"),
    ("the activation is tanh, not ReLU", dict(act=torch.relu), "h1..hT"),
    ("the activation is tanh, not sigmoid", dict(act=torch.sigmoid), "h1..hT"),
    ("h is never updated: every step uses h0; the state must carry over (h = ... inside the loop)",
     dict(carry="h0"), "h1..hT"),
    ("the recurrence starts from zeros: start from the h0 you are given", dict(start="zeros"), "h1..hT"),
    ("the state carried to the next step must be the one after tanh (you carried the pre-activation)",
     dict(carry="pre-activation"), "h1..hT"),
    ("W_hh transposed: vectors are rows here, so the recurrent term is h_{t-1} @ W_hh", dict(W_hh_T=True), "h1..hT"),
    ("W_xh transposed: vectors are rows here, so the input term is x_t @ W_xh, with W_xh of shape (d_in, d_h)",
     dict(W_xh_T=True), "h1..hT"),
    ("the bias is added twice: add b once (nn.RNN's two biases, bias_ih and bias_hh, are already summed in b)",
     dict(bias=2.0), "h1..hT"),
    ("the bias b is missing", dict(bias=0.0), "h1..hT"),
    ("your states are shifted by one step: you returned h0 .. h_{T-1}; return h_1 .. h_T (each state after its "
     "input)", {}, "h0..hT-1"),
    ("you returned T + 1 states, h0 included: return h_1 .. h_T, shape (B, T, d_h)", {}, "h0..hT"),
    ("you returned only the last state: return every state h_1 .. h_T, shape (B, T, d_h) (the last one is "
     "H[:, -1])", {}, "hT"),
    ("the states are stacked along dim 0, (T, B, d_h): stack them along dim 1, torch.stack(states, dim=1)",
     {}, "time-major"),
]
_PICK = {"h1..hT": lambda H: H[:, 1:], "h0..hT-1": lambda H: H[:, :-1], "h0..hT": lambda H: H,
         "hT": lambda H: H[:, -1], "time-major": lambda H: H[:, 1:].transpose(0, 1)}
_DETACHED = "the states are detached (h.detach()): the gradient must flow back through every step"


def _torch_rnn(W_xh: Tensor, W_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> nn.RNN:
    """``nn.RNN`` holding these weights (it stores them transposed: ``weight_ih_l0`` is ``(d_h, d_in)``)."""
    reference = nn.RNN(W_xh.shape[0], W_xh.shape[1], batch_first=True)
    for name, value in (("weight_ih_l0", W_xh.T), ("weight_hh_l0", W_hh.T), ("bias_ih_l0", b_ih),
                        ("bias_hh_l0", b_hh)):
        getattr(reference, name).data.copy_(value)
    return reference


def check_rnn_forward(fn: Callable) -> None:
    """Check ``rnn_forward(x, h0, W_xh, W_hh, b) -> H (B, T, d_h)`` against ``torch.nn.RNN``, gradients included."""
    r = torch.randn

    def case(B: int, T: int, d_in: int, d_h: int) -> tuple:  # weights large enough for tanh to bend
        return r(B, T, d_in), r(B, d_h), 0.6 * r(d_in, d_h), 0.6 * r(d_h, d_h), 0.5 * r(d_h), 0.5 * r(d_h)

    with seeded():
        cases = [
            ("batched (B=3, T=6, d_in=d_h=4)", (*case(3, 6, 4, 4), False)),
            ("d_in != d_h (B=2, T=5, d_in=3, d_h=5)", (*case(2, 5, 3, 5), False)),
            ("one sequence (B=1, T=4, d_in=3, d_h=5)", (*case(1, 4, 3, 5), False)),
            ("a single step (B=2, T=1, d_in=3, d_h=4)", (*case(2, 1, 3, 4), False)),
            ("gradients flow back to x, h0 and the weights (B=2, T=5, d_in=3, d_h=4)", (*case(2, 5, 3, 4), True)),
        ]
        run_cases("rnn_forward", cases, lambda c: _rnn_case(fn, *c))


def _rnn_case(fn: Callable, x: Tensor, h0: Tensor, W_xh: Tensor, W_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
              grads: bool) -> None:
    reference, b = _torch_rnn(W_xh, W_hh, b_ih, b_hh), b_ih + b_hh
    args, names = (x, h0, W_xh, W_hh, b), ["x", "h0", "W_xh", "W_hh", "b"]
    inputs = ", ".join(f"{n}={describe(a)}" for n, a in zip(names, args))
    if grads:
        return _rnn_gradients(fn, reference, args, names, inputs)
    got = call(fn, *args, names=names)
    if isinstance(got, (tuple, list)) and not isinstance(got, Tensor):
        kind = "a list: stack the states into one tensor, torch.stack(states, dim=1)" if isinstance(got, list) \
            else f"a tuple of {len(got)}: return only H (B, T, d_h); the last state is H[:, -1]"
        raise Mistake(f"return one tensor H of shape (B, T, d_h); you returned {kind}")
    expected, _ = reference(x, h0.unsqueeze(0))  # (B, T, d_h)
    variants = [(message, lambda kw=kw, pick=pick: _PICK[pick](rnn_variant(*args, **kw)))
                for message, kw, pick in RNN_MISTAKES]
    compare(got, expected, what="H", variants=variants, inputs=inputs, atol=1e-5, rtol=1e-4,
            shape_hint=lambda shape: "one state per time step, batch first: (B, T, d_h)")


def _rnn_gradients(fn: Callable, reference: nn.RNN, args: tuple, names: list[str], inputs: str) -> None:
    """Backpropagate ``(H * R).sum()`` through the student's loop and through ``nn.RNN``; compare every gradient."""
    x, h0, W_xh, W_hh, b = args
    R = torch.randn(x.shape[0], x.shape[1], h0.shape[1])  # (B, T, d_h) a random direction to differentiate
    with torch.enable_grad():
        leaves = [a.clone().requires_grad_() for a in args]
        H = call(fn, *leaves, names=names)
        if not isinstance(H, Tensor) or not H.requires_grad:
            raise Mistake("your H carries no gradient: compute it with torch operations only, outside torch.no_grad() "
                          "and without .detach(), .item() or .numpy()")
        try:
            (H * R).sum().backward()
        except Exception as err:  # noqa: BLE001 - the student's error, diagnosed
            raise Mistake(f"backward through your function raised {type(err).__name__}: {err}\n  called with "
                          f"{inputs}") from err
        x_ref, h0_ref = x.clone().requires_grad_(), h0.clone().requires_grad_()
        (reference(x_ref, h0_ref.unsqueeze(0))[0] * R).sum().backward()
        detached = [a.clone().requires_grad_() for a in args]
        (rnn_variant(*detached, detach=True)[:, 1:] * R).sum().backward()
    expected = [x_ref.grad, h0_ref.grad, reference.weight_ih_l0.grad.T, reference.weight_hh_l0.grad.T,
                reference.bias_ih_l0.grad]
    for name, leaf, want, wrong in zip(names, leaves, expected, detached):
        if leaf.grad is None:
            raise Mistake(f"no gradient reaches {name}: compute with torch operations only (no .item(), .numpy(), "
                          f"torch.no_grad() or .detach())")
        compare(leaf.grad, want, what=f"the gradient with respect to {name}", inputs=inputs,
                variants=[(_DETACHED, lambda wrong=wrong: wrong.grad)])


# --------------------------------------------------------------------------- Exercise 1.2: additive attention
def additive_variant(query: Tensor, keys: Tensor, values: Tensor, W_q: Tensor, W_k: Tensor, v_a: Tensor, *,
                     score: str = "additive", dim: int = -1, softmax: bool = True, transpose: bool = False,
                     swap: bool = False, context_from: str = "values") -> tuple[Tensor, Tensor]:
    """Additive attention with switchable mistakes; returns ``(context, weights)``."""
    if transpose:
        W_q, W_k = W_q.T, W_k.T
    if swap:
        W_q, W_k = W_k, W_q  # W_k applied to the query, W_q to the keys
    q_proj, k_proj = (query @ W_q).unsqueeze(1), keys @ W_k  # (B, 1, d_a), (B, T, d_a)
    scores = {"additive": lambda: torch.tanh(q_proj + k_proj) @ v_a,  # (B, T)
              "no tanh": lambda: (q_proj + k_proj) @ v_a,
              "tanh outside": lambda: torch.tanh((q_proj + k_proj) @ v_a),
              "sum": lambda: torch.tanh(q_proj + k_proj).sum(-1),
              "mean": lambda: torch.tanh(q_proj + k_proj).mean(-1),
              "dot": lambda: (k_proj * q_proj).sum(-1)}[score]()
    weights = torch.softmax(scores, dim=dim) if softmax else scores  # (B, T)
    source = {"values": values, "keys": keys}[context_from]
    return (weights.unsqueeze(1) @ source).squeeze(1), weights  # (B, d_v), (B, T)


_WRONG_AXIS = "softmax over the wrong axis: each query's weights are over its T keys, softmax(scores, dim=-1)"
ADDITIVE_MISTAKES = [  # (diagnosis, additive_variant switches)
    ("tanh missing: score_j = v_a^T tanh(q W_q + k_j W_k)", dict(score="no tanh")),
    ("tanh in the wrong place: take tanh of q W_q + k_j W_k first, then multiply by v_a", dict(score="tanh outside")),
    ("v_a not applied: each key's hidden layer tanh(q W_q + k_j W_k), of size d_a, is turned into one score by "
     "v_a (hidden @ v_a), not by a sum", dict(score="sum")),
    ("v_a not applied: turn each key's hidden layer into one score with v_a (hidden @ v_a), not with a mean",
     dict(score="mean")),
    ("that is a dot product of the projections (multiplicative attention); the additive score adds them: "
     "v_a^T tanh(q W_q + k_j W_k)", dict(score="dot")),
    (_WRONG_AXIS, dict(dim=0)),
    ("the weights must be a softmax of the scores over the keys (non-negative, summing to 1); you returned the raw "
     "scores", dict(softmax=False)),
    ("W_q projects the query and W_k the keys; you swapped them", dict(swap=True)),
    ("vectors are rows here: query @ W_q with W_q of shape (d_q, d_a), and keys @ W_k; you used the transposes",
     dict(transpose=True)),
    ("the context is the weighted average of the values, not of the keys", dict(context_from="keys")),
]


def check_additive_attention(fn: Callable) -> None:
    """Check ``additive_attention(query, keys, values, W_q, W_k, v_a) -> (context (B, d_v), weights (B, T))``."""
    r = torch.randn

    def case(B: int, T: int, d_q: int, d_k: int, d_v: int, d_a: int) -> tuple:
        return r(B, d_q), r(B, T, d_k), r(B, T, d_v), 0.7 * r(d_q, d_a), 0.7 * r(d_k, d_a), r(d_a)

    with seeded():
        cases = [
            ("batched (B=2, T=6, d_q=d_k=d_v=d_a=4)", case(2, 6, 4, 4, 4, 4)),
            ("all sizes differ (B=3, T=5, d_q=4, d_k=6, d_v=2, d_a=8)", case(3, 5, 4, 6, 2, 8)),
            ("one query (B=1, T=4, d_q=d_k=d_v=d_a=3)", case(1, 4, 3, 3, 3, 3)),
            ("a longer sequence (B=2, T=12, d_q=5, d_k=7, d_v=3, d_a=6)", case(2, 12, 5, 7, 3, 6)),
        ]
        run_cases("additive_attention", cases, lambda c: _additive_case(fn, *c))


def _additive_case(fn: Callable, *args: Tensor) -> None:
    names = ["query", "keys", "values", "W_q", "W_k", "v_a"]
    inputs = ", ".join(f"{n}={describe(a)}" for n, a in zip(names, args))
    result = call(fn, *args, names=names)
    if isinstance(result, Tensor) or not isinstance(result, (tuple, list)) or len(result) != 2:
        got = f"a tensor of shape {tuple(result.shape)}" if isinstance(result, Tensor) else type(result).__name__
        raise Mistake(f"return a tuple (context, weights); you returned {got}")
    context, weights = result
    expected = rnn.additive_attention(*args)  # (context (B, d_v), weights (B, T))
    if isinstance(context, Tensor) and isinstance(weights, Tensor) and close(context, expected[1]) \
            and close(weights, expected[0]):
        raise Mistake("you returned (weights, context): return (context, weights), in that order")
    (B, T, _), d_v = args[1].shape, args[2].shape[-1]
    variants = [(message, lambda kw=kw: additive_variant(*args, **kw)) for message, kw in ADDITIVE_MISTAKES]

    def weights_shape(shape: tuple[int, ...]) -> str:
        if shape == (B, 1, T):
            return "one weight per key, (B, T): squeeze the singleton dim"
        if len(shape) == 3 and shape[:2] == (B, T):
            return "one score per key: reduce each key's hidden layer (B, T, d_a) to a number with v_a"
        return "one weight per key of each sequence: (B, T)"

    compare(weights, expected[1], what="weights", variants=[(m, lambda v=v: v()[1]) for m, v in variants],
            structural=[weight_rows(None)], shape_hint=weights_shape, inputs=inputs)
    after = [(m, lambda v=v: v()[0]) for m, v in variants if _gives(v, expected[1])]  # weights right, context not
    compare(context, expected[0], what="context", variants=after, inputs=inputs,
            shape_hint=lambda shape: f"one context vector per sequence, (B, d_v) = ({B}, {d_v})"
            + (": squeeze the middle dim of (B, 1, T) @ (B, T, d_v)" if shape == (B, 1, d_v) else ""),
            structural=[lambda got: "the weights are right but the context is not: it is the weighted average of the "
                                    "values, sum_j weights_j * values_j"])


def _gives(variant: Callable[[], tuple[Tensor, Tensor]], weights: Tensor) -> bool:
    """Whether a mistake leaves the weights right (False if it cannot run on these shapes)."""
    try:
        return close(variant()[1], weights)
    except Exception:  # noqa: BLE001 - that mistake is impossible for these shapes
        return False
