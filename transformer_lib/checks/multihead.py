"""Checks of the multi-head exercises (notebook 05): ``split_heads``, ``merge_heads``, ``MultiHeadAttention``, and
the stretch ``to_torch_multihead``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import masks, multihead
from ._core import MODULE_TOL, Mistake, call, compare, compare_pair, describe, run_cases, seeded
from ._modules import ModelPair
from .attention import attend_variant

__all__ = ["check_split_heads", "check_merge_heads", "check_multi_head_attention", "check_to_torch_multihead"]


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


def check_split_heads(fn: Callable) -> None:
    """Check ``split_heads(x, n_heads)``: ``(B, T, d_model) -> (B, H, T, d_head)``."""
    with seeded():
        cases = [("B=2, T=5, d_model=12, n_heads=3", (torch.randn(2, 5, 12), 3)),
                 ("B=1, T=7, d_model=8, n_heads=2", (torch.randn(1, 7, 8), 2)),
                 ("one head (n_heads=1)", (torch.randn(2, 4, 6), 1)),
                 ("d_head=1 (n_heads=d_model=4)", (torch.randn(3, 2, 4), 4))]
        run_cases("split_heads", cases, lambda case: _split_case(fn, *case))


def _split_case(fn: Callable, x: Tensor, n_heads: int) -> None:
    got = call(fn, x, n_heads, names=["x", "n_heads"])
    (B, T, d_model), H = x.shape, n_heads
    variants = [
        ("reshaped without transpose: view as (B, T, H, d_head), then .transpose(1, 2)",
         lambda: x.reshape(B, H, T, d_model // H)),
        ("wrong head ordering: head h owns the features [h*d_head:(h+1)*d_head], so view as (B, T, H, d_head), "
         "not (B, T, d_head, H)", lambda: x.reshape(B, T, d_model // H, H).permute(0, 3, 1, 2)),
        ("you forgot .transpose(1, 2): the result must be (B, H, T, d_head)", lambda: x.reshape(B, T, H, d_model // H)),
    ]
    compare(got, multihead.split_heads(x, n_heads), variants=variants, inputs=f"x={describe(x)}, n_heads={n_heads}",
            shape_hint=lambda shape: "expected (B, H, T, d_head) with d_head = d_model // n_heads")


def check_merge_heads(fn: Callable) -> None:
    """Check ``merge_heads(x)``: ``(B, H, T, d_head) -> (B, T, H * d_head)``, the inverse of split_heads."""
    with seeded():
        x = torch.randn(2, 5, 12)
        cases = [("B=2, H=3, T=5, d_head=4", (torch.randn(2, 3, 5, 4), None)),
                 ("B=1, H=2, T=7, d_head=4", (torch.randn(1, 2, 7, 4), None)),
                 ("one head (H=1)", (torch.randn(2, 1, 3, 6), None)),
                 ("round trip merge_heads(split_heads(x, 3)) == x", (multihead.split_heads(x, 3), x))]
        run_cases("merge_heads", cases, lambda case: _merge_case(fn, *case))


def _merge_case(fn: Callable, x: Tensor, original: Tensor | None) -> None:
    got = call(fn, x, names=["x"])
    B, H, T, d_head = x.shape
    variants = [
        ("missing transpose before reshape: transpose(1, 2) back to (B, T, H, d_head) first, then reshape to "
         "(B, T, H * d_head)", lambda: x.reshape(B, T, H * d_head)),
        ("heads interleaved: after transpose(1, 2) the tensor is (B, T, H, d_head); reshape that, so head h fills "
         "features [h*d_head:(h+1)*d_head]", lambda: x.permute(0, 2, 3, 1).reshape(B, T, H * d_head)),
        ("you forgot the reshape: the result must be (B, T, H * d_head)", lambda: x.transpose(1, 2)),
    ]
    expected = multihead.merge_heads(x) if original is None else original
    compare(got, expected, variants=variants, inputs=f"x={describe(x)}",
            shape_hint=lambda shape: "expected (B, T, H * d_head)")


def check_multi_head_attention(cls: type) -> None:
    """Check a ``MultiHeadAttention(d_model, n_heads, dropout=0.0, bias=True)`` class (Sec. 3.2.2)."""
    r = torch.randn
    with seeded():
        models = ModelPair(cls, multihead.MultiHeadAttention, "MultiHeadAttention", ["d_model", "n_heads"])
        x, q, key, value = r(2, 5, 12), r(2, 3, 12), r(2, 6, 12), r(2, 6, 12)
        pad = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]]).bool()[:, None, None, :]  # (B, 1, 1, T_k)
        cases = [
            ("self-attention (B=2, T=5, d_model=12, n_heads=3)", (12, 3, x, x, x, None)),
            ("cross-attention (T_q=3, T_k=6, key != value)", (12, 3, q, key, value, None)),
            ("cross-attention with a padding mask (B, 1, 1, T_k)", (12, 3, q, key, value, pad)),
            ("self-attention with a causal mask (T, T)", (12, 3, x, x, x, masks.causal_mask(5))),
            ("d_model=8, n_heads=4 (d_head=2)", (8, 4, r(1, 4, 8), r(1, 4, 8), r(1, 4, 8), None)),
        ]
        run_cases("MultiHeadAttention", cases, lambda case: _mha_case(models, *case))


def _mha_case(models: ModelPair, d_model: int, n_heads: int, query: Tensor, key: Tensor, value: Tensor,
              mask: Tensor | None) -> None:
    student, ref = models.get(d_model, n_heads, dropout=0.0, bias=True)
    extra = {} if mask is None else {"mask": mask}
    expected = ref(query, key, value, **extra)
    got = call(student, query, key, value, names=["query", "key", "value"], **extra)
    variants = [(msg, lambda kw=kw: mha_variant(ref, n_heads, query, key, value, mask, **kw))
                for msg, kw in MHA_MISTAKES]
    averaged = ("return the per-head weights (B, H, T_q, T_k), not averaged over heads", lambda: expected[1].mean(1))
    named = zip(["query", "key", "value", "mask"], (query, key, value, mask))
    inputs = ", ".join(f"{n}={describe(t)}" for n, t in named if t is not None)
    compare_pair(got, expected, variants=variants, weight_variants=[averaged], mask=mask, inputs=inputs,
                 out_hint="merge the heads (transpose(1, 2), reshape) and apply out_proj", **MODULE_TOL)


# -------------------------------------------------------------- stretch: the same module in PyTorch's clothes
_ORDER = "the q, k, v blocks are in the wrong order: {what} stacks [{q}; {k}; {v}] along dim 0, in that order"
_TRANSPOSED = ("{what} holds transposed weights: nn.Linear.weight and in_proj_weight are both (out_features, "
               "in_features), so copy them as they are, without .T")
_NOT_COPIED = "{what} is not copied (it still holds PyTorch's initial zeros): copy {source}"
_WRONG_ORDERS = ("kqv", "qvk", "vkq", "kvq", "vqk")
_GRAD_HINT = "copy values into parameters inside `with torch.no_grad():`"
_BIAS_HINTS = {False: "this mha has no biases (bias=False): create nn.MultiheadAttention(..., bias=False) and copy "
                      "the weights only",
               True: "a bias is None: this mha has biases, so create nn.MultiheadAttention(..., bias=True)"}


def packing_variants(mha: nn.Module) -> dict[str, tuple[Tensor, list]]:
    """Each parameter of ``nn.MultiheadAttention``, in order: what it must hold, and what copying mistakes put there."""
    proj = {"q": mha.q_proj, "k": mha.k_proj, "v": mha.v_proj}

    def stack(part: str, order: str = "qkv") -> Tensor:  # (3 d_model, d_model) or (3 d_model,)
        return torch.cat([getattr(proj[c], part) for c in order])

    def wrong_orders(part: str, symbol: str) -> list:
        message = _ORDER.format(what=f"in_proj_{part}", **{c: f"{symbol}^{c.upper()}" for c in "qkv"})
        return [(message, lambda o=o: stack(part, o)) for o in _WRONG_ORDERS]

    has_bias = mha.q_proj.bias is not None
    packed = {"in_proj_weight": (stack("weight"), [
        *wrong_orders("weight", "W"),
        (_TRANSPOSED.format(what="in_proj_weight"), lambda: torch.cat([proj[c].weight.T for c in "qkv"]))])}
    if has_bias:
        packed["in_proj_bias"] = (stack("bias"), [
            *wrong_orders("bias", "b"),
            (_NOT_COPIED.format(what="in_proj_bias", source="mha.q_proj.bias, mha.k_proj.bias and mha.v_proj.bias into "
                                                            "it, stacked like the weights"),
             lambda: torch.zeros(3 * mha.d_model))])
    packed["out_proj.weight"] = (mha.out_proj.weight, [
        ("out_proj.weight is transposed: both out_proj layers are nn.Linear, so copy the weight as it is",
         lambda: mha.out_proj.weight.T)])
    if has_bias:
        packed["out_proj.bias"] = (mha.out_proj.bias, [
            (_NOT_COPIED.format(what="out_proj.bias", source="mha.out_proj.bias into it"),
             lambda: torch.zeros(mha.d_model))])
    return packed


def _copy_of(what: str, expected: Tensor) -> Callable[[Tensor], str | None]:
    """Structural check of a parameter: name the part (a third of a packed one) that is not the copy it should be."""
    sources = ("q_proj", "k_proj", "v_proj") if what.startswith("in_proj") else ("out_proj",)
    n = expected.shape[0] // len(sources)

    def check(got: Tensor) -> str | None:
        for i, source in enumerate(sources):
            rows = slice(i * n, (i + 1) * n)
            if not torch.allclose(got[rows].double(), expected[rows].double(), atol=1e-6):
                where = f"{what}[{rows.start}:{rows.stop}]" if len(sources) > 1 else what
                return f"{where} should be a copy of mha.{source}.{'bias' if what.endswith('bias') else 'weight'}"
        return None
    return check


def check_to_torch_multihead(fn: Callable) -> None:
    """Check notebook 05's stretch ``to_torch_multihead(mha) -> nn.MultiheadAttention`` (batch_first=True).

    The module it returns must hold copies of ``mha``'s weights, packed as PyTorch packs them (each parameter is
    compared, so that several mistakes are named one at a time), and compute what ``mha`` computes (outputs and
    per-head weights). ``fn`` is called with autograd on, as in a notebook.
    """
    r = torch.randn
    with seeded():
        def module(d_model: int, n_heads: int, bias: bool = True) -> nn.Module:
            return multihead.MultiHeadAttention(d_model, n_heads, bias=bias).eval()

        x = r(2, 5, 12)
        cases = [
            ("self-attention (B=2, T=5, d_model=12, n_heads=3)", (module(12, 3), (x, x, x))),
            ("cross-attention (T_q=3, T_k=6, key != value)", (module(12, 3), (r(2, 3, 12), r(2, 6, 12), r(2, 6, 12)))),
            ("d_model=8, n_heads=4 (d_head=2)", (module(8, 4), (r(1, 4, 8), r(1, 6, 8), r(1, 6, 8)))),
            ("no biases (bias=False)", (module(12, 3, bias=False), (r(2, 3, 12), r(2, 6, 12), r(2, 6, 12)))),
        ]
        run_cases("to_torch_multihead", cases, lambda case: _to_torch_case(fn, *case))


def _to_torch_case(fn: Callable, mha: nn.Module, qkv: tuple[Tensor, Tensor, Tensor]) -> None:
    has_bias = mha.q_proj.bias is not None
    try:
        with torch.enable_grad():
            got = call(fn, mha, names=["mha"])
    except Mistake as err:
        hint = _GRAD_HINT if "leaf Variable that requires grad" in str(err) else \
            _BIAS_HINTS[has_bias] if "NoneType" in str(err) else None
        raise Mistake(f"{err}" + (f"\n  hint: {hint}" if hint else "")) from err.__cause__
    if not isinstance(got, nn.MultiheadAttention):
        raise Mistake(f"return a torch.nn.MultiheadAttention; you returned {type(got).__name__}")
    if not got.batch_first:
        raise Mistake("batch_first is False: create it with nn.MultiheadAttention(..., batch_first=True), so that it "
                      "takes (B, T, d_model) like ours (by default it expects (T, B, d_model))")
    if (got.embed_dim, got.num_heads) != (mha.d_model, mha.n_heads):
        raise Mistake(f"your module has embed_dim={got.embed_dim}, num_heads={got.num_heads}; mha has "
                      f"d_model={mha.d_model}, n_heads={mha.n_heads}: nn.MultiheadAttention(d_model, n_heads, ...)")
    if (got.in_proj_bias is not None) != has_bias:
        raise Mistake(f"mha {'has' if has_bias else 'has no'} biases, your module {'has none' if has_bias else 'has'}: "
                      f"create it with bias={has_bias}")
    source = {p.data_ptr() for p in mha.parameters()}
    shared = [name for name, p in got.named_parameters() if p.data_ptr() in source]
    if shared:
        raise Mistake(f"your module shares {', '.join(shared)} with mha: copy the values (.copy_ or .clone()), so that "
                      "training one does not change the other")
    params = dict(got.named_parameters())
    for name, (expected, variants) in packing_variants(mha).items():
        compare(params[name], expected, what=name, variants=variants, structural=[_copy_of(name, expected)])
    query, key, value = qkv
    result = call(lambda q, k, v: got.eval()(q, k, v, need_weights=True, average_attn_weights=False), query, key, value,
                  names=["query", "key", "value"])
    compare_pair(result, mha(query, key, value), inputs=f"query={describe(query)}, key={describe(key)}", **MODULE_TOL)
