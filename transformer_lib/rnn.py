"""Recurrent networks, the baselines of notebook 01: what the Transformer replaced, and why.

- :func:`rnn_forward`, an Elman RNN written as the loop over time it is: ``T`` steps, each waiting for
  the one before.
- :func:`additive_attention`, the score of Bahdanau et al. (2015): ``v_a^T tanh(q W_q + k W_k)``.
- :class:`RNNSeq2Seq`, a GRU or LSTM encoder-decoder. Without attention the decoder starts from the
  encoder's last state only, one fixed-size vector for the whole source (Sutskever et al., 2014); with
  attention it looks back at every encoder state at every step (Bahdanau et al., 2015).

Vectors are rows, as in PyTorch and in the other notebooks: ``h @ W_hh``, not ``W_hh h``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import (_shape, check_bool, check_device, check_dim, check_positive_int, check_tensor,
                          check_token_ids, door)

__all__ = ["rnn_forward", "additive_attention", "RNNSeq2Seq"]


def _check_rnn_args(x, h0, W_xh, W_hh, b) -> None:
    check_tensor(x, "x", "(B, T, d_in)", ndim=3, kind="float")
    check_tensor(h0, "h0", "(B, d_h)", ndim=2, kind="float")
    check_tensor(W_xh, "W_xh", "(d_in, d_h)", ndim=2, kind="float")
    check_tensor(W_hh, "W_hh", "(d_h, d_h)", ndim=2, kind="float")
    check_tensor(b, "b", "(d_h,)", ndim=1, kind="float")
    B, T, d_in = x.shape
    d_h = h0.shape[1]
    if T == 0:
        raise ValueError(f"x must have at least one time step, shape (B, T, d_in) with T >= 1; got {_shape(x.shape)}")
    check_dim(h0, "h0", "(B, d_h)", 0, B, "B (the batch size of x)")
    check_device(x.device, "x", h0=h0, W_xh=W_xh, W_hh=W_hh, b=b)
    if W_xh.shape != (d_in, d_h) or W_hh.shape != (d_h, d_h) or b.shape != (d_h,):
        raise ValueError(f"with x (B, T, d_in) = {_shape(x.shape)} and h0 (B, d_h) = {_shape(h0.shape)}, W_xh must "
                         f"be (d_in, d_h) = {_shape((d_in, d_h))}, W_hh (d_h, d_h) = {_shape((d_h, d_h))} and b "
                         f"(d_h,) = {_shape((d_h,))}; got {_shape(W_xh.shape)}, {_shape(W_hh.shape)}, {_shape(b.shape)}")


@door(_check_rnn_args)
def rnn_forward(x: torch.Tensor, h0: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor,
                b: torch.Tensor) -> torch.Tensor:
    """An Elman RNN: ``h_t = tanh(x_t W_xh + h_{t-1} W_hh + b)`` for ``t = 1 .. T``, one step at a time.

    ``torch.nn.RNN`` computes the same with ``W_xh = weight_ih_l0.T``, ``W_hh = weight_hh_l0.T`` and
    ``b = bias_ih_l0 + bias_hh_l0``.

    Args:
        x: the inputs, one vector per time step. h0: the state before the first step.
        W_xh: input-to-hidden weights. W_hh: hidden-to-hidden (recurrent) weights. b: the bias.

    Shape:
        - x: ``(B, T, d_in)``, h0: ``(B, d_h)``, W_xh: ``(d_in, d_h)``, W_hh: ``(d_h, d_h)``, b: ``(d_h,)``
        - output: ``(B, T, d_h)``, the states ``h_1 .. h_T`` (not ``h0``); the last state is ``output[:, -1]``.

    Returns:
        Every hidden state, in time order.

    Example:
        >>> H = rnn_forward(torch.randn(2, 5, 3), torch.zeros(2, 4), torch.randn(3, 4), torch.randn(4, 4), torch.zeros(4))
        >>> H.shape
        torch.Size([2, 5, 4])
    """
    h = h0  # (B, d_h)
    states = []
    for t in range(x.shape[1]):  # T steps, each needs the previous one: they cannot run in parallel
        h = torch.tanh(x[:, t] @ W_xh + h @ W_hh + b)  # (B, d_h)
        states.append(h)
    return torch.stack(states, dim=1)  # (B, T, d_h)


def _check_additive_args(query, keys, values, W_q, W_k, v_a, mask=None) -> None:
    check_tensor(query, "query", "(B, d_q)", ndim=2, kind="float")
    check_tensor(keys, "keys", "(B, T, d_k)", ndim=3, kind="float")
    check_tensor(values, "values", "(B, T, d_v)", ndim=3, kind="float")
    check_tensor(v_a, "v_a", "(d_a,)", ndim=1, kind="float")
    d_a = v_a.shape[0]
    for W, name, rows in ((W_q, "W_q", query.shape[1]), (W_k, "W_k", keys.shape[2])):
        check_tensor(W, name, f"(d_{name[-1]}, d_a)", ndim=2, kind="float")
        if W.shape != (rows, d_a):
            raise ValueError(f"{name} must be (d_{name[-1]}, d_a) = {_shape((rows, d_a))}; got {_shape(W.shape)}")
    if keys.shape[:2] != values.shape[:2] or keys.shape[0] != query.shape[0]:
        raise ValueError(f"query (B, d_q), keys (B, T, d_k) and values (B, T, d_v) must agree on B (and keys and "
                         f"values on T); got {_shape(query.shape)}, {_shape(keys.shape)}, {_shape(values.shape)}")
    if mask is not None:
        check_tensor(mask, "mask", "(B, T)", ndim=2, kind="bool")
        check_dim(mask, "mask", "(B, T)", 1, keys.shape[1], "T")
    check_device(query.device, "query", keys=keys, values=values, W_q=W_q, W_k=W_k, v_a=v_a, mask=mask)


@door(_check_additive_args)
def additive_attention(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, W_q: torch.Tensor,
                       W_k: torch.Tensor, v_a: torch.Tensor,
                       mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive attention (Bahdanau et al., 2015): ``score_j = v_a^T tanh(q W_q + k_j W_k)``.

    One query (e.g. the decoder's state) scores every key (e.g. every encoder state) with a small
    network of one hidden layer of width ``d_a``; a softmax over the keys gives the weights, and the
    context is the weighted average of the values.

    Args:
        query: one query per sequence. keys, values: ``T`` of each per sequence.
        W_q, W_k: project query and keys to the hidden width ``d_a``. v_a: reads one score off the hidden layer.
        mask: optional bool, ``True`` = may attend (e.g. ``src != pad_id``); masked keys get weight 0.

    Shape:
        - query: ``(B, d_q)``, keys: ``(B, T, d_k)``, values: ``(B, T, d_v)``, mask: ``(B, T)``
        - W_q: ``(d_q, d_a)``, W_k: ``(d_k, d_a)``, v_a: ``(d_a,)``
        - output: context ``(B, d_v)``, weights ``(B, T)`` (each row sums to 1 over the keys)

    Returns:
        ``(context, weights)``.

    Example:
        >>> context, weights = additive_attention(torch.randn(2, 4), torch.randn(2, 6, 5), torch.randn(2, 6, 3),
        ...                                       torch.randn(4, 8), torch.randn(5, 8), torch.randn(8))
        >>> context.shape, weights.shape
        (torch.Size([2, 3]), torch.Size([2, 6]))
    """
    hidden = torch.tanh((query @ W_q).unsqueeze(1) + keys @ W_k)  # (B, T, d_a)  one hidden layer per key
    scores = hidden @ v_a  # (B, T)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # masked keys: weight exp(-inf) = 0
    weights = torch.softmax(scores, dim=-1)  # (B, T)  over the keys
    context = (weights.unsqueeze(1) @ values).squeeze(1)  # (B, 1, T) @ (B, T, d_v) -> (B, d_v)
    return context, weights


_CELLS = {"gru": (nn.GRU, nn.GRUCell), "lstm": (nn.LSTM, nn.LSTMCell)}


def _check_seq2seq_args(model: "RNNSeq2Seq", src, tgt_in) -> None:
    check_token_ids(src, "src", "(B, S)", model.vocab_size)
    check_token_ids(tgt_in, "tgt_in", "(B, T)", model.vocab_size)
    if src.shape[0] != tgt_in.shape[0]:
        raise ValueError(f"src (B, S) and tgt_in (B, T) must have the same batch size B; got {_shape(src.shape)}, "
                         f"{_shape(tgt_in.shape)}")
    if 0 in (src.shape[1], tgt_in.shape[1]):  # the RNN needs a step; tgt_in starts with BOS
        raise ValueError(f"src and tgt_in must hold at least one token per sequence; got src {_shape(src.shape)}, "
                         f"tgt_in {_shape(tgt_in.shape)}")
    check_device(model.src_embed.weight.device, "the model's parameters", src=src, tgt_in=tgt_in)
    if src.device.type == "cpu" and src.numel() and bool((src == model.pad_id).all(dim=1).any()):
        raise ValueError(f"every source sequence needs at least one token that is not pad_id = {model.pad_id}")


class RNNSeq2Seq(nn.Module):
    """A GRU or LSTM encoder-decoder, with or without Bahdanau's attention; trained with teacher forcing.

    Without attention the decoder (an ``nn.GRU``/``nn.LSTM``) starts from the encoder's final state and
    never sees the source again: everything it outputs must pass through that one ``(B, d_hidden)``
    vector, the bottleneck. With attention the decoder steps one token at a time (a ``GRUCell``/
    ``LSTMCell``): before step ``t`` its previous state ``s_{t-1}`` scores every encoder state with
    :func:`additive_attention`, the context ``c_t`` is fed into the step with the previous token, and the
    output reads ``[s_t; c_t]``. The encoder is unidirectional (Bahdanau et al. used a bidirectional one).

    Args:
        vocab_size: ``V``, shared by source and target. d_embed: width of the token embeddings.
        d_hidden: ``d_h``, the width of every recurrent state. cell: ``"gru"`` or ``"lstm"``.
        attention: add Bahdanau's attention, with parameters ``W_q``, ``W_k`` ``(d_h, d_h)`` and ``v_a`` ``(d_h,)``
            (its hidden width ``d_a`` is ``d_h``). pad_id: the padding id (its embedding is zero).

    Shape:
        - src: ``(B, S)`` long (padding at the end), tgt_in: ``(B, T)`` long, starting with BOS
        - output: logits ``(B, T, V)``; position ``t`` predicts target token ``t + 1``.
        - ``last_weights``: ``(B, T, S)``, the attention weights of the last forward pass in eval mode.

    Example:
        >>> model = RNNSeq2Seq(vocab_size=10, d_embed=8, d_hidden=16, attention=True)
        >>> model(torch.randint(3, 10, (2, 5)), torch.randint(1, 10, (2, 6))).shape
        torch.Size([2, 6, 10])
    """

    def __init__(self, vocab_size: int, d_embed: int, d_hidden: int, cell: str = "gru", attention: bool = False,
                 pad_id: int = 0) -> None:
        super().__init__()
        for value, name in ((vocab_size, "vocab_size"), (d_embed, "d_embed"), (d_hidden, "d_hidden")):
            check_positive_int(value, name)
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}; got {cell!r}")
        if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id must be an id in [0, vocab_size = {vocab_size}); got {pad_id!r}")
        self.vocab_size, self.pad_id, self.cell = vocab_size, pad_id, cell
        self.attention = check_bool(attention, "attention")
        self.last_weights: torch.Tensor | None = None
        rnn, rnn_cell = _CELLS[cell]
        self.src_embed = nn.Embedding(vocab_size, d_embed, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(vocab_size, d_embed, padding_idx=pad_id)
        self.encoder = rnn(d_embed, d_hidden, batch_first=True)
        if attention:
            self.decoder = rnn_cell(d_embed + d_hidden, d_hidden)  # reads [y_{t-1}; c_t]
            bound = 1 / math.sqrt(d_hidden)  # the init of nn.Linear(d_hidden, d_hidden)
            self.W_q = nn.Parameter(torch.empty(d_hidden, d_hidden).uniform_(-bound, bound))
            self.W_k = nn.Parameter(torch.empty(d_hidden, d_hidden).uniform_(-bound, bound))
            self.v_a = nn.Parameter(torch.empty(d_hidden).uniform_(-bound, bound))
            self.output_proj = nn.Linear(2 * d_hidden, vocab_size)  # reads [s_t; c_t]
        else:
            self.decoder = rnn(d_embed, d_hidden, batch_first=True)
            self.output_proj = nn.Linear(d_hidden, vocab_size)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        """Run the encoder: every state ``(B, S, d_h)`` (zero on padding) and the final state of each sequence.

        The final state is ``(1, B, d_h)`` (GRU) or a pair of them (LSTM: hidden and cell state), taken at
        each sequence's own last token, not at the padding after it.
        """
        x = self.src_embed(src)  # (B, S, d_embed)
        lengths = (src != self.pad_id).sum(dim=1).cpu()  # (B,) packing needs them on the CPU
        if bool((lengths == src.shape[1]).all()):  # no padding: nothing to pack
            return self.encoder(x)  # (B, S, d_h), final state
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        states, final = self.encoder(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
        return states, final  # (B, S, d_h), final state

    @door(_check_seq2seq_args)
    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Logits for every target position, with teacher forcing (the decoder reads ``tgt_in``).

        Shape:
            - src: ``(B, S)`` long, tgt_in: ``(B, T)`` long; output: ``(B, T, V)``
        """
        memory, final = self.encode(src)  # (B, S, d_h), the bottleneck: (1, B, d_h) (a pair for an LSTM)
        y = self.tgt_embed(tgt_in)  # (B, T, d_embed)
        if not self.attention:
            out, _ = self.decoder(y, final)  # (B, T, d_h) starts from the final state, never sees memory
            return self.output_proj(out)  # (B, T, V)
        state = tuple(f[0] for f in final) if self.cell == "lstm" else final[0]  # (B, d_h) (a pair for LSTM)
        mask = src != self.pad_id  # (B, S)
        outputs, weights = [], []
        for t in range(tgt_in.shape[1]):  # step by step: c_t needs s_{t-1}
            s = state[0] if self.cell == "lstm" else state  # (B, d_h)
            context, w = additive_attention(s, memory, memory, self.W_q, self.W_k, self.v_a, mask)  # (B, d_h), (B, S)
            state = self.decoder(torch.cat([y[:, t], context], dim=-1), state)  # (B, d_h) (a pair for LSTM)
            s = state[0] if self.cell == "lstm" else state  # (B, d_h)
            outputs.append(torch.cat([s, context], dim=-1))  # (B, 2 d_h)
            weights.append(w)
        if not self.training:
            self.last_weights = torch.stack(weights, dim=1).detach()  # (B, T, S)
        return self.output_proj(torch.stack(outputs, dim=1))  # (B, T, V)
