"""Auto-checks for the course exercises: ``check_<exercise>(student_function_or_class)``.

Each check runs the student's code on several seeded inputs, edge cases included, and compares it
with the library reference (or a torch built-in), never with the student's own output. On a mismatch
it raises :class:`CheckFailed` (an ``AssertionError``) that names the case and the most likely mistake,
found by matching the student's output against known-wrong variants of the reference (unscaled scores,
inverted mask, heads reshaped without transpose, ...). In a notebook the failure shows as a few lines:
the case, the diagnosis, expected vs got. An exercise still raising the stub's ``NotImplementedError``
raises :class:`ExerciseNotDone`, shown as one line. When every case passes a check prints one line,
``<exercise>: all N cases pass``. Checks run in eval mode without autograd (unless they check
gradients), with a fixed seed, and leave the global random state as they found it. A class check
instantiates the class itself and copies the reference weights in by the exercise's attribute names.

One module per exercise family, each with its checks next to its catalogue of typical mistakes:
``rnn``, ``softmax``, ``attention``, ``positional``, ``masks``, ``multihead``, ``layers``, ``model``,
``tokenization``, ``training`` (the loss), ``schedule``, ``decoding``, ``beyond``; the shared machinery
is in ``_core`` (running and comparing) and ``_feedback`` (what the student sees).

Example:
    >>> import torch
    >>> from transformer_lib import checks
    >>> checks.check_softmax(lambda x, dim=-1: torch.softmax(x, dim=dim))
    softmax: all 7 cases pass
"""

from ._feedback import CheckFailed, ExerciseNotDone
from .attention import (check_dot_product_attention, check_safe_attention, check_scaled_dot_product_attention,
                        check_self_attention)
from .beyond import check_decoder_only_lm, check_rotary_embedding
from .decoding import check_beam_search, check_greedy_decode
from .layers import check_decoder_layer, check_encoder_layer, check_feed_forward, check_layer_norm
from .masks import check_causal_mask, check_decoder_mask, check_padding_mask, check_to_torch_attn_mask
from .model import check_parameter_count, check_transformer
from .multihead import check_merge_heads, check_multi_head_attention, check_split_heads, check_to_torch_multihead
from .positional import (check_learned_positional_encoding, check_position_shift_matrix,
                         check_sinusoidal_positional_encoding)
from .rnn import check_additive_attention, check_rnn_forward
from .softmax import check_softmax
from .tokenization import check_count_pairs, check_learn_bpe, check_merge_pair
from .schedule import check_noam_lr
from .training import check_label_smoothed_cross_entropy, check_smoothing_floor

__all__ = [
    "check_rnn_forward", "check_additive_attention", "check_softmax", "check_dot_product_attention",
    "check_scaled_dot_product_attention", "check_self_attention", "check_safe_attention",
    "check_sinusoidal_positional_encoding", "check_padding_mask", "check_causal_mask", "check_position_shift_matrix",
    "check_learned_positional_encoding", "check_decoder_mask", "check_to_torch_attn_mask", "check_split_heads",
    "check_merge_heads", "check_multi_head_attention", "check_to_torch_multihead", "check_feed_forward",
    "check_encoder_layer", "check_decoder_layer", "check_layer_norm", "check_transformer", "check_parameter_count",
    "check_decoder_only_lm", "check_rotary_embedding", "check_label_smoothed_cross_entropy", "check_noam_lr",
    "check_smoothing_floor",
    "check_count_pairs", "check_merge_pair", "check_learn_bpe",
    "check_greedy_decode", "check_beam_search",
    "CheckFailed", "ExerciseNotDone",
]
