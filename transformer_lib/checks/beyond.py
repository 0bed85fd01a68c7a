"""Checks of notebook 12's exercises (decoder-only models and what changed since 2017)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["check_decoder_only_lm", "check_rotary_embedding"]


def check_decoder_only_lm(cls: type) -> None:
    """Check notebook 12's GPT-style decoder-only language model (being written)."""
    raise NotImplementedError("check_decoder_only_lm is being written")


def check_rotary_embedding(fn: Callable) -> None:
    """Check notebook 12's stretch: rotary position embedding, RoPE (being written)."""
    raise NotImplementedError("check_rotary_embedding is being written")
