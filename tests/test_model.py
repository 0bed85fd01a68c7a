"""Tests of transformer_lib.model: config, shapes, tying, parameter count, causality, padding, training."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from transformer_lib._validation import check_token_ids
from transformer_lib.layers import EncoderLayer
from transformer_lib.masks import to_torch_attn_mask
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.positional import sinusoidal_positional_encoding

V = 20


def tiny_model(**overrides) -> Transformer:
    return Transformer(TransformerConfig.tiny(src_vocab_size=V, tgt_vocab_size=V, **overrides)).eval()


def ids(B, L, low=3):
    return torch.randint(low, V, (B, L))


# -- configuration ----------------------------------------------------------------------------------


def test_config_defaults_are_the_paper_base_model():
    cfg = TransformerConfig()
    assert (cfg.d_model, cfg.n_heads, cfg.n_encoder_layers, cfg.n_decoder_layers, cfg.d_ff) == (512, 8, 6, 6, 2048)
    assert cfg.dropout == 0.1 and cfg.d_head == 64
    assert cfg.src_vocab_size == cfg.tgt_vocab_size == 37000  # shared BPE vocabulary, Sec. 5.1
    assert cfg.tie_embeddings and not cfg.norm_first and cfg.pad_id == 0 and cfg.max_len == 512
    assert TransformerConfig.base() == cfg


def test_config_is_frozen_and_replace_works():
    cfg = TransformerConfig.tiny()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.d_model = 64
    assert cfg.replace(dropout=0.2).dropout == 0.2 and cfg.dropout == 0.0


def test_presets_and_overrides():
    tiny, small = TransformerConfig.tiny(), TransformerConfig.small()
    assert 32 <= tiny.d_model <= 64 and tiny.n_heads == 2 and tiny.n_encoder_layers <= 2
    assert 128 <= small.d_model <= 256 and small.n_heads == 4 and 2 <= small.n_encoder_layers <= 3
    assert TransformerConfig.tiny(d_model=64).d_model == 64
    assert TransformerConfig.base(dropout=0.3).d_model == 512
    with pytest.raises(TypeError, match="unknown TransformerConfig field"):
        TransformerConfig.tiny(n_layers=3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(d_model=30, n_heads=4), "n_heads must divide d_model"),
    (dict(d_model=9, n_heads=3), "d_model must be even"),
    (dict(src_vocab_size=10, tgt_vocab_size=12), "tie_embeddings=True .* src_vocab_size == tgt_vocab_size"),
    (dict(pad_id=32), "pad_id must be a valid id"),
    (dict(pad_id=-1), "pad_id must be a valid id"),
    (dict(dropout=1.0), "dropout must be a float in"),
    (dict(dropout=True), "dropout must be a float in"),
    (dict(n_encoder_layers=0), r"TransformerConfig.n_encoder_layers must be a positive int; got 0"),
    (dict(max_len=-1), r"TransformerConfig.max_len must be a positive int; got -1"),
    (dict(src_vocab_size=0, tgt_vocab_size=0), r"TransformerConfig.src_vocab_size must be a positive int; got 0"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformerConfig.tiny(**kwargs)


@pytest.mark.parametrize("name, value", [("d_model", 32.0), ("n_heads", True), ("d_ff", "64"), ("max_len", None)])
def test_config_sizes_must_be_ints(name, value):
    with pytest.raises(ValueError, match=rf"TransformerConfig.{name} must be a positive int; got {value!r}"):
        TransformerConfig.tiny(**{name: value})


def test_transformer_needs_a_config():
    with pytest.raises(TypeError, match="config must be a TransformerConfig; got dict"):
        Transformer({"d_model": 32})


def test_untied_vocabularies_may_differ():
    cfg = TransformerConfig.tiny(src_vocab_size=10, tgt_vocab_size=12, tie_embeddings=False)
    model = Transformer(cfg)
    assert model(torch.randint(0, 10, (2, 4)), torch.randint(0, 12, (2, 3))).shape == (2, 3, 12)


# -- structure ----------------------------------------------------------------------------------------


def test_forward_shape_same_in_train_and_eval():
    model = tiny_model()
    src, tgt = ids(3, 7), ids(3, 5)
    assert model(src, tgt).shape == (3, 5, V)
    model.train()
    assert model(src, tgt).shape == (3, 5, V)
    memory = model.encode(src, model.make_src_mask(src))
    assert memory.shape == (3, 7, 32)
    assert model.decode(tgt, memory, model.make_src_mask(src), model.make_tgt_mask(tgt)).shape == (3, 5, V)


def test_forward_equals_encode_then_decode_with_the_usual_masks():
    model = tiny_model()
    src, tgt = ids(2, 7), ids(2, 5)
    src[0, 5:] = 0
    src_mask = model.make_src_mask(src)
    assert src_mask.shape == (2, 1, 1, 7) and model.make_tgt_mask(tgt).shape == (2, 1, 5, 5)
    expected = model.decode(tgt, model.encode(src, src_mask), src_mask, model.make_tgt_mask(tgt))
    assert_close(model(src, tgt), expected)


def test_tied_embeddings_share_one_matrix():
    model = tiny_model()
    assert model.src_embed is model.tgt_embed
    assert model.output_proj.weight is model.src_embed.weight  # Sec. 3.4
    untied = tiny_model(tie_embeddings=False)
    assert untied.src_embed.weight is not untied.tgt_embed.weight
    assert untied.output_proj.weight is not untied.tgt_embed.weight
    assert untied.num_parameters() - model.num_parameters() == 2 * V * 32


def test_embeddings_are_scaled_by_sqrt_d_model():
    model = tiny_model()
    src = ids(2, 6)
    seen = {}
    hook = model.pos_encoding.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    model.encode(src)
    hook.remove()
    assert_close(seen["x"], model.src_embed(src) * math.sqrt(32))  # Sec. 3.4
    assert torch.equal(model.pos_encoding.pe, sinusoidal_positional_encoding(64, 32))


def test_final_layer_norm_only_with_pre_norm():
    post, pre = tiny_model(), tiny_model(norm_first=True)
    assert isinstance(post.encoder_norm, nn.Identity) and isinstance(post.decoder_norm, nn.Identity)
    assert isinstance(pre.encoder_norm, nn.LayerNorm) and isinstance(pre.decoder_norm, nn.LayerNorm)
    assert all(layer.norm_first for layer in pre.encoder_layers) and not post.decoder_layers[0].norm_first


def _num_parameters_by_hand(c: TransformerConfig) -> int:
    d = c.d_model
    mha = 4 * (d * d + d)  # W^Q, W^K, W^V, W^O with biases
    ffn = d * c.d_ff + c.d_ff + c.d_ff * d + d  # W_1, b_1, W_2, b_2
    norm = 2 * d  # gain and bias
    encoder_layer = mha + ffn + 2 * norm
    decoder_layer = 2 * mha + ffn + 3 * norm  # self-attention and cross-attention
    if c.tie_embeddings:  # ONE matrix: source, target and output projection (Sec. 3.4)
        embedding = c.src_vocab_size * d
    else:  # source embedding, target embedding, output projection (no bias)
        embedding = (c.src_vocab_size + 2 * c.tgt_vocab_size) * d
    final_norms = 2 * norm if c.norm_first else 0  # post-norm: no final LayerNorm
    return embedding + c.n_encoder_layers * encoder_layer + c.n_decoder_layers * decoder_layer + final_norms


@pytest.mark.parametrize("config", [
    TransformerConfig.base(),
    TransformerConfig.base(norm_first=True),
    TransformerConfig.tiny(src_vocab_size=10, tgt_vocab_size=12, tie_embeddings=False),
], ids=["base", "base-pre-norm", "tiny-untied"])
def test_parameter_count_is_exactly_the_formula(config):
    with torch.device("meta"):  # no memory, no init time
        model = Transformer(config)
    assert model.num_parameters() == _num_parameters_by_hand(config)


def test_the_base_model_has_about_the_papers_65m_parameters():
    """Table 3 reports 65M; with one shared 37000-token vocabulary and no final LayerNorm we count 63.1M."""
    with torch.device("meta"):
        count = Transformer(TransformerConfig.base()).num_parameters()
    assert abs(count - 65e6) <= 0.05 * 65e6, count


def test_frozen_parameters_are_not_counted():
    model = tiny_model()
    model.src_embed.weight.requires_grad_(False)  # the tied (V, d_model) matrix
    assert model.num_parameters() == _num_parameters_by_hand(model.config) - V * 32


# -- parity with torch.nn.Transformer -------------------------------------------------------------------


def _torch_twin(model: Transformer, copy_layer) -> nn.Transformer:
    """nn.Transformer with the weights of ``model`` (LayerNorms randomised first, so that a swap shows)."""
    c = model.config
    ref = nn.Transformer(c.d_model, c.n_heads, c.n_encoder_layers, c.n_decoder_layers, c.d_ff, dropout=0.0,
                         batch_first=True, norm_first=c.norm_first).eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
    for ours, theirs in zip(model.encoder_layers, ref.encoder.layers):
        copy_layer(ours, theirs)
    for ours, theirs in zip(model.decoder_layers, ref.decoder.layers):
        copy_layer(ours, theirs)
    if c.norm_first:  # pre-norm: both have a final LayerNorm after each stack
        model.encoder_norm.load_state_dict(ref.encoder.norm.state_dict())
        model.decoder_norm.load_state_dict(ref.decoder.norm.state_dict())
    else:  # the paper's post-norm has none; nn.Transformer adds one anyway: remove it
        ref.encoder.norm = nn.Identity()
        ref.decoder.norm = nn.Identity()
    return ref


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_parity_with_nn_transformer(norm_first, copy_layer):
    model = tiny_model(norm_first=norm_first, dropout=0.1)  # eval mode: dropout off on both sides
    ref = _torch_twin(model, copy_layer)
    src, tgt = ids(3, 9), ids(3, 7)
    src[0, 6:], src[1, 8:] = 0, 0  # padded sources
    tgt[:, 0], tgt[2, 5:] = 1, 0  # BOS first, a padded target
    (B, S), T, H = src.shape, tgt.shape[1], model.config.n_heads
    src_mask, tgt_mask = model.make_src_mask(src), model.make_tgt_mask(tgt)  # (B, 1, 1, S), (B, 1, T, T)

    memory = model.encode(src, src_mask)  # (B, S, d_model)
    ref_memory = ref.encoder(model._embed(src, model.src_embed), mask=to_torch_attn_mask(src_mask, (B, H, S, S)))
    assert_close(memory, ref_memory)

    seen = {}  # our decoder stack's output: the input of output_proj
    hook = model.output_proj.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    logits = model(src, tgt)
    hook.remove()
    ref_out = ref.decoder(model._embed(tgt, model.tgt_embed), ref_memory,
                          tgt_mask=to_torch_attn_mask(tgt_mask, (B, H, T, T)),
                          memory_mask=to_torch_attn_mask(src_mask, (B, H, T, S)))
    assert_close(seen["x"], ref_out)
    assert_close(logits, model.output_proj(ref_out))


# -- behaviour ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
def test_causality_future_target_tokens_do_not_change_earlier_logits(norm_first):
    model = tiny_model(norm_first=norm_first)
    src, tgt = ids(2, 7), ids(2, 6)
    logits = model(src, tgt)
    for t in range(1, 6):
        changed = tgt.clone()
        changed[:, t] = (changed[:, t] - 3 + 1) % (V - 3) + 3  # a different non-special token
        new = model(src, changed)
        assert_close(new[:, :t], logits[:, :t])  # positions < t cannot see token t
        assert not torch.allclose(new[:, t], logits[:, t])  # position t can


@pytest.mark.parametrize("norm_first", [False, True])
def test_padding_the_source_does_not_change_logits(norm_first):
    model = tiny_model(norm_first=norm_first)
    src, tgt = ids(2, 6), ids(2, 5)
    padded = torch.cat([src, torch.zeros(2, 4, dtype=torch.long)], dim=1)  # (2, 10) pad_id = 0
    assert_close(model(padded, tgt), model(src, tgt), atol=1e-5, rtol=1e-5)


def test_eval_is_deterministic_train_uses_dropout():
    model = tiny_model(dropout=0.1)
    src, tgt = ids(2, 6), ids(2, 5)
    assert torch.equal(model(src, tgt), model(src, tgt))
    model.train()
    assert not torch.allclose(model(src, tgt), model(src, tgt))


@pytest.mark.parametrize("norm_first, tie", [(False, True), (True, False)])
def test_gradients_reach_every_parameter(norm_first, tie):
    model = tiny_model(norm_first=norm_first, tie_embeddings=tie).train()
    src, tgt = torch.randint(0, V, (4, 7)), torch.randint(0, V, (4, 6))
    src[:, 0], tgt[:, 0] = 5, 1  # no fully padded sequence
    logits = model(src, tgt)
    F.cross_entropy(logits.reshape(-1, V), torch.randint(0, V, (24,))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_tiny_model_overfits_one_copy_batch(copy_task):
    assert copy_task.final_loss < 0.05, copy_task
    assert copy_task.steps < 300  # a step budget, not a wall-clock one: CI machines vary in load


# -- clear errors ---------------------------------------------------------------------------------------


def test_token_id_errors_name_the_argument():
    model = tiny_model()
    src, tgt = ids(2, 6), ids(2, 5)
    with pytest.raises(TypeError, match=r"src must be a torch.long tensor of token ids with shape \(B, S\)"):
        model(src.float(), tgt)
    with pytest.raises(TypeError, match=r"tgt must be a torch.long tensor.*\(B, T\).*int32"):
        model(src, tgt.int())
    with pytest.raises(ValueError, match=r"tgt contains token ids outside \[0, 20\)"):
        model(src, tgt + V)
    bad = src.clone()
    bad[1, 2] = -1
    with pytest.raises(ValueError, match=r"src contains token ids outside \[0, 20\).*min -1"):
        model(bad, tgt)
    with pytest.raises(ValueError, match=r"src must have shape \(B, S\) \(2 dims\)"):
        model(src[0], tgt)
    with pytest.raises(ValueError, match="same batch size"):
        model(src, tgt[:1])
    with pytest.raises(ValueError, match="src is longer than config.max_len = 64"):
        model(ids(1, 65), tgt[:1])


def test_encode_decode_errors():
    model = tiny_model()
    src, tgt = ids(2, 6), ids(2, 5)
    memory = model.encode(src)
    with pytest.raises(ValueError, match=r"src_mask must be .*\(B, H, S, S\) = \(2, 2, 6, 6\)"):
        model.encode(src, torch.ones(2, 1, 1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"memory must have shape \(B, S, d_model\) with d_model = 32"):
        model.decode(tgt, memory[..., :16])
    with pytest.raises(ValueError, match=r"memory must have shape \(B, S, d_model\) with B \(batch size of tgt\) = 2"):
        model.decode(tgt, memory[:1])
    with pytest.raises(TypeError, match=r"tgt_mask must be a bool tensor.*additive_mask == 0"):
        model.decode(tgt, memory, tgt_mask=torch.zeros(5, 5))


# -- validation at the door -------------------------------------------------------------------------------


def test_forward_checks_its_input_once_and_the_layers_trust_it(check_calls):
    model = tiny_model()
    src, tgt = ids(2, 7), ids(2, 5)
    src[0, 5:] = 0
    check_calls.clear()
    model(src, tgt)
    assert check_calls["check_token_ids"] == 2  # src and tgt
    assert check_calls["validate_mask"] == 0  # the masks are built inside: no layer re-checks them
    assert sum(check_calls.values()) == 4, check_calls  # 2 x check_token_ids, each with its check_tensor
    # The control: the same counters see a layer's checks when it is called from outside.
    x, mask = torch.randn(2, 7, 32), model.make_src_mask(src)
    check_calls.clear()
    model.encoder_layers[0](x, mask)
    assert check_calls["validate_mask"] == 1


def test_encode_and_decode_check_their_own_input(check_calls):
    model = tiny_model()
    src, tgt = ids(2, 7), ids(2, 5)
    src_mask, tgt_mask = model.make_src_mask(src), model.make_tgt_mask(tgt)
    check_calls.clear()
    memory = model.encode(src, src_mask)
    assert check_calls["check_token_ids"] == 1 and check_calls["validate_mask"] == 1  # src_mask, once
    check_calls.clear()
    model.decode(tgt, memory, src_mask, tgt_mask)
    assert check_calls["check_token_ids"] == 1 and check_calls["validate_mask"] == 2  # src_mask, tgt_mask


def test_an_error_inside_a_model_does_not_switch_the_checks_off(monkeypatch):
    model = tiny_model()

    def broken(x):
        raise RuntimeError("broken feed-forward")

    monkeypatch.setattr(model.decoder_layers[0].feed_forward, "forward", broken)
    with pytest.raises(RuntimeError, match="broken feed-forward"):
        model(ids(2, 7), ids(2, 5))
    with pytest.raises(TypeError, match=r"mask must be a bool tensor"):  # the next call from outside is checked
        EncoderLayer(32, 2, 64)(torch.randn(2, 7, 32), torch.zeros(7, 7))


def test_check_token_ids_reads_no_values_off_the_cpu():
    """On a device, reading min/max would make every training step wait for it; meta tensors have no values."""
    on_meta = torch.empty(2, 3, dtype=torch.long, device="meta")
    assert check_token_ids(on_meta, "src", "(B, S)", vocab_size=5) is on_meta  # no error: no value was read
    with pytest.raises(TypeError, match="src must be a torch.long tensor"):  # dtype and shape: still checked
        check_token_ids(on_meta.float(), "src", "(B, S)", vocab_size=5)
    with pytest.raises(ValueError, match=r"src contains token ids outside \[0, 5\)"):  # on the CPU: values too
        check_token_ids(torch.full((2, 3), 5), "src", "(B, S)", vocab_size=5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_training_step_has_no_host_sync(norm_first):
    """On the meta device anything that reads a value (.item(), bool(t), a value check) raises."""
    with torch.device("meta"):
        model = Transformer(TransformerConfig.tiny(norm_first=norm_first, dropout=0.1)).train()
        src, tgt_in, tgt_out = torch.randint(0, 32, (4, 7)), torch.randint(0, 32, (4, 6)), torch.randint(0, 32, (4, 6))
        logits = model(src, tgt_in)  # (4, 6, 32)
        loss = F.cross_entropy(logits.reshape(-1, 32), tgt_out.reshape(-1), ignore_index=0, label_smoothing=0.1)
        loss.backward()
    assert logits.shape == (4, 6, 32) and logits.device.type == "meta"
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(RuntimeError, match="meta"):  # the control: a host sync does raise here
        loss.item()
