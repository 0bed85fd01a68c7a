"""Machinery shared by :mod:`transformer_lib.checks` (not part of the course's public API).

A check builds seeded cases, calls the student's code through :func:`call` (which turns any exception
into a diagnosed :class:`Mistake`), and compares the result with the reference through :func:`compare`:
when they differ, the student's output is matched against known-wrong variants of the reference
("matches the unscaled variant"), then against structural properties ("rows sum to 1"), so the
message names the likely mistake. :func:`run_cases` turns a ``Mistake`` into the ``AssertionError``
the student sees and prints the one success line.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "Mistake", "seeded", "run_cases", "call", "describe", "close", "compare", "compare_pair",
    "weight_rows", "ModelPair", "attend_variant", "pe_variant", "mha_variant", "sublayers_variant",
    "SCALE_MISTAKES", "MASK_MISTAKES", "WRONG_AXIS", "sdpa_variants", "PE_MISTAKES", "MHA_MISTAKES", "layer_mistakes",
]

Variant = tuple[str, Callable[[], Any]]  # (diagnosis, thunk computing what that mistake returns)

_ERROR_HINTS = (  # (substring of a torch error message, hint for the student)
    ("view size is not compatible",
     "a transposed tensor is not contiguous: use .reshape(...) or .contiguous().view(...)"),
    ("cannot be multiplied", "a shape mismatch: write the shape next to each line, e.g. `# (B, H, T_q, T_k)`"),
    ("must match the size", "a shape mismatch: write each line's shape next to it (a sum without keepdim=True? "
                            "a transpose of the wrong dims?)"),
    ("unexpected keyword argument", "keep the signature given in the exercise"),
    ("Dimension out of range", "count dims from the end (e.g. k.transpose(-2, -1)) so any number of batch dims works"),
    ("positional argument", "keep the signature given in the exercise"),
)


class Mistake(Exception):
    """A diagnosed mistake in student code; :func:`run_cases` turns it into an ``AssertionError``."""


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Seed torch, disable autograd and use one CPU thread inside; restore the caller's RNG state and threads.

    One thread: the tensors are tiny, and on a busy machine a second thread makes each op wait milliseconds.
    """
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.set_num_threads(1)
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def run_cases(exercise: str, cases: Sequence[tuple[str, Any]], run_case: Callable[[Any], None],
              notes: Sequence[str] = ()) -> None:
    """Run ``run_case(data)`` for each ``(name, data)`` in order; print the success line if all pass.

    A :class:`Mistake` becomes ``AssertionError("case '<name>': <diagnosis>")`` chained to the
    student's own exception, if there was one. ``notes`` (e.g. how weights were copied) are appended.
    """
    for name, data in cases:
        try:
            run_case(data)
        except Mistake as err:
            extra = "".join(f"\n  note: {note}" for note in notes)
            raise AssertionError(f"case '{name}': {err}{extra}") from err.__cause__
    print(f"{exercise}: all {len(cases)} cases pass")


def describe(value: Any) -> str:
    """Short description of an argument: shape and dtype for tensors, repr otherwise."""
    if isinstance(value, Tensor):
        return f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def call(fn: Callable, *args: Any, names: Sequence[str] = (), **kwargs: Any) -> Any:
    """Call student code on copies of the arguments; wrap its exceptions; catch in-place changes."""
    named = [*zip([*names, *(f"argument {i + 1}" for i in range(len(names), len(args)))], args), *kwargs.items()]
    copies = [a.clone() if isinstance(a, Tensor) else a for _, a in named]
    called = ", ".join(f"{name}={describe(a)}" for name, a in named)
    try:
        result = fn(*copies[: len(args)], **dict(zip(kwargs, copies[len(args):])))
    except NotImplementedError:  # an exercise not done yet stops the check as itself, not as a "mistake"
        name = getattr(fn, "__name__", type(fn).__name__)  # a function, a class, or a module instance
        raise NotImplementedError(  # `from None`: one short traceback, the message says what to do
            f"the exercise is not done yet: in `{name}`, replace `# YOUR CODE HERE` / `raise NotImplementedError()` "
            "with your code, run that cell, then run this check again") from None
    except Exception as err:  # the student's exception, shown with the case and inputs, chained
        hints = [hint for key, hint in _ERROR_HINTS if key in f"{type(err).__name__}: {err}"]
        hint = f"\n  hint: {hints[0]}" if hints else ""
        raise Mistake(f"your code raised {type(err).__name__}: {err}\n  called with {called}{hint}") from err
    for (name, original), passed in zip(named, copies):
        if isinstance(original, Tensor) and not torch.equal(original, passed):
            raise Mistake(f"your code changed its input `{name}` in place (e.g. `{name} /= ...` or a `_` method): "
                          f"compute a new tensor instead")
    return result


def close(got: Tensor, expected: Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Same shape and values (NaN equals NaN), whatever the dtypes."""
    return tuple(got.shape) == tuple(expected.shape) and torch.allclose(
        got.detach().double(), expected.detach().double(), rtol=rtol, atol=atol, equal_nan=True)


def _fmt(t: Tensor) -> str:
    """Values of a small tensor, rounded to 4 significant digits (bool as 0/1)."""
    t = t.detach()
    if t.dtype == torch.bool:
        return str(t.int().tolist()).replace(" ", "")
    if not t.is_floating_point():
        return str(t.tolist())

    def rounded(v: Any) -> Any:
        return [rounded(u) for u in v] if isinstance(v, list) else float(f"{v:.4g}")
    return str(rounded(t.double().tolist()))


def _difference(got: Tensor, expected: Tensor, what: str = "output") -> str:
    """'expected ... / got ...' for the row (last axis) where they differ most, or the whole tensor if small."""
    if tuple(got.shape) != tuple(expected.shape):
        return f"\n  expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    small = expected.numel() <= (64 if expected.dtype == torch.bool else 12)
    if small or expected.ndim == 0:
        return f"\n  expected {_fmt(expected)}\n  got      {_fmt(got)}"
    g, e = got.detach().double(), expected.detach().double()
    err = torch.where(g == e, 0.0, (g - e).abs()).nan_to_num(nan=float("inf"))
    index = torch.unravel_index(err.argmax(), err.shape)
    row, j = tuple(int(i) for i in index[:-1]), int(index[-1])
    start = max(0, min(j - 3, e.shape[-1] - 8))
    cols = slice(start, start + 8)
    where = ", ".join([*map(str, row), f"{start}:{min(start + 8, e.shape[-1])}" if e.shape[-1] > 8 else ":"])
    label = f"{what} at [{where}]"
    return f"\n  {label} expected {_fmt(expected[row][cols])}\n  {' ' * (len(label) + 6)}got {_fmt(got[row][cols])}"


def compare(got: Any, expected: Tensor, *, what: str = "output", variants: Sequence[Variant] = (),
            structural: Sequence[Callable[[Tensor], str | None]] = (), dtype: torch.dtype | None = None,
            shape_hint: Callable[[tuple[int, ...]], str] | None = None, dtype_hint: str = "", nonfinite_hint: str = "",
            inputs: str = "", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Raise a :class:`Mistake` naming the likely error unless ``got`` matches ``expected``.

    Diagnosis order: not a tensor; a known-wrong variant it matches; wrong shape; wrong dtype;
    NaN/inf; the first failing structural check; else the largest difference.
    """
    if isinstance(got, tuple):
        raise Mistake(f"{what} must be a single torch.Tensor; you returned a tuple of {len(got)}")
    if not isinstance(got, Tensor):
        raise Mistake(f"{what} must be a torch.Tensor; got {type(got).__name__}")
    wrong_dtype = f"{what} must have dtype {dtype}; got {got.dtype}" + (f". {dtype_hint}" if dtype_hint else "")
    if close(got, expected, atol, rtol):
        if dtype is not None and got.dtype != dtype:
            raise Mistake(wrong_dtype)
        return
    for message, make in variants:
        try:
            wrong = make()
        except Exception:  # that mistake is impossible for these shapes
            continue
        if isinstance(wrong, Tensor) and close(got, wrong, atol, rtol):
            raise Mistake(f"{message}{_difference(got, expected, what)}")
    if tuple(got.shape) != tuple(expected.shape):
        hint = shape_hint(tuple(got.shape)) if shape_hint else ""
        raise Mistake(f"{what} has shape {tuple(got.shape)} but should have shape {tuple(expected.shape)}"
                      + (f": {hint}" if hint else "") + (f"\n  inputs: {inputs}" if inputs else ""))
    if dtype is not None and got.dtype != dtype:
        raise Mistake(wrong_dtype)
    if got.is_floating_point() and not torch.isfinite(got).all() and torch.isfinite(expected).all():
        raise Mistake(f"{what} contains nan or inf" + (f": {nonfinite_hint}" if nonfinite_hint else "")
                      + _difference(got, expected, what))
    for check in structural:
        message = check(got)
        if message:
            raise Mistake(message + _difference(got, expected, what))
    raise Mistake(f"{what} differs from the reference{_difference(got, expected, what)}")


def compare_pair(result: Any, expected: tuple[Tensor, Tensor], *, variants: Sequence[tuple[str, Any]] = (),
                 weight_variants: Sequence[Variant] = (), mask: Tensor | None = None, inputs: str = "",
                 out_hint: str = "", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Check an attention-style ``(out, weights)`` result: weights first, then out.

    ``variants`` are ``(diagnosis, thunk returning (out, weights))``; thunks that fail are skipped.
    """
    if isinstance(result, Tensor):
        raise Mistake(f"return a tuple (out, weights); you returned a single Tensor of shape {tuple(result.shape)}")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = f"a {type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list)) else \
            type(result).__name__
        raise Mistake(f"return a tuple (out, weights); you returned {got}")
    out, weights = result
    if (isinstance(out, Tensor) and isinstance(weights, Tensor) and close(out, expected[1], atol, rtol)
            and close(weights, expected[0], atol, rtol)):
        raise Mistake("you returned (weights, out): return (out, weights), in that order")
    lazy = [(message, functools.cache(make)) for message, make in variants]  # computed only on a mismatch
    pick = lambda i: [(m, lambda make=make: make()[i]) for m, make in lazy]  # noqa: E731
    compare(weights, expected[1], what="weights", variants=[*weight_variants, *pick(1)],
            structural=[weight_rows(mask)], inputs=inputs, atol=atol, rtol=rtol,
            nonfinite_hint="masked rows? apply the mask to the scores (masked_fill with -inf) before the softmax")
    compare(out, expected[0], what="out", variants=pick(0), inputs=inputs, atol=atol, rtol=rtol,
            structural=[lambda got: f"the weights are right but out is not: {out_hint or 'out = weights @ v'}"])


def weight_rows(mask: Tensor | None) -> Callable[[Tensor], str | None]:
    """Structural check of attention weights: zero where masked, each row sums to 1 over the keys."""
    def check(w: Tensor) -> str | None:
        if mask is not None:
            allowed, used = torch.broadcast_to(mask, w.shape), w.detach().double().abs() > 1e-6
            if used.any() and not used.logical_and(allowed).any():
                return "your mask seems inverted: True means MAY attend; only the masked positions get weight"
            if used.logical_and(~allowed).any():
                return ("masked positions get nonzero weight: fill the scores with -inf where the mask is False, "
                        "before the softmax")
        if not torch.allclose(w.detach().double().sum(-1), torch.ones(()).double(), atol=1e-4):
            if mask is not None:
                return "rows no longer sum to 1: apply the mask to the scores before softmax, not to the weights"
            return ("weights do not sum to 1 over the key axis: did you take softmax over the wrong dimension? "
                    "(softmax(scores, dim=-1))")
        return None
    return check


def _renamed(mine: str, ref: str) -> str:
    """'attn.q_proj.weight', 'self_attn.q_proj.weight' -> 'your attn <- self_attn' (common suffix dropped)."""
    a, b = mine.split("."), ref.split(".")
    while len(a) > 1 and len(b) > 1 and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    return f"your {'.'.join(a)} <- {'.'.join(b)}"


class ModelPair:
    """Build (student, reference) module pairs with the reference's weights copied into the student's.

    Weights are copied by name when the student's parameter names are the contract's, else by
    shape in the order the parameters are defined. The first copy prints one line saying which;
    a shape-order copy also adds the mapping to ``notes`` (shown with any failure).
    """

    def __init__(self, cls: type, reference_cls: type, exercise: str, notes: list[str],
                 arg_names: Sequence[str] = ()) -> None:
        self.cls, self.reference_cls, self.exercise, self.notes = cls, reference_cls, exercise, notes
        self.arg_names = arg_names
        self.built: dict[tuple, tuple[nn.Module, nn.Module]] = {}

    def get(self, *args: Any, **kwargs: Any) -> tuple[nn.Module, nn.Module]:
        key = (args, tuple(sorted(kwargs.items())))
        if isinstance(self.cls, nn.Module):
            raise Mistake(f"pass the class itself, not an instance: {type(self.cls).__name__}, not "
                          f"{type(self.cls).__name__}(...); the check builds its own instances")
        if key not in self.built:
            reference = self.reference_cls(*args, **kwargs).eval()
            for module in reference.modules():  # non-trivial norms, so swapped norms are detectable
                if isinstance(module, nn.LayerNorm):
                    module.weight.copy_(1 + 0.3 * torch.randn_like(module.weight))
                    module.bias.copy_(0.3 * torch.randn_like(module.bias))
            student = call(self.cls, *args, names=self.arg_names, **kwargs)
            if not isinstance(student, nn.Module):
                name = getattr(self.cls, "__name__", "class")
                raise Mistake(f"your {name} is not an nn.Module: subclass torch.nn.Module")
            how = self._copy(student.eval(), reference)
            if not self.built:
                print(f"{self.exercise}: {how}")
            self.built[key] = student, reference
        return self.built[key]

    def _copy(self, student: nn.Module, reference: nn.Module) -> str:
        ref, mine = list(reference.named_parameters()), list(student.named_parameters())
        by_name = dict(mine)
        if set(by_name) == {n for n, _ in ref} and all(by_name[n].shape == p.shape for n, p in ref):
            for n, p in ref:
                by_name[n].copy_(p)
            tops = ", ".join(dict.fromkeys(n.split(".")[0] for n, _ in ref))
            return f"copied the reference weights into your module by name ({tops})"
        if len(mine) == len(ref) and all(m.shape == p.shape for (_, m), (_, p) in zip(mine, ref)):
            for (_, m), (_, p) in zip(mine, ref):
                m.copy_(p)
            pairs = ", ".join(dict.fromkeys(_renamed(m, r) for (m, _), (r, _) in zip(mine, ref) if m != r))
            self.notes.append(f"the reference weights were copied by shape, in the order your parameters are "
                              f"defined ({pairs}); if your order differs, use the contract's attribute names")
            return ("your parameter names differ from the contract's, so the reference weights were copied by shape, "
                    "in order")
        listing = lambda ps: ", ".join(f"{n} {tuple(p.shape)}" for n, p in ps) or "none"  # noqa: E731
        raise Mistake(f"cannot copy the reference weights into your {type(student).__name__}: it has parameters "
                      f"[{listing(mine)}] but the reference has [{listing(ref)}]. Use the attribute names and "
                      f"layer sizes of the exercise")


# ------------------------------------------------------------------------- what common mistakes compute
# Reimplementations with switchable mistakes: a check compares a wrong answer with them to name the mistake.

def attend_variant(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, scale: float = 1.0,
                   dim: int = -1, mask_mode: str = "before", scores: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Attention; ``mask_mode`` is "before" (right), "inverted", "multiply", "after" (softmax) or "ignored"."""
    scores = (q @ k.transpose(-2, -1) if scores is None else scores) * scale  # (..., T_q, T_k)
    if mask is not None and mask_mode == "before":
        scores = scores.masked_fill(~mask, float("-inf"))
    elif mask is not None and mask_mode == "inverted":
        scores = scores.masked_fill(mask, float("-inf"))
    elif mask is not None and mask_mode == "multiply":
        scores = scores * mask
    weights = torch.softmax(scores, dim=dim)  # (..., T_q, T_k)
    if mask is not None and mask_mode == "after":
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights  # (..., T_q, d_v)


def pe_variant(max_len: int, d_model: int, *, swap: bool = False, halves: bool = False, exponent: str = "2i/d",
               start: int = 0, multiply: bool = False) -> Tensor:
    """Sinusoidal table; ``exponent`` names the power of 10000 (i = pair index, j = column index)."""
    pos = torch.arange(start, start + max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    col = torch.arange(d_model, dtype=torch.float64)  # (d_model,)
    i = col % (d_model // 2) if halves else torch.div(col, 2, rounding_mode="floor")  # (d_model,) pair index
    power = {"2i/d": 2 * i / d_model, "i/d": i / d_model, "j/d": col / d_model, "2j/d": 2 * col / d_model,
             "4i/d": 4 * i / d_model, "2i": 2 * i}[exponent]
    angle = pos * 10000.0 ** power if multiply else pos / 10000.0 ** power  # (max_len, d_model)
    use_sin = (col < d_model // 2) if halves else (col % 2 == 0)
    return torch.where(use_sin != swap, torch.sin(angle), torch.cos(angle)).float()


def mha_variant(ref: nn.Module, n_heads: int, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, *,
                scale: str = "d_head", split_t: bool = True, merge_t: bool = True, out_proj: bool = True,
                mask_mode: str = "before", swap_kv: bool = False, query_only: bool = False) -> tuple[Tensor, Tensor]:
    """Multi-head attention with the reference module's projections."""
    key, value = (query, query) if query_only else (value, key) if swap_kv else (key, value)
    B, T_q, d_model = query.shape
    d_head = d_model // n_heads

    def split(t: Tensor) -> Tensor:  # (B, T, d_model) -> (B, H, T, d_head)
        T = t.shape[1]
        return t.view(B, T, n_heads, d_head).transpose(1, 2) if split_t else t.view(B, n_heads, T, d_head)

    q, k, v = split(ref.q_proj(query)), split(ref.k_proj(key)), split(ref.v_proj(value))
    s = {"d_head": d_head ** -0.5, "none": 1.0, "d_model": d_model ** -0.5}[scale]
    out, weights = attend_variant(q, k, v, mask, scale=s, mask_mode=mask_mode)  # (B, H, T_q, d_head)
    out = (out.transpose(1, 2) if merge_t else out).reshape(B, T_q, d_model)  # (B, T_q, d_model)
    return (ref.out_proj(out) if out_proj else out), weights


def sublayers_variant(x: Tensor, blocks: Sequence[Callable], norms: Sequence[Callable], placement: str,
                      residual: Sequence[bool]) -> Tensor:
    """Residual + LayerNorm around each block: "post" (paper), "pre", or "pre_bad" (residual of norm(x))."""
    for block, norm, res in zip(blocks, norms, residual):
        if placement == "post":
            x = norm((x if res else 0) + block(x))  # Sec. 3.1: LayerNorm(x + Sublayer(x))
        elif placement == "pre":
            x = (x if res else 0) + block(norm(x))
        else:  # x = norm(x); x = x + block(x)
            x = norm(x)
            x = (x if res else 0) + block(x)
    return x


# ------------------------------------------------------------------------------ the diagnoses, by exercise
SCALE_MISTAKES = [  # (diagnosis, the scale used, as a function of d_k)
    ("scores not divided by sqrt(d_k) (Eq. 1: softmax(Q K^T / sqrt(d_k)) V)", lambda d: 1.0),
    ("scores divided by d_k instead of sqrt(d_k)", lambda d: 1.0 / d),
    ("scores multiplied by sqrt(d_k) instead of divided", lambda d: math.sqrt(d)),
]
MASK_MISTAKES = {  # attend_variant's mask_mode -> diagnosis
    "ignored": "the mask is ignored: fill the scores with -inf where the mask is False",
    "inverted": "your mask seems inverted: True means MAY attend (scores.masked_fill(~mask, float('-inf')))",
    "after": "masked positions get nonzero weight / rows no longer sum to 1: apply the mask to the scores before "
             "softmax",
    "multiply": "multiplying the scores by the mask makes masked scores 0, not -inf: use "
                "scores.masked_fill(~mask, float('-inf'))",
}
WRONG_AXIS = "weights do not sum to 1 over the key axis: did you take softmax over the wrong dimension? (use dim=-1)"


def sdpa_variants(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> list[tuple[str, Callable]]:
    """One mistake at a time: each wrong scaling, each wrong use of the mask, softmax over each wrong axis.

    The unmasked cases come first, so a scaling mistake is named before any mask mistake.
    """
    d_k, ok = q.shape[-1], 1.0 / math.sqrt(q.shape[-1])
    scales = [(msg, f(d_k)) for msg, f in SCALE_MISTAKES]
    if v.shape[-1] != d_k:
        scales.append(("scale by sqrt(d_k), the size of q and k, not sqrt(d_v)", 1.0 / math.sqrt(v.shape[-1])))
    return [*((msg, lambda s=s: attend_variant(q, k, v, mask, scale=s)) for msg, s in scales),
            *((msg, lambda mode=mode: attend_variant(q, k, v, mask, scale=ok, mask_mode=mode))
              for mode, msg in (MASK_MISTAKES.items() if mask is not None else ())),
            *((WRONG_AXIS, lambda d=d: attend_variant(q, k, v, mask, scale=ok, dim=d)) for d in range(q.ndim - 1))]


PE_MISTAKES = [
    ("sin and cos swapped: sin in even columns (2i), cos in odd columns (2i+1)", dict(swap=True)),
    ("sin in even columns, cos in odd columns, not first half/second half", dict(halves=True)),
    ("sin in even columns, cos in odd columns, not first half/second half (and sin, cos swapped)",
     dict(halves=True, swap=True)),
    ("wrong frequency: the exponent is 2i/d_model (i = column // 2), you used i/d_model", dict(exponent="i/d")),
    ("wrong frequency: columns 2i and 2i+1 share one frequency, 10000^(2i/d_model) with i = column // 2; "
     "you used the column index: 10000^(column/d_model)", dict(exponent="j/d")),
    ("wrong frequency: in 10000^(2i/d_model), i is the pair index column // 2, not the column index",
     dict(exponent="2j/d")),
    ("wrong frequency: torch.arange(0, d_model, 2) already gives 2i, do not multiply it by 2 again",
     dict(exponent="4i/d")),
    ("wrong frequency: divide the exponent by d_model: 10000^(2i/d_model)", dict(exponent="2i")),
    ("divide the position by the frequency term: pos / 10000^(2i/d_model), not pos * ...", dict(multiply=True)),
    ("positions start at 0, not 1", dict(start=1)),
]


MHA_MISTAKES = [
    ("scores not scaled: divide each head's scores by sqrt(d_head)", dict(scale="none")),
    ("scaled by sqrt(d_model): scale each head's scores by sqrt(d_head) = sqrt(d_model / n_heads)",
     dict(scale="d_model")),
    ("no out_proj applied: the output projection W^O comes after merging the heads", dict(out_proj=False)),
    ("heads merged without transpose: transpose(1, 2) to (B, T_q, H, d_head) before reshape to (B, T_q, d_model)",
     dict(merge_t=False)),
    ("heads split without transpose: view as (B, T, H, d_head), then transpose(1, 2)", dict(split_t=False)),
    ("the mask is ignored: pass it to the attention", dict(mask_mode="ignored")),
    ("your mask seems inverted: True means MAY attend", dict(mask_mode="inverted")),
    ("key and value swapped: k = k_proj(key), v = v_proj(value)", dict(swap_kv=True)),
    ("keys and values must come from the key and value arguments, not from query", dict(query_only=True)),
]


def layer_mistakes(norm_first: bool, n: int) -> list[tuple[str, dict]]:
    """Diagnoses and :func:`sublayers_variant` switches for a layer of ``n`` sublayers (2 encoder, 3 decoder)."""
    wrong = ("wrong norm placement: norm_first=True means pre-norm, x = x + sublayer(norm(x))" if norm_first else
             "wrong norm placement: norm_first=False is the paper's post-norm, x = norm(x + sublayer(x)) (Sec. 3.1)")
    mistakes = [(wrong, dict(placement="post" if norm_first else "pre")),
                ("missing residual connections: add each sublayer's input to its output (Sec. 3.1)",
                 dict(residual=(False,) * n))]
    names = ["self-attention", *(["cross-attention"] if n == 3 else []), "the feed-forward"]
    for i, name in enumerate(names):
        mistakes.append((f"missing residual around {name}", dict(residual=tuple(j != i for j in range(n)))))
    if norm_first:
        mistakes.append(("pre-norm adds the un-normalised x: x = x + sublayer(norm(x)); do not overwrite x with "
                         "norm(x)", dict(placement="pre_bad")))
    return mistakes
