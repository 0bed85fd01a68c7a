"""Tests of transformer_lib.model: config, shapes, tying, parameter count, causality, padding, training."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

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
    (dict(dropout=1.0), "dropout must be a float in"),
    (dict(n_encoder_layers=0), "n_encoder_layers must be >= 1"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformerConfig.tiny(**kwargs)


def test_config_type_validation():
    with pytest.raises(TypeError, match="d_model must be an int"):
        TransformerConfig.tiny(d_model=32.0)
    with pytest.raises(TypeError, match="config must be a TransformerConfig"):
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


def test_parameter_count_of_the_base_model():
    """The paper reports 65M parameters for the base model (Table 3)."""
    d, d_ff, V_shared, N = 512, 2048, 37000, 6
    mha = 4 * (d * d + d)  # W^Q, W^K, W^V, W^O with biases
    ffn = d * d_ff + d_ff + d_ff * d + d  # W_1, b_1, W_2, b_2
    norm = 2 * d  # gain and bias
    encoder_layer = mha + ffn + 2 * norm
    decoder_layer = 2 * mha + ffn + 3 * norm
    embedding = V_shared * d  # ONE matrix: source, target and output projection (Sec. 3.4)
    formula = embedding + N * encoder_layer + N * decoder_layer  # post-norm: no final LayerNorm
    assert formula == 63_082_496
    with torch.device("meta"):  # no memory, no init time
        model = Transformer(TransformerConfig.base())
    count = model.num_parameters()
    assert count == sum(p.numel() for p in model.parameters())
    assert abs(count - formula) <= 0.02 * formula
    assert abs(count - 65e6) <= 0.05 * 65e6  # Table 3: 65M


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
