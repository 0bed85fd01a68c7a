"""Multi-head attention, Sec. 3.2.2.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,   head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

The h per-head projections of size d_model x d_head are stored side by side in one
``nn.Linear(d_model, d_model)`` per role (``q_proj``, ``k_proj``, ``v_proj``); ``split_heads`` cuts the
result into heads, attention runs on all heads at once, ``merge_heads`` is the Concat, ``out_proj`` is W^O.
``to_torch_multihead`` copies the module into PyTorch's ``nn.MultiheadAttention``, for parity checks.

Two paths compute the same thing; one test in ``forward`` chooses:

- the **explicit** path, :func:`~transformer_lib.attention.scaled_dot_product_attention`, which builds
  the ``(B, H, T_q, T_k)`` weights and returns them (for plots, and to read what the model attends to);
- the **fast** path, ``torch.nn.functional.scaled_dot_product_attention``, a fused kernel (FlashAttention
  or memory-efficient attention on CUDA, a fused kernel on CPU) that never stores the weights, taken when
  nobody asked for them (``need_weights=False``). In self-attention (``query is key is value``) the three
  projections then run as one matrix product with W^Q, W^K, W^V stacked, as ``nn.MultiheadAttention``
  does; in cross-attention (``key is value``) the two of K and V do.

Both use the same mask convention (bool, ``True`` = may attend) and give zero output for a query row
with no allowed key; tests/test_multihead.py checks that they agree, forward and gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (_shape, check_bool, check_device, check_dim, check_positive_int, check_probability,
                          check_tensor, door, validate_mask)
from .attention import scaled_dot_product_attention

__all__ = ["split_heads", "merge_heads", "MultiHeadAttention", "to_torch_multihead"]


def _check_heads(d_model: int, n_heads: int) -> None:
    check_positive_int(d_model, "d_model")
    check_positive_int(n_heads, "n_heads")
    if d_model % n_heads:
        raise ValueError(
            f"n_heads must divide d_model (d_head = d_model / n_heads); got d_model={d_model}, n_heads={n_heads}"
        )


def _check_split_args(x: torch.Tensor, n_heads: int) -> None:
    check_tensor(x, "x", "(B, T, d_model)", ndim=3)
    _check_heads(x.shape[-1], n_heads)


@door(_check_split_args)
def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Split the last dim into ``n_heads`` heads and move the head dim before time.

    Args:
        x: a projected sequence.
        n_heads: number of heads ``H``; must divide ``d_model``.

    Shape:
        - x: ``(B, T, d_model)``
        - output: ``(B, H, T, d_head)`` with ``d_head = d_model // H``; head ``h`` holds
          ``x[..., h * d_head:(h + 1) * d_head]``.

    Example:
        >>> split_heads(torch.randn(2, 5, 16), n_heads=4).shape
        torch.Size([2, 4, 5, 4])
    """
    B, T, d_model = x.shape
    x = x.view(B, T, n_heads, d_model // n_heads)  # (B, T, H, d_head)
    return x.transpose(1, 2)  # (B, H, T, d_head)  a view alone would mix time and heads


@door(lambda x: check_tensor(x, "x", "(B, H, T, d_head)", ndim=4))
def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_heads`: the Concat of Sec. 3.2.2.

    Shape:
        - x: ``(B, H, T, d_head)``
        - output: ``(B, T, H * d_head)``

    Example:
        >>> x = torch.randn(2, 5, 16)
        >>> torch.equal(merge_heads(split_heads(x, 4)), x)
        True
    """
    B, H, T, d_head = x.shape
    x = x.transpose(1, 2)  # (B, T, H, d_head)
    return x.reshape(B, T, H * d_head)  # (B, T, d_model)  reshape copies: x is not contiguous


def _check_mha_args(module: "MultiHeadAttention", query, key, value, mask=None, need_weights=True) -> None:
    check_tensor(query, "query", "(B, T_q, d_model)", ndim=3, kind="float")
    check_tensor(key, "key", "(B, T_k, d_model)", ndim=3, kind="float")
    check_tensor(value, "value", "(B, T_k, d_model)", ndim=3, kind="float")
    check_dim(query, "query", "(B, T_q, d_model)", -1, module.d_model, "d_model")
    check_dim(key, "key", "(B, T_k, d_model)", -1, module.d_model, "d_model")
    if value.shape != key.shape or key.shape[0] != query.shape[0]:
        raise ValueError(
            "key and value must have the same shape (B, T_k, d_model) and the same batch size B as query; "
            f"got query {_shape(query.shape)}, key {_shape(key.shape)}, value {_shape(value.shape)}"
        )
    validate_mask(mask, (query.shape[0], module.n_heads, query.shape[1], key.shape[1]))
    check_device(module.q_proj.weight.device, "the module's parameters", query=query, key=key, value=value, mask=mask)
    check_bool(need_weights, "need_weights")


class MultiHeadAttention(nn.Module):
    """Multi-head attention, Sec. 3.2.2, built on :func:`~transformer_lib.attention.scaled_dot_product_attention`.

    Args:
        d_model: model width.
        n_heads: number of heads ``H`` (must divide ``d_model``; ``d_head = d_model // H``).
        dropout: dropout on the attention weights, applied in training mode only.
        bias: whether the four projections have a bias.
        keep_weights: whether to keep the weights of each call in ``last_weights``. ``None`` (the
            default): in eval mode only, for plots. ``True``: in training mode too. ``False``: never.
            Layers built on this module ask for weights only when it keeps them
            (``need_weights=mha.keeps_weights``), so a model in training mode, or with
            ``keep_weights=False``, runs the fused fast path throughout.

    Attributes:
        q_proj, k_proj, v_proj, out_proj: ``nn.Linear(d_model, d_model)``; ``out_proj`` is W^O.
        last_weights: the weights ``(B, H, T_q, T_k)`` of the last forward call (detached) when the
            module keeps them (see ``keep_weights``) and they were computed; ``None`` otherwise.

    Shape:
        - query: ``(B, T_q, d_model)``, key and value: ``(B, T_k, d_model)``
        - mask: bool, ``True`` = may attend, broadcastable to ``(B, H, T_q, T_k)``
        - out: ``(B, T_q, d_model)``, weights: ``(B, H, T_q, T_k)``

    Returns:
        ``(out, weights)``; ``weights`` is ``None`` when called with ``need_weights=False`` (the fused
        path, which never forms them). A query row with no allowed key gives zero weights and ``out``
        equal to ``out_proj.bias`` there (the attention output is zero; torch's MHA gives NaN).

    Example:
        >>> mha = MultiHeadAttention(d_model=16, n_heads=4)
        >>> x = torch.randn(2, 5, 16)
        >>> out, weights = mha(x, x, x)
        >>> out.shape, weights.shape
        (torch.Size([2, 5, 16]), torch.Size([2, 4, 5, 5]))
        >>> fast, none = mha(x, x, x, need_weights=False)  # fused kernel, same result
        >>> torch.allclose(fast, out, atol=1e-6), none
        (True, None)
    """

    def __init__(
        self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True, keep_weights: bool | None = None
    ) -> None:
        super().__init__()
        _check_heads(d_model, n_heads)
        if keep_weights not in (None, True, False):
            raise TypeError(f"keep_weights must be None, True or False; got {keep_weights!r}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout = check_probability(dropout, "dropout")
        check_bool(bias, "bias")
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)  # W^Q of all heads side by side
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)  # W^K
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)  # W^V
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W^O
        self.keep_weights = keep_weights
        self.last_weights: torch.Tensor | None = None

    @property
    def keeps_weights(self) -> bool:
        """Whether a call now keeps its weights in ``last_weights`` (see ``keep_weights``)."""
        return (not self.training) if self.keep_weights is None else self.keep_weights

    @door(_check_mha_args)
    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        p = self.dropout if self.training else 0.0
        if not need_weights:  # the fast path: a fused kernel that never forms the (B, H, T_q, T_k) weights
            q, k, v = self._fused_projections(query, key, value)  # 3 x (B, H, T, d_head)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T_q, d_head)
            self.last_weights = None
            return self.out_proj(merge_heads(out)), None  # (B, T_q, d_model)
        q = split_heads(self.q_proj(query), self.n_heads)  # (B, H, T_q, d_head)  Q W_i^Q for every head i
        k = split_heads(self.k_proj(key), self.n_heads)  # (B, H, T_k, d_head)  K W_i^K
        v = split_heads(self.v_proj(value), self.n_heads)  # (B, H, T_k, d_head)  V W_i^V
        out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=p)  # (B, H, T_q, d_head), (B, H, T_q, T_k)
        self.last_weights = weights.detach() if self.keeps_weights else None
        return self.out_proj(merge_heads(out)), weights  # (B, T_q, d_model)  Concat(head_1..head_h) W^O

    def _fused_projections(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor):
        """Q W^Q, K W^K, V W^V split into heads, with one matrix product for the inputs that are the same tensor."""
        roles = (self.q_proj, self.k_proj, self.v_proj)
        if query is key and key is value:  # self-attention: x [W^Q; W^K; W^V] in one product
            groups = [(query, roles)]
        elif key is value:  # cross-attention over a memory: memory [W^K; W^V] in one product
            groups = [(query, roles[:1]), (key, roles[1:])]
        else:
            groups = [(query, roles[:1]), (key, roles[1:2]), (value, roles[2:])]
        projected = []
        for x, layers in groups:
            if len(layers) == 1:
                projected.append(layers[0](x))  # (B, T, d_model)
                continue
            weight = torch.cat([layer.weight for layer in layers])  # (n d_model, d_model)  stacked as in nn.MHA
            bias = None if layers[0].bias is None else torch.cat([layer.bias for layer in layers])  # (n d_model,)
            projected.extend(F.linear(x, weight, bias).chunk(len(layers), dim=-1))  # n x (B, T, d_model)
        return [split_heads(x, self.n_heads) for x in projected]  # 3 x (B, H, T, d_head)


_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


def _check_to_torch_args(mha: nn.Module) -> None:
    layers = [getattr(mha, name, None) for name in _PROJECTIONS]
    if not isinstance(mha, nn.Module) or not all(isinstance(layer, nn.Linear) for layer in layers):
        raise TypeError(
            "mha must be a MultiHeadAttention with nn.Linear attributes q_proj, k_proj, v_proj, out_proj; "
            f"got {type(mha).__name__}"
        )
    d_model = mha.q_proj.in_features
    shapes = {tuple(layer.weight.shape) for layer in layers}
    if shapes != {(d_model, d_model)} or len({layer.bias is None for layer in layers}) != 1:
        raise ValueError(
            "mha's four projections must all be nn.Linear(d_model, d_model), all with or all without a bias; got "
            + ", ".join(f"{n} {tuple(l.weight.shape)}{'' if l.bias is not None else ' no bias'}"
                        for n, l in zip(_PROJECTIONS, layers))
        )
    if not hasattr(mha, "n_heads"):
        raise TypeError(f"mha must have an attribute n_heads, the number of heads; {type(mha).__name__} has none")
    _check_heads(d_model, mha.n_heads)


@door(_check_to_torch_args)
def to_torch_multihead(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    """Copy ``mha`` into an ``nn.MultiheadAttention(batch_first=True)`` that computes the same thing.

    PyTorch keeps W^Q, W^K, W^V stacked in one ``in_proj_weight`` of shape ``(3 d_model, d_model)``, in
    that order, with ``in_proj_bias`` likewise; ``out_proj`` is W^O. Both ``nn.Linear.weight`` and
    ``in_proj_weight`` are ``(out_features, in_features)``, so nothing is transposed. The result holds
    copies (training one does not change the other), on ``mha``'s device and dtype, in ``mha``'s mode.

    Its bool ``attn_mask`` has the opposite polarity (``True`` = NOT allowed): convert masks with
    :func:`~transformer_lib.masks.to_torch_attn_mask`, and pass ``average_attn_weights=False`` for the
    per-head weights.

    Args:
        mha: a :class:`MultiHeadAttention` (or any module with ``n_heads`` and the four ``nn.Linear``
            projections ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``).

    Returns:
        ``nn.MultiheadAttention(d_model, n_heads, dropout, bias, batch_first=True)`` with ``mha``'s weights.

    Example:
        >>> mha = MultiHeadAttention(d_model=16, n_heads=4).eval()
        >>> x = torch.randn(2, 5, 16)
        >>> out, _ = to_torch_multihead(mha).eval()(x, x, x)
        >>> torch.allclose(out, mha(x, x, x)[0], atol=1e-6)
        True
    """
    w, has_bias = mha.q_proj.weight, mha.q_proj.bias is not None
    p = getattr(mha, "dropout", 0.0)
    p = getattr(p, "p", p)  # a float, or an nn.Dropout module's probability
    theirs = nn.MultiheadAttention(w.shape[1], mha.n_heads, dropout=p, bias=has_bias, batch_first=True,
                                   device=w.device, dtype=w.dtype)
    with torch.no_grad():  # copying values into parameters is not part of any graph
        q, k, v, o = (getattr(mha, name) for name in _PROJECTIONS)
        theirs.in_proj_weight.copy_(torch.cat([q.weight, k.weight, v.weight]))  # (3 d_model, d_model) [W^Q; W^K; W^V]
        theirs.out_proj.weight.copy_(o.weight)  # (d_model, d_model) W^O
        if has_bias:
            theirs.in_proj_bias.copy_(torch.cat([q.bias, k.bias, v.bias]))  # (3 d_model,)
            theirs.out_proj.bias.copy_(o.bias)  # (d_model,)
    return theirs.train(mha.training)
