"""Tests of transformer_lib.rnn: rnn_forward against nn.RNN (values and gradients), additive attention,
RNNSeq2Seq (shapes, padding, causality, attention weights, learning), and clear errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from transformer_lib.rnn import RNNSeq2Seq, additive_attention, rnn_forward
from transformer_lib.tasks import PAD_ID, make_batch


def torch_rnn_and_weights(d_in, d_h):
    rnn = nn.RNN(d_in, d_h, batch_first=True)
    return rnn, (rnn.weight_ih_l0.T, rnn.weight_hh_l0.T, rnn.bias_ih_l0 + rnn.bias_hh_l0)


@pytest.mark.parametrize(("B", "T", "d_in", "d_h"), [(1, 1, 3, 4), (3, 6, 4, 4), (2, 9, 5, 3)])
def test_rnn_forward_matches_nn_rnn(B, T, d_in, d_h):
    rnn, weights = torch_rnn_and_weights(d_in, d_h)
    x, h0 = torch.randn(B, T, d_in), torch.randn(B, d_h)
    H = rnn_forward(x, h0, *weights)
    expected, last = rnn(x, h0.unsqueeze(0))
    assert H.shape == (B, T, d_h)
    assert_close(H, expected)
    assert_close(H[:, -1], last[0])


def test_rnn_forward_gradients_match_nn_rnn():
    rnn, _ = torch_rnn_and_weights(3, 4)
    x, h0 = torch.randn(2, 5, 3, requires_grad=True), torch.randn(2, 4, requires_grad=True)
    W_xh = rnn.weight_ih_l0.detach().T.clone().requires_grad_()
    W_hh = rnn.weight_hh_l0.detach().T.clone().requires_grad_()
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().clone().requires_grad_()
    R = torch.randn(2, 5, 4)
    (rnn_forward(x, h0, W_xh, W_hh, b) * R).sum().backward()
    x2, h02 = x.detach().clone().requires_grad_(), h0.detach().clone().requires_grad_()
    (rnn(x2, h02.unsqueeze(0))[0] * R).sum().backward()
    assert_close(x.grad, x2.grad)
    assert_close(h0.grad, h02.grad)
    assert_close(W_hh.grad, rnn.weight_hh_l0.grad.T)
    assert_close(W_xh.grad, rnn.weight_ih_l0.grad.T)
    assert_close(b.grad, rnn.bias_ih_l0.grad)


def test_rnn_forward_is_causal_in_time():
    _, weights = torch_rnn_and_weights(3, 4)
    x = torch.randn(2, 6, 3)
    changed = x.clone()
    changed[:, 4] += 1.0  # a later input cannot change an earlier state
    H, H2 = rnn_forward(x, torch.zeros(2, 4), *weights), rnn_forward(changed, torch.zeros(2, 4), *weights)
    assert torch.equal(H[:, :4], H2[:, :4]) and not torch.allclose(H[:, 4:], H2[:, 4:])


@pytest.mark.parametrize(("args", "error", "match"), [
    ((torch.randn(2, 3), torch.zeros(2, 4)), ValueError, r"x must have shape \(B, T, d_in\) \(3 dims\); got shape \(2, 3\)"),
    ((torch.randn(2, 5, 3), torch.zeros(3, 4)), ValueError, r"h0 must have shape \(B, d_h\) with B \(the batch size of x\) = 2"),
    ((torch.randn(2, 5, 3).long(), torch.zeros(2, 4)), TypeError, r"x must be a floating-point tensor"),
])
def test_rnn_forward_bad_input(args, error, match):
    _, weights = torch_rnn_and_weights(3, 4)
    with pytest.raises(error, match=match):
        rnn_forward(*args, *weights)


def test_rnn_forward_wrong_weight_shape_names_the_expected_shapes():
    _, (W_xh, W_hh, b) = torch_rnn_and_weights(3, 4)
    with pytest.raises(ValueError, match=r"W_xh must be \(d_in, d_h\) = \(3, 4\).*got \(4, 3\)"):
        rnn_forward(torch.randn(2, 5, 3), torch.zeros(2, 4), W_xh.T, W_hh, b)


# ---------------------------------------------------------------------------------------- additive attention
def test_additive_attention_is_the_equation_written_out():
    B, T, d_q, d_k, d_v, d_a = 3, 5, 4, 6, 2, 7
    q, k, v = torch.randn(B, d_q), torch.randn(B, T, d_k), torch.randn(B, T, d_v)
    W_q, W_k, v_a = torch.randn(d_q, d_a), torch.randn(d_k, d_a), torch.randn(d_a)
    context, weights = additive_attention(q, k, v, W_q, W_k, v_a)
    assert context.shape == (B, d_v) and weights.shape == (B, T)
    for b in range(B):  # one key at a time, as in Bahdanau et al. (2015)
        scores = torch.stack([v_a @ torch.tanh(q[b] @ W_q + k[b, j] @ W_k) for j in range(T)])
        assert_close(weights[b], torch.softmax(scores, dim=0))
        assert_close(context[b], (weights[b, :, None] * v[b]).sum(0))


def test_additive_attention_mask_gives_zero_weight_and_renormalises():
    q, k = torch.randn(2, 4), torch.randn(2, 5, 4)
    W, v_a = torch.randn(4, 3), torch.randn(3)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    context, weights = additive_attention(q, k, k, W, W, v_a, mask)
    assert (weights[0, 3:] == 0).all()
    assert_close(weights.sum(-1), torch.ones(2))
    short, w_short = additive_attention(q[:1], k[:1, :3], k[:1, :3], W, W, v_a)  # as if the padding were not there
    assert_close(weights[0, :3], w_short[0]) and assert_close(context[:1], short)


@pytest.mark.parametrize(("shapes", "error", "match"), [
    (dict(query=(2, 4, 1)), ValueError, r"query must have shape \(B, d_q\) \(2 dims\)"),
    (dict(W_q=(3, 5)), ValueError, r"W_q must be \(d_q, d_a\) = \(4, 5\); got \(3, 5\)"),
    (dict(values=(2, 6, 3)), ValueError, r"must agree on B \(and keys and values on T\)"),
])
def test_additive_attention_bad_input(shapes, error, match):
    sizes = dict(query=(2, 4), keys=(2, 5, 6), values=(2, 5, 3), W_q=(4, 5), W_k=(6, 5), v_a=(5,)) | shapes
    with pytest.raises(error, match=match):
        additive_attention(*(torch.randn(*s) for s in sizes.values()))


# ------------------------------------------------------------------------------------------------ RNNSeq2Seq
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [False, True])
def test_seq2seq_shapes_and_attention_weights(cell, attention):
    model = RNNSeq2Seq(vocab_size=10, d_embed=6, d_hidden=8, cell=cell, attention=attention).eval()
    batch = make_batch("copy", 3, 5, 10, min_length=2, generator=torch.Generator().manual_seed(0))
    logits = model(batch.src, batch.tgt_in)
    assert logits.shape == (3, batch.tgt_in.shape[1], 10)
    if attention:
        w = model.last_weights  # (B, T, S)
        assert w.shape == (3, batch.tgt_in.shape[1], batch.src.shape[1])
        assert_close(w.sum(-1), torch.ones(w.shape[:2]))
        assert (w.masked_select((batch.src == PAD_ID)[:, None, :].expand_as(w)) == 0).all()  # padding: no weight
    else:
        assert model.last_weights is None


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [False, True])
def test_padding_does_not_change_a_sequence_s_outputs(cell, attention):
    """A short source padded inside a batch gives the same logits as alone: the encoder packs, attention masks."""
    model = RNNSeq2Seq(vocab_size=10, d_embed=6, d_hidden=8, cell=cell, attention=attention).eval()
    src = torch.tensor([[4, 5, 6, 0, 0], [7, 8, 9, 3, 4]])  # the first has 2 padding positions
    tgt_in = torch.tensor([[1, 4, 5, 6], [1, 7, 8, 9]])
    together = model(src, tgt_in)
    alone = model(src[:1, :3], tgt_in[:1])
    assert_close(together[:1], alone)


@pytest.mark.parametrize("attention", [False, True])
def test_seq2seq_decoder_is_causal_and_every_parameter_gets_a_gradient(attention):
    model = RNNSeq2Seq(vocab_size=10, d_embed=6, d_hidden=8, attention=attention)
    src, tgt_in = torch.randint(3, 10, (2, 5)), torch.randint(1, 10, (2, 6))
    changed = tgt_in.clone()
    changed[:, 4] = 3 if int(tgt_in[0, 4]) != 3 else 4
    with torch.no_grad():
        assert torch.equal(model(src, tgt_in)[:, :4], model(src, changed)[:, :4])
    model(src, tgt_in).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_attention_model_learns_to_copy_a_batch():
    torch.manual_seed(0)
    model = RNNSeq2Seq(vocab_size=10, d_embed=8, d_hidden=16, attention=True)
    batch = make_batch("copy", 8, 4, 10, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny operations: a second thread only waits (and, on a busy machine, a lot)
    try:
        for _ in range(60):
            loss = F.cross_entropy(model(batch.src, batch.tgt_in).reshape(-1, 10), batch.tgt_out.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    assert loss.item() < 0.05


def test_seq2seq_bad_input_and_config():
    model = RNNSeq2Seq(vocab_size=10, d_embed=4, d_hidden=4)
    with pytest.raises(ValueError, match=r"src contains token ids outside \[0, 10\)"):
        model(torch.tensor([[3, 12]]), torch.tensor([[1, 3]]))
    with pytest.raises(ValueError, match=r"every source sequence needs at least one token that is not pad_id = 0"):
        model(torch.tensor([[3, 4], [0, 0]]), torch.tensor([[1, 3], [1, 3]]))
    with pytest.raises(ValueError, match=r"must have the same batch size B"):
        model(torch.tensor([[3, 4]]), torch.tensor([[1, 3], [1, 3]]))
    with pytest.raises(ValueError, match=r"cell must be one of \['gru', 'lstm'\]; got 'rnn'"):
        RNNSeq2Seq(10, 4, 4, cell="rnn")
    with pytest.raises(ValueError, match=r"d_hidden must be a positive int; got 0"):
        RNNSeq2Seq(10, 4, 0)
    with pytest.raises(ValueError, match=r"pad_id must be an id in \[0, vocab_size = 10\); got 10"):
        RNNSeq2Seq(10, 4, 4, pad_id=10)
