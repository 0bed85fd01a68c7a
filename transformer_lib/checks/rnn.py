"""Checks of notebook 01's exercises (recurrent networks), with their catalogue of typical mistakes."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["check_rnn_forward", "check_additive_attention"]


def check_rnn_forward(fn: Callable) -> None:
    """Check ``rnn_forward(x, h0, W_xh, W_hh, b)`` against ``torch.nn.RNN`` (being written)."""
    raise NotImplementedError("check_rnn_forward is being written")


def check_additive_attention(fn: Callable) -> None:
    """Check notebook 01's stretch, Bahdanau's additive attention (being written)."""
    raise NotImplementedError("check_additive_attention is being written")
