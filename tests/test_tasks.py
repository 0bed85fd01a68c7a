"""Tests of transformer_lib.tasks: the copy and reverse batches (layout, padding, seeds), token_accuracy, errors."""

import pytest
import torch
import torch.nn.functional as F

from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.tasks import (BOS_ID, EOS_ID, FIRST_CONTENT_ID, PAD_ID, TASKS, Seq2SeqBatch, make_batch,
                                   token_accuracy)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_special_ids_are_the_library_convention():
    assert (PAD_ID, BOS_ID, EOS_ID, FIRST_CONTENT_ID) == (0, 1, 2, 3)
    assert TASKS == ("copy", "reverse")


@pytest.mark.parametrize("task", TASKS)
def test_fixed_length_layout(task):
    batch = make_batch(task, 4, 6, vocab_size=12, generator=gen())
    assert isinstance(batch, Seq2SeqBatch)
    assert batch.src.shape == (4, 6) and batch.tgt_in.shape == (4, 7) and batch.tgt_out.shape == (4, 7)
    assert all(t.dtype == torch.long for t in (batch.src, batch.tgt_in, batch.tgt_out, batch.lengths))
    assert torch.equal(batch.lengths, torch.full((4,), 6))
    assert ((batch.src >= FIRST_CONTENT_ID) & (batch.src < 12)).all()  # content only, no special id
    target = batch.src if task == "copy" else batch.src.flip(1)
    assert torch.equal(batch.tgt_in, torch.cat([torch.full((4, 1), BOS_ID), target], dim=1))  # shifted right
    assert torch.equal(batch.tgt_out, torch.cat([target, torch.full((4, 1), EOS_ID)], dim=1))
    assert torch.equal(batch.tgt_in[:, 1:], batch.tgt_out[:, :-1])  # teacher forcing: input = output shifted


@pytest.mark.parametrize("task", TASKS)
def test_variable_lengths_are_padded_after_each_sequence(task):
    batch = make_batch(task, 64, 9, vocab_size=10, min_length=3, generator=gen(1))
    S = batch.src.shape[1]
    assert 3 <= int(batch.lengths.min()) and int(batch.lengths.max()) == S <= 9
    assert len(set(batch.lengths.tolist())) > 1  # lengths do vary
    for b in range(64):
        n = int(batch.lengths[b])
        content = batch.src[b, :n]
        assert ((content >= FIRST_CONTENT_ID)).all() and (batch.src[b, n:] == PAD_ID).all()
        target = content if task == "copy" else content.flip(0)
        assert batch.tgt_in[b, 0] == BOS_ID and torch.equal(batch.tgt_in[b, 1:n + 1], target)
        assert torch.equal(batch.tgt_out[b, :n], target) and batch.tgt_out[b, n] == EOS_ID
        assert (batch.tgt_in[b, n + 1:] == PAD_ID).all() and (batch.tgt_out[b, n + 1:] == PAD_ID).all()


def test_seeded_batches_are_reproducible_and_seeds_differ():
    a, b = make_batch("copy", 8, 5, 20, generator=gen(3)), make_batch("copy", 8, 5, 20, generator=gen(3))
    assert torch.equal(a.src, b.src)
    assert not torch.equal(a.src, make_batch("copy", 8, 5, 20, generator=gen(4)).src)
    torch.manual_seed(0)
    c = make_batch("copy", 8, 5, 20)  # the global generator when none is given
    torch.manual_seed(0)
    assert torch.equal(c.src, make_batch("copy", 8, 5, 20).src)


def test_min_length_equal_to_length_and_to_device():
    batch = make_batch("reverse", 3, 4, 8, min_length=4, generator=gen())
    assert torch.equal(batch.lengths, torch.full((3,), 4))
    moved = batch.to("cpu")
    assert all(torch.equal(x, y) for x, y in zip((moved.src, moved.tgt_out), (batch.src, batch.tgt_out)))


def test_token_accuracy_counts_eos_and_leaves_out_padding():
    tgt_out = torch.tensor([[5, 6, EOS_ID, PAD_ID], [4, EOS_ID, PAD_ID, PAD_ID]])  # (B, T)
    logits = F.one_hot(tgt_out, 8).float()  # (B, T, V) right everywhere
    assert torch.equal(token_accuracy(logits, tgt_out), torch.ones(2))
    logits[0, 0] = F.one_hot(torch.tensor(7), 8).float()  # one of 3 real tokens wrong
    logits[1, 3] = F.one_hot(torch.tensor(7), 8).float()  # a padding position: not counted
    torch.testing.assert_close(token_accuracy(logits, tgt_out), torch.tensor([2 / 3, 1.0]))


def test_a_batch_feeds_the_transformer_and_its_loss():
    """The layout notebook 08 relies on: model(src, tgt_in) scored against tgt_out, padding ignored."""
    batch = make_batch("reverse", 4, 6, 12, min_length=2, generator=gen())
    model = Transformer(TransformerConfig.tiny(src_vocab_size=12, tgt_vocab_size=12))
    logits = model(batch.src, batch.tgt_in)  # (B, T, V)
    assert logits.shape == (*batch.tgt_out.shape, 12)
    loss = F.cross_entropy(logits.reshape(-1, 12), batch.tgt_out.reshape(-1), ignore_index=PAD_ID)
    assert torch.isfinite(loss) and token_accuracy(logits, batch.tgt_out).shape == (4,)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(task="sort"), ValueError, r"task must be one of \('copy', 'reverse'\); got 'sort'"),
    (dict(vocab_size=3), ValueError, r"vocab_size must be > 3 \(ids 0, 1, 2 are PAD, BOS, EOS"),
    (dict(batch_size=0), ValueError, r"batch_size must be a positive int; got 0"),
    (dict(length=2.5), TypeError, r"length must be a positive int"),
    (dict(min_length=7), ValueError, r"min_length must be between 1 and length = 5; got 7"),
    (dict(generator=0), TypeError, r"generator must be a torch.Generator or None; got int"),
])
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    args = dict(task="copy", batch_size=2, length=5, vocab_size=10) | kwargs
    task = args.pop("task")
    with pytest.raises(error, match=match):
        make_batch(task, **args)


def test_token_accuracy_bad_shapes():
    with pytest.raises(ValueError, match=r"logits \(B, T, V\) and tgt_out \(B, T\) must agree on B and T"):
        token_accuracy(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"tgt_out must be an integer tensor"):
        token_accuracy(torch.zeros(2, 3, 5), torch.zeros(2, 3))
