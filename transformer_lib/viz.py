"""What the notebooks draw: the course's example sentence, and attention heat maps with words on the axes.

One small labelled sentence runs through the course, so that every heat map reads as "which word looks
at which": :data:`EXAMPLE_EN` and its French translation :data:`EXAMPLE_FR`, the running English->French
use case. Their word orders differ ("small red car" / "petite voiture rouge"), so an alignment between
them is not one-to-one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["EXAMPLE_EN", "EXAMPLE_FR", "LivePlot", "attention_heatmap", "plot_history"]

EXAMPLE_EN: tuple[str, ...] = ("I", "see", "the", "small", "red", "car", ".")
EXAMPLE_FR: tuple[str, ...] = ("je", "vois", "la", "petite", "voiture", "rouge", ".")


def attention_heatmap(
    weights: torch.Tensor,
    queries: Sequence[str],
    keys: Sequence[str] | None = None,
    *,
    ax: Any = None,
    title: str | None = None,
    annotate: bool | None = None,
    vmax: float | None = 1.0,
) -> Any:
    """Draw a ``(T_q, T_k)`` attention matrix: one row per query word, one column per key word.

    Args:
        weights: the attention weights (rows are queries); any device or dtype, gradients ignored.
        queries: the labels of the rows (the words doing the looking).
        keys: the labels of the columns (the words looked at); default ``queries`` (self-attention).
        ax: a matplotlib ``Axes`` to draw on; default a new figure of a size that fits the words.
        title: the title of the axes.
        annotate: write each weight in its cell; default when the matrix has at most 10 x 10 cells.
        vmax: the weight drawn darkest (1.0, so maps are comparable); ``None`` scales to the largest weight.

    Returns:
        The ``AxesImage`` (pass it to ``fig.colorbar``).

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> image = attention_heatmap(torch.eye(len(EXAMPLE_EN)), EXAMPLE_EN, title="each word looks at itself")
        >>> image.get_array().shape
        (7, 7)
    """
    import matplotlib.pyplot as plt

    keys = queries if keys is None else keys
    for name, labels in (("queries", queries), ("keys", keys)):
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise TypeError(f"{name} must be a list of words (one label per row/column); got {str(labels)[:40]!r}")
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.ndim != 2 or w.shape != (len(queries), len(keys)):
        raise ValueError(
            f"weights must have shape (T_q, T_k) = ({len(queries)}, {len(keys)}), one row per query word and one "
            f"column per key word; got shape {tuple(w.shape)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * len(keys) + 1.6, 0.5 * len(queries) + 1.2))
    image = ax.imshow(w.numpy(), cmap="Blues", vmin=0.0, vmax=vmax)
    ax.set_xticks(range(len(keys)), list(keys), rotation=45, ha="right")
    ax.set_yticks(range(len(queries)), list(queries))
    ax.set_xlabel("key (looked at)")
    ax.set_ylabel("query (looking)")
    if annotate if annotate is not None else w.numel() <= 100:
        top = float(w.max()) if vmax is None else vmax
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if w[i, j] > 0.6 * top else "black")
    if title:
        ax.set_title(title)
    return image


def _check_x_axis(x: Any) -> None:
    if x not in ("step", "seconds"):
        raise ValueError(f"x must be 'step' or 'seconds' (the history's time axis); got {x!r}")


def plot_history(history: Sequence[dict], *, axes: Any = None, label: str = "", x: str = "step") -> Any:
    """Draw a training run: loss (training and validation) on the left, validation BLEU on the right.

    Args:
        history: ``Trainer.history``: rows with ``loss`` (training) or ``valid_loss`` and ``bleu``.
        axes: a pair of matplotlib ``Axes`` to draw into (to compare runs); default a new figure.
        label: prefix of the legend entries (``"CPU run"``, ``"shipped"``).
        x: ``"step"`` or ``"seconds"``.

    Returns:
        the pair of axes (pass it back to draw another run on the same figure).
    """
    import matplotlib.pyplot as plt

    _check_x_axis(x)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    train = [h for h in history if "loss" in h]
    valid = [h for h in history if "bleu" in h]
    prefix = f"{label} " if label else ""
    if train:
        axes[0].plot([h[x] for h in train], [h["loss"] for h in train], label=f"{prefix}training")
    if valid:
        axes[0].plot([h[x] for h in valid], [h["valid_loss"] for h in valid], "o-", label=f"{prefix}validation")
        axes[1].plot([h[x] for h in valid], [h["bleu"] for h in valid], "o-", label=f"{prefix}BLEU")
    axes[0].set(xlabel=x, ylabel="label-smoothed cross-entropy", title="loss")
    axes[1].set(xlabel=x, ylabel="BLEU (greedy, validation)", title="BLEU", ylim=(0, 100))
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return axes


class LivePlot:
    """A ``Trainer(on_log=...)`` callback that redraws :func:`plot_history` in place during training.

    In a notebook the figure is one output that is replaced, at most every ``every`` seconds (and at
    the end: call :meth:`close` or let the last validation draw it). Outside IPython it does nothing.

    Args:
        every: the fewest seconds between two redraws (drawing costs time).
        x: ``"step"`` or ``"seconds"``.
        reference: another run's history, drawn behind the live one (e.g. the shipped checkpoint's).
    """

    def __init__(self, every: float = 2.0, x: str = "step", reference: Sequence[dict] | None = None,
                 reference_label: str = "reference") -> None:
        _check_x_axis(x)
        if isinstance(every, bool) or not isinstance(every, (int, float)) or every < 0:
            raise ValueError(f"every must be a number of seconds >= 0; got {every!r}")
        self.every, self.x, self.reference, self.reference_label = every, x, reference, reference_label
        self.handle, self.last = None, 0.0

    def __call__(self, trainer: Any) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and "bleu" not in trainer.history[-1]:
            return
        self.last = now
        self.draw(trainer.history)

    def draw(self, history: Sequence[dict]) -> None:
        import matplotlib.pyplot as plt
        try:
            from IPython.display import display
        except ImportError:  # pragma: no cover
            return
        axes = None
        if self.reference:
            axes = plot_history(self.reference, label=self.reference_label, x=self.x)
        axes = plot_history(history, axes=axes, label="this run" if self.reference else "", x=self.x)
        fig = axes[0].figure
        fig.tight_layout()
        plt.close(fig)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
