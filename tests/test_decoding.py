"""Tests of transformer_lib.decoding: greedy_decode and beam_search."""

import itertools
from functools import partial

import pytest
import torch

from transformer_lib.decoding import beam_search, greedy_decode
from transformer_lib.masks import causal_mask
from transformer_lib.model import Transformer, TransformerConfig

BOS, EOS, PAD = 1, 2, 0
# Both decoders share arguments, validation and output format: the shared tests run on each.
DECODERS = pytest.mark.parametrize("decode", [greedy_decode, beam_search, partial(beam_search, beam_size=1)],
                                   ids=["greedy", "beam4", "beam1"])


class Scripted(Transformer):
    """A Transformer whose decoder emits a fixed script per sequence: token 5 until step eos_at[b], then EOS."""

    def __init__(self, eos_at):
        super().__init__(TransformerConfig.tiny(src_vocab_size=8, tgt_vocab_size=8))
        self.eos_at = eos_at
        self.encode_calls = 0

    def encode(self, src, src_mask=None):
        self.encode_calls += 1
        return super().encode(src, src_mask)

    def decode(self, tgt, memory, src_mask=None, tgt_mask=None):
        B, T = tgt.shape
        logits = torch.zeros(B, T, 8)
        for b, at in enumerate(self.eos_at):
            logits[b, -1, EOS if T >= at else 5] = 1.0
        return logits


@DECODERS
def test_shape_bos_dtype_and_max_len(decode):
    model = Transformer(TransformerConfig.tiny())
    src = torch.randint(3, 32, (3, 6))
    out = decode(model, src, max_len=7, bos_id=BOS, eos_id=EOS)
    assert out.dtype == torch.long and out.shape[0] == 3 and 1 <= out.shape[1] <= 7
    assert (out[:, 0] == BOS).all()
    assert decode(model, src, max_len=1, bos_id=BOS, eos_id=EOS).tolist() == [[BOS]] * 3


@DECODERS
def test_deterministic_and_restores_training_mode(decode):
    model = Transformer(TransformerConfig.tiny(dropout=0.1)).train()
    src = torch.randint(3, 32, (2, 6))
    a = decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS)
    b = decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS)
    assert torch.equal(a, b)  # eval mode inside: no dropout
    assert model.training
    decode(model.eval(), src, max_len=10, bos_id=BOS, eos_id=EOS)
    assert not model.training  # an eval model stays in eval mode


@DECODERS
def test_decodes_without_building_a_graph(decode, monkeypatch):
    model = Transformer(TransformerConfig.tiny())
    grad_modes = []
    decode_step = model.decode

    def recording_decode(*args, **kwargs):
        grad_modes.append(torch.is_grad_enabled())
        return decode_step(*args, **kwargs)

    monkeypatch.setattr(model, "decode", recording_decode)
    decode(model, torch.randint(3, 32, (2, 6)), max_len=5, bos_id=BOS, eos_id=EOS)
    assert grad_modes and not any(grad_modes)
    assert torch.is_grad_enabled()  # restored afterwards


class NeverEnds(Transformer):
    """The real decoder, with EOS made impossible: decoding runs to max_len."""

    def decode(self, tgt, memory, src_mask=None, tgt_mask=None):
        logits = super().decode(tgt, memory, src_mask, tgt_mask)  # (B, T, V)
        return logits.index_fill(-1, torch.tensor([EOS]), float("-inf"))


@DECODERS
def test_checks_the_source_once_not_at_every_step(decode, check_calls):
    model = NeverEnds(TransformerConfig.tiny())
    src = torch.randint(3, 32, (2, 6))
    out = decode(model, src, max_len=6, bos_id=BOS, eos_id=EOS)
    assert out.shape == (2, 6)  # 5 decoding steps ran
    assert check_calls["check_token_ids"] == 1  # src at the door; not the growing prefix at each step
    assert check_calls["validate_mask"] == 0
    with pytest.raises(ValueError, match=r"src contains token ids outside \[0, 32\)"):  # on the CPU, values too
        decode(model, src + 32, max_len=6, bos_id=BOS, eos_id=EOS)


def test_stops_when_all_sequences_ended_and_pads_after_eos():
    model = Scripted(eos_at=[2, 4])  # sequence 0 emits EOS at step 2, sequence 1 at step 4
    out = greedy_decode(model, torch.randint(3, 8, (2, 5)), max_len=20, bos_id=BOS, eos_id=EOS)
    assert out.tolist() == [
        [BOS, 5, EOS, PAD, PAD],
        [BOS, 5, 5, 5, EOS],
    ]
    assert model.encode_calls == 1  # the source is encoded once


def test_stops_at_max_len_without_eos():
    model = Scripted(eos_at=[100, 100])
    out = greedy_decode(model, torch.randint(3, 8, (2, 5)), max_len=6, bos_id=BOS, eos_id=EOS)
    assert out.shape == (2, 6) and (out[:, 1:] == 5).all()


def test_trained_copy_model_reproduces_the_source(copy_task):
    out = greedy_decode(copy_task.model, copy_task.src, max_len=12, bos_id=copy_task.bos_id, eos_id=copy_task.eos_id)
    assert out.shape == (8, 10)  # BOS + 8 tokens + EOS, then stop: all sequences ended
    assert torch.equal(out[:, 1:9], copy_task.src)
    assert (out[:, 9] == copy_task.eos_id).all()


@DECODERS
def test_errors(decode):
    model = Transformer(TransformerConfig.tiny())
    src = torch.randint(3, 32, (2, 6))
    with pytest.raises(ValueError, match="max_len must be <= config.max_len = 64"):
        decode(model, src, max_len=65, bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        decode(model, src, max_len=0, bos_id=BOS, eos_id=EOS)
    with pytest.raises(ValueError, match=r"bos_id must be an int token id in \[0, 32\)"):
        decode(model, src, max_len=5, bos_id=32, eos_id=EOS)
    with pytest.raises(ValueError, match=r"eos_id must be an int token id in \[0, 32\)"):
        decode(model, src, max_len=5, bos_id=BOS, eos_id=-1)
    with pytest.raises(TypeError, match=r"src must be a torch.long tensor"):
        decode(model, src.float(), max_len=5, bos_id=BOS, eos_id=EOS)
    with pytest.raises(TypeError, match="model must be a transformer_lib.model.Transformer"):
        decode(torch.nn.Linear(2, 2), src, max_len=5, bos_id=BOS, eos_id=EOS)


# -- beam_search ---------------------------------------------------------------------------------------


def _score(model, src, hyps, alpha):
    """GNMT score log P(Y|X) / ((5 + |Y|) / 6)^alpha of each hypothesis, by teacher forcing (|Y|: ids after BOS)."""
    with torch.no_grad():
        src_mask = model.eval().make_src_mask(src)  # (B, 1, 1, S)
        memory = model.encode(src, src_mask)  # (B, S, d_model)
        T = hyps.shape[1] - 1
        # The decoders mask causally only (the pad ids after EOS are not scored).
        logits = model.decode(hyps[:, :-1], memory, src_mask, causal_mask(T))  # (B, T, V)
        token_lp = logits.log_softmax(-1).gather(2, hyps[:, 1:, None])[..., 0]  # (B, T)
        is_eos = hyps[:, 1:] == EOS  # (B, T)
        length = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, T)  # (B,)  up to the first EOS
        in_hyp = torch.arange(T)[None] < length[:, None]  # (B, T)
        return torch.where(in_hyp, token_lp, 0.0).sum(1) / ((5 + length) / 6) ** alpha  # (B,)  (PAD: -inf)


def _pad_to(ids, length):
    return torch.nn.functional.pad(ids, (0, length - ids.shape[1]), value=PAD)  # (B, length)


def _untrained(seed, vocab=8):
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig.tiny(src_vocab_size=vocab, tgt_vocab_size=vocab))
    return model, torch.randint(3, vocab, (4, 6))


@pytest.mark.parametrize("length_penalty", [0.0, 0.6])
def test_beam_size_1_is_greedy_on_untrained_models(length_penalty):
    ended = []
    for seed in range(5):
        model, src = _untrained(seed)
        greedy = greedy_decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS)
        beam = beam_search(model, src, 10, BOS, EOS, beam_size=1, length_penalty=length_penalty)
        assert torch.equal(beam, greedy), f"seed {seed}"
        ended += (greedy == EOS).any(1).tolist()
    assert any(ended) and not all(ended)  # the cases cover both an EOS and reaching max_len


def test_beam_size_1_is_greedy_on_the_copy_model(copy_task):
    args = (copy_task.model, copy_task.src, 12, copy_task.bos_id, copy_task.eos_id)
    assert torch.equal(beam_search(*args, beam_size=1), greedy_decode(*args))


def test_trained_copy_model_beam_search_reproduces_the_source(copy_task):
    out = beam_search(copy_task.model, copy_task.src, 12, copy_task.bos_id, copy_task.eos_id)
    assert out.shape == (8, 10)  # BOS + 8 tokens + EOS
    assert torch.equal(out[:, 1:9], copy_task.src)
    assert (out[:, 9] == copy_task.eos_id).all()


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_beam_scores_at_least_as_well_as_greedy(length_penalty, copy_task):
    """Not a theorem (greedy's prefix can fall out of the beam), but true here, and strictly better often."""
    cases = [_untrained(seed) for seed in range(5)] + [(copy_task.model, copy_task.src)]
    n_better = 0
    for model, src in cases:
        greedy = greedy_decode(model, src, max_len=10, bos_id=BOS, eos_id=EOS)
        beam = beam_search(model, src, 10, BOS, EOS, length_penalty=length_penalty)
        s_greedy, s_beam = _score(model, src, greedy, length_penalty), _score(model, src, beam, length_penalty)
        assert (s_beam >= s_greedy - 1e-5).all()
        n_better += int((s_beam > s_greedy + 1e-4).sum())
    assert n_better > 0


@pytest.mark.parametrize("length_penalty", [0.0, 0.6])
def test_a_wide_enough_beam_finds_the_exact_best_sequence(length_penalty):
    """Vocab 6, max_len 4: 40 possible outputs; a beam of 6^3 = 216 keeps every prefix, so it is exact."""
    V, max_len = 6, 4
    content = [t for t in range(V) if t not in (EOS, PAD, BOS)]  # PAD and BOS are never generated
    outputs = [[BOS, *ids, EOS] for n in range(max_len - 1) for ids in itertools.product(content, repeat=n)]
    outputs += [[BOS, *ids] for ids in itertools.product(content, repeat=max_len - 1)]  # no EOS: cut at max_len
    every = torch.tensor([ids + [PAD] * (max_len - len(ids)) for ids in outputs])  # (85, max_len)
    n_not_greedy = 0
    for seed in range(4):
        model, src = _untrained(seed, vocab=V)
        out = beam_search(model, src, max_len, BOS, EOS, beam_size=V ** (max_len - 1), length_penalty=length_penalty)
        best = [outputs[_score(model, s.expand(len(every), -1), every, length_penalty).argmax()] for s in src]
        expected = torch.tensor([ids + [PAD] * (out.shape[1] - len(ids)) for ids in best])  # (B, L)
        assert torch.equal(out, expected), f"seed {seed}"
        greedy = greedy_decode(model, src, max_len, BOS, EOS)
        n_not_greedy += int((_pad_to(greedy, max_len) != _pad_to(out, max_len)).any(1).sum())
    assert n_not_greedy > 0  # the exact answer is not always greedy's


class Bigram(Transformer):
    """A scripted model: the next-token distribution depends only on the last token, through table src[b, 0] - 3."""

    def __init__(self, tables):
        super().__init__(TransformerConfig.tiny(src_vocab_size=8, tgt_vocab_size=8))
        self.tables = tables  # (n_tables, 8, 8) log-probabilities, [table, last token, next token]
        self.encode_calls = self.decode_calls = 0

    def encode(self, src, src_mask=None):
        self.encode_calls += 1
        memory = torch.zeros(*src.shape, self.config.d_model)  # (B, S, d_model)
        memory[:, 0, 0] = src[:, 0] - 3.0  # the table of each source travels with its beams
        return memory

    def decode(self, tgt, memory, src_mask=None, tgt_mask=None):
        self.decode_calls += 1
        return self.tables[memory[:, 0, 0].long()[:, None], tgt]  # (B, T, 8)


def _table(rules):
    """(8, 8) log-probabilities: rules[last] = {next: p}; the rest of each row's mass is spread evenly."""
    probs = torch.zeros(8, 8)
    for last in range(8):
        rule = rules.get(last, {})
        probs[last] = (1 - sum(rule.values())) / (8 - len(rule))
        for nxt, p in rule.items():
            probs[last, nxt] = p
    return probs.log()  # (8, 8)


def test_beam_finds_what_greedy_misses_and_pads_after_eos():
    tables = torch.stack([
        # Greedy takes 3 (0.5 > 0.4) and ends with P = 0.5 * 0.3; beam also keeps 4 and finds P = 0.4 * 0.9.
        _table({BOS: {3: 0.5, 4: 0.4}, 3: {EOS: 0.3}, 4: {EOS: 0.9}}),
        _table({BOS: {5: 0.9}, 5: {6: 0.9}, 6: {EOS: 0.9}}),  # one clear, longer answer
    ])  # (2, 8, 8)
    model, src = Bigram(tables), torch.tensor([[3, 7, 7], [4, 7, PAD]])  # source b uses table b
    assert greedy_decode(model, src, 20, BOS, EOS).tolist() == [[BOS, 3, EOS, PAD], [BOS, 5, 6, EOS]]
    model.encode_calls = 0
    assert beam_search(model, src, 20, BOS, EOS).tolist() == [[BOS, 4, EOS, PAD], [BOS, 5, 6, EOS]]
    assert model.encode_calls == 1  # the source is encoded once, then repeated for the beams


def test_beam_stops_once_its_finished_hypotheses_beat_every_live_one():
    model = Bigram(_table({BOS: {EOS: 0.5, 3: 0.3, 4: 0.19}, 3: {EOS: 0.9}, 4: {EOS: 0.9}})[None])  # (1, 8, 8)
    out = beam_search(model, torch.tensor([[3, 5]]), 20, BOS, EOS, beam_size=2, length_penalty=0.0)
    assert out.tolist() == [[BOS, EOS]]  # P = 0.5 beats [3, EOS] (0.27) and [4, EOS] (0.171)
    assert model.decode_calls == 2  # after step 2 two finished beat the best live (0.3 * 0.1 / 6), not 19 steps


def test_length_penalty_trades_probability_for_length():
    # [4, EOS]: P = 0.2 * 0.9 = 0.18 (|Y| = 2). [3, 5, 6, EOS]: P = 0.7 * 0.6 * 0.6 * 0.6 = 0.1512 (|Y| = 4).
    model = Bigram(_table({BOS: {3: 0.7, 4: 0.2}, 3: {5: 0.6}, 5: {6: 0.6}, 6: {EOS: 0.6}, 4: {EOS: 0.9}})[None])
    src = torch.tensor([[3, 5]])
    assert beam_search(model, src, 20, BOS, EOS, length_penalty=0.0).tolist() == [[BOS, 4, EOS]]
    # alpha = 0.6: log(0.18) / (7/6)^0.6 = -1.563 < log(0.1512) / (9/6)^0.6 = -1.480: the longer one wins.
    assert beam_search(model, src, 20, BOS, EOS, length_penalty=0.6).tolist() == [[BOS, 3, 5, 6, EOS]]


def test_beam_stops_at_max_len_without_eos():
    model = Bigram(_table({t: {5: 0.9} for t in range(8)})[None])  # EOS is never likely
    out = beam_search(model, torch.tensor([[3, 4], [3, 5]]), 6, BOS, EOS)
    assert out.tolist() == [[BOS, 5, 5, 5, 5, 5]] * 2


def test_beam_search_errors():
    model = Transformer(TransformerConfig.tiny())
    src = torch.randint(3, 32, (2, 6))
    with pytest.raises(ValueError, match="beam_size must be a positive int; got 0"):
        beam_search(model, src, 5, BOS, EOS, beam_size=0)
    with pytest.raises(TypeError, match="beam_size must be a positive int"):
        beam_search(model, src, 5, BOS, EOS, beam_size=2.0)
    with pytest.raises(ValueError, match=r"length_penalty must be a finite float >= 0 \(the paper uses 0.6\)"):
        beam_search(model, src, 5, BOS, EOS, length_penalty=-0.6)
    with pytest.raises(ValueError, match="length_penalty must be a finite float >= 0"):
        beam_search(model, src, 5, BOS, EOS, length_penalty=float("nan"))
    with pytest.raises(TypeError, match="length_penalty must be a float >= 0"):
        beam_search(model, src, 5, BOS, EOS, length_penalty="0.6")


# ---------------------------------------------------------------------- the KV cache (notebook 12)
CACHE_CASES = pytest.mark.parametrize("norm_first,seed", [(False, 0), (False, 1), (True, 0), (True, 1)],
                                      ids=["post-norm-0", "post-norm-1", "pre-norm-0", "pre-norm-1"])


def _padded_batch(seed):
    """A trained-looking random model is not needed: a random one has distinct logits; pads end rows 1 and 2."""
    torch.manual_seed(seed)
    src = torch.randint(3, 32, (4, 9))  # (B, S)
    src[1, 6:] = PAD
    src[2, 3:] = PAD
    return src


@CACHE_CASES
def test_greedy_same_tokens_with_and_without_cache(norm_first, seed):
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig.tiny(norm_first=norm_first))
    src = _padded_batch(seed)
    with_cache = greedy_decode(model, src, max_len=20, bos_id=BOS, eos_id=EOS, use_cache=True)
    without = greedy_decode(model, src, max_len=20, bos_id=BOS, eos_id=EOS, use_cache=False)
    assert torch.equal(with_cache, without)
    assert with_cache.shape[1] > 5  # long enough for the cache to matter


@CACHE_CASES
@pytest.mark.parametrize("beam_size", [2, 4])
def test_beam_same_tokens_with_and_without_cache(norm_first, seed, beam_size):
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig.tiny(norm_first=norm_first))
    src = _padded_batch(seed)
    kw = dict(max_len=16, bos_id=BOS, eos_id=EOS, beam_size=beam_size)
    assert torch.equal(beam_search(model, src, use_cache=True, **kw), beam_search(model, src, use_cache=False, **kw))


def test_cache_step_logits_equal_decode():
    from transformer_lib.cache import IncrementalDecoder

    torch.manual_seed(0)
    for norm_first in (False, True):
        model = Transformer(TransformerConfig.tiny(norm_first=norm_first)).eval()
        src, tgt = _padded_batch(0), torch.randint(3, 32, (4, 7))
        src_mask = model.make_src_mask(src)
        memory = model.encode(src, src_mask)
        state = IncrementalDecoder(model, memory, src_mask)
        steps = torch.stack([state.step(tgt[:, t]) for t in range(7)], dim=1)  # (B, T, V)
        full = model.decode(tgt, memory, src_mask, causal_mask(7))
        torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("reorder", [True, False], ids=["reordered", "not-reordered"])
def test_cache_reorder_follows_the_beams(reorder):
    """Reordering the cache rows = decoding the reordered prefixes from scratch; without the reorder, the beams
    would continue another beam's cache (so the equality is not vacuous)."""
    from transformer_lib.cache import IncrementalDecoder

    torch.manual_seed(0)
    model = Transformer(TransformerConfig.tiny()).eval()
    src, tgt = torch.randint(3, 32, (3, 5)), torch.randint(3, 32, (3, 4))
    memory = model.encode(src)
    state = IncrementalDecoder(model, memory)
    for t in range(3):
        state.step(tgt[:, t])
    index = torch.tensor([2, 2, 0])
    if reorder:
        state.reorder(index)
    last = state.step(tgt[index, 3])  # (3, V)
    full = model.decode(tgt[index], memory[index], tgt_mask=causal_mask(4))[:, -1]
    if reorder:
        torch.testing.assert_close(last, full, atol=1e-5, rtol=1e-4)
    else:
        assert not torch.allclose(last, full, atol=1e-3)


@pytest.mark.parametrize("decode", [greedy_decode, beam_search], ids=["greedy", "beam"])
def test_use_cache_must_be_bool(decode):
    model = Transformer(TransformerConfig.tiny())
    with pytest.raises(TypeError, match="use_cache"):
        decode(model, torch.randint(3, 32, (1, 4)), max_len=4, bos_id=BOS, eos_id=EOS, use_cache=1)


# ------------------------------------------------------------------ PAD and BOS are never generated (issue 11)
def _boosted(seed, boost=50.0, **config):
    """A random model whose PAD and BOS logits are the largest by far: a hook adds ``boost`` to them."""
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig.tiny(**config))
    add = torch.zeros(32)
    add[[model.config.pad_id, BOS]] = boost
    model.output_proj.register_forward_hook(lambda module, args, out: out + add)  # runs with and without the cache
    return model


def _valid_rows(out, pad=PAD):
    """Every row: BOS, then neither PAD nor BOS up to its EOS, then only PAD."""
    for row in out.tolist():
        end = row.index(EOS) if EOS in row else len(row)
        assert row[0] == BOS and not {pad, BOS} & set(row[1:end]) and set(row[end + 1:]) <= {pad}, row


@DECODERS
def test_pad_and_bos_are_never_generated_even_when_most_probable(decode):
    model, src = _boosted(0), _padded_batch(0)
    with torch.no_grad():  # the control: at every step of a sequence PAD or BOS has the largest logit
        logits = model(src, torch.randint(3, 32, (4, 7)))  # (B, T, V)
    assert set(logits.argmax(-1).flatten().tolist()) <= {PAD, BOS}
    kw = {"max_len": 16, "bos_id": BOS, "eos_id": EOS}
    out = decode(model, src, use_cache=True, **kw)
    _valid_rows(out)
    assert torch.equal(out, decode(model, src, use_cache=False, **kw))


def test_greedy_masking_changes_only_the_masked_ids():
    """Masking sets two logits to -inf and leaves the others alone: greedy's choice among them is unchanged."""
    torch.manual_seed(0)
    plain = Transformer(TransformerConfig.tiny())
    boosted = _boosted(0)
    src = _padded_batch(1)
    out = greedy_decode(boosted, src, max_len=16, bos_id=BOS, eos_id=EOS)
    assert torch.equal(out, greedy_decode(plain, src, max_len=16, bos_id=BOS, eos_id=EOS))
    assert out.shape[1] > 8  # long enough for a PAD or BOS to have been the argmax many times


@DECODERS
def test_pad_equal_to_bos_and_eos_never_masked(decode):
    model = _boosted(1, pad_id=BOS)  # one id is both PAD and BOS: it is masked
    _valid_rows(decode(model, _padded_batch(1).clamp(min=3), max_len=10, bos_id=BOS, eos_id=EOS), pad=BOS)
    model = _boosted(1, pad_id=EOS)  # EOS shares its id with PAD: it stays allowed, so a sequence can end
    out = decode(model, torch.randint(3, 32, (2, 5)), max_len=10, bos_id=BOS, eos_id=EOS)
    assert out.tolist() == [[BOS, EOS]] * 2


@DECODERS
def test_a_source_longer_than_max_len_is_a_clear_error(decode):
    model = Transformer(TransformerConfig.tiny())  # config.max_len = 64
    message = (r"src is longer than config.max_len = 64: got shape \(2, 65\), 65 tokens per row\. Truncate the "
               r"sources first, e.g\. tokenizer\.encode_batch\(texts, max_len=64\)")
    with pytest.raises(ValueError, match=message):
        decode(model, torch.randint(3, 32, (2, 65)), max_len=8, bos_id=BOS, eos_id=EOS)
    assert decode(model, torch.randint(3, 32, (2, 64)), max_len=8, bos_id=BOS, eos_id=EOS).shape[0] == 2


def test_translate_warns_when_it_truncates():
    import warnings

    from transformer_lib.tokenizer import BPETokenizer
    from transformer_lib.translator import translate

    tok = BPETokenizer.train(["I see the car.", "Je vois la voiture."], vocab_size=50, min_frequency=1)
    torch.manual_seed(0)
    model = Transformer(TransformerConfig.tiny(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size,
                                               max_len=12))
    long = "I see the car. " * 5
    assert tok.encode_batch([long])[0].shape[1] > 12
    with pytest.warns(UserWarning, match=r"1 sentence\(s\) longer than max_len = 12 tokens were truncated to 12"):
        assert len(translate(model, tok, ["I see the car.", long])) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a short sentence: no warning
        translate(model, tok, ["I see the car."], beam_size=2)
