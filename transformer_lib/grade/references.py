"""Which library (or torch) objects compute what each exercise asks for: its "reference implementation".

``REFERENCES`` maps each check function to the objects that a student's exercise cell must not simply reuse
(import, call, alias or subclass); :mod:`transformer_lib.grade.static` flags a cell that does. The first
object of each entry is what the check compares against, or the library's function of the exercise's own
name; ``tests/test_grade.py`` verifies that against the checks' source and that every check the course calls
has an entry. The others compute the same thing (``F.softmax`` as ``torch.softmax``, ``nn.MultiheadAttention``
as ``MultiHeadAttention``). ``METHODS`` adds tensor methods (``x.softmax(dim)``), and ``KEYWORDS`` calls that
compute the exercise only when given a keyword (``F.cross_entropy(..., label_smoothing=0.1)``; plain
``F.cross_entropy`` is a fair part of a label-smoothing loss).
"""

from __future__ import annotations

import importlib

__all__ = ["REFERENCES", "METHODS", "KEYWORDS", "resolve_path"]

REFERENCES = {
    "check_rnn_forward": ("torch.nn.RNN", "transformer_lib.rnn.rnn_forward", "torch.nn.RNNCell"),
    "check_additive_attention": ("transformer_lib.rnn.additive_attention",),
    "check_softmax": ("torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax", "torch.Tensor.softmax",
                      "torch.nn.Softmax"),
    "check_dot_product_attention": ("transformer_lib.attention.dot_product_attention",
                                    "transformer_lib.attention.scaled_dot_product_attention"),
    "check_self_attention": ("transformer_lib.attention.SelfAttention",),
    "check_scaled_dot_product_attention": ("transformer_lib.attention.scaled_dot_product_attention",
                                           "torch.nn.functional.scaled_dot_product_attention"),
    "check_safe_attention": ("transformer_lib.attention.scaled_dot_product_attention",
                             "torch.nn.functional.scaled_dot_product_attention"),
    "check_sinusoidal_positional_encoding": ("transformer_lib.positional.sinusoidal_positional_encoding",
                                             "transformer_lib.positional.PositionalEncoding"),
    "check_position_shift_matrix": ("transformer_lib.positional.shift_matrix",),
    "check_learned_positional_encoding": ("transformer_lib.positional.LearnedPositionalEncoding",),
    "check_split_heads": ("transformer_lib.multihead.split_heads",),
    "check_merge_heads": ("transformer_lib.multihead.merge_heads",),
    "check_multi_head_attention": ("transformer_lib.multihead.MultiHeadAttention", "torch.nn.MultiheadAttention"),
    "check_to_torch_multihead": ("transformer_lib.multihead.to_torch_multihead",),
    "check_padding_mask": ("transformer_lib.masks.padding_mask",),
    "check_causal_mask": ("transformer_lib.masks.causal_mask",),
    "check_decoder_mask": ("transformer_lib.masks.decoder_mask",),
    "check_to_torch_attn_mask": ("transformer_lib.masks.to_torch_attn_mask",),
    "check_feed_forward": ("transformer_lib.layers.FeedForward",),
    "check_encoder_layer": ("transformer_lib.layers.EncoderLayer", "torch.nn.TransformerEncoderLayer"),
    "check_decoder_layer": ("transformer_lib.layers.DecoderLayer", "torch.nn.TransformerDecoderLayer"),
    "check_layer_norm": ("torch.nn.LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm"),
    "check_transformer": ("transformer_lib.model.Transformer", "torch.nn.Transformer"),
    "check_parameter_count": ("transformer_lib.model.Transformer",),
    "check_count_pairs": ("transformer_lib.bpe.count_pairs",),
    "check_merge_pair": ("transformer_lib.bpe.merge_pair",),
    "check_learn_bpe": ("transformer_lib.bpe.learn_bpe",),
    "check_label_smoothed_cross_entropy": ("transformer_lib.objective.label_smoothed_cross_entropy",),
    "check_noam_lr": ("transformer_lib.objective.noam_lr", "transformer_lib.objective.noam_scheduler"),
    "check_smoothing_floor": ("transformer_lib.objective.smoothing_floor",),
    "check_greedy_decode": ("transformer_lib.decoding.greedy_decode", "transformer_lib.decoding.beam_search"),
    "check_beam_search": ("transformer_lib.decoding.beam_search",),
    "check_decoder_only_lm": ("transformer_lib.gpt.DecoderOnlyLM",),
    "check_rotary_embedding": ("transformer_lib.gpt.apply_rotary",),
}
METHODS = {"check_softmax": ("softmax",)}  # `x.softmax(dim)` on a tensor
KEYWORDS = {"check_label_smoothed_cross_entropy": {"torch.nn.functional.cross_entropy": "label_smoothing",
                                                   "torch.nn.CrossEntropyLoss": "label_smoothing"}}


def resolve_path(path: str):
    """The object named by a dotted path such as ``torch.nn.functional.softmax``, or None."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            value = getattr(value, attr, None)
        return value
    return None
