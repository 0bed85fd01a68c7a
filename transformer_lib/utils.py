"""Notebook helpers: ``show_source`` (read the library's code), ``set_seed``, ``interactive_plot``, and
``require_version`` (the first cell of every notebook: warn when the library is not the one it was written for).

Input validation lives in the private module ``transformer_lib._validation``.
"""

from __future__ import annotations

import inspect
import random
import re
import warnings
from typing import Any, Callable

import torch

__all__ = ["show_source", "set_seed", "interactive_plot", "require_version"]

_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?")  # major.minor[.patch], as in pyproject.toml


def show_source(obj: Any):
    """Show the source code of a function, class, method or module.

    In Jupyter it renders with syntax highlighting: the returned ``IPython.display.Code`` displays
    itself when it is the last expression of a cell. Without IPython the source is printed and
    returned as a ``str``. An ``nn.Module`` instance shows its class.

    Args:
        obj: a function, class, method, module, or an instance (its class is shown).

    Returns:
        ``IPython.display.Code`` (its ``.data`` is the source text) or, without IPython, ``str``.

    Example:
        >>> from transformer_lib.attention import scaled_dot_product_attention
        >>> code = show_source(scaled_dot_product_attention)  # in a notebook: last line of a cell
    """
    target = obj
    if not (inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj)):
        target = type(obj)  # an instance: show its class
    try:
        src = inspect.getsource(target)
    except (TypeError, OSError) as err:
        raise TypeError(f"show_source cannot find the source of {obj!r}: {err}") from None
    try:
        from IPython.display import Code
    except ImportError:
        print(src)
        return src
    return Code(src, language="python")


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy (if installed) and PyTorch (CPU and all GPUs).

    Example:
        >>> set_seed(0); a = torch.rand(1); set_seed(0); bool(torch.rand(1) == a)
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)  # also seeds every CUDA device


def interactive_plot(draw: Callable[..., Any], **controls: Any) -> None:
    """Show the figure ``draw(**values)`` with sliders that redraw it in place.

    The figure is first drawn at the controls' initial values and displayed as an ordinary static
    figure, so an executed notebook (nbval, a PDF or HTML export) shows it without a live kernel.
    Below it, the controls (ipywidgets) redraw that same output whenever one of them moves.
    Without ipywidgets, or outside IPython, only the static figure is shown.

    Args:
        draw: a function taking the controls' values as keyword arguments and returning a
            ``matplotlib.figure.Figure`` (it should create a new figure each call).
        **controls: ``name=widget`` pairs, e.g. ``beta=ipywidgets.FloatLogSlider(value=1.0, min=-2, max=2)``.
            Each name is the keyword under which ``draw`` receives the widget's value.

    ``draw`` runs again at every move of a slider, possibly after later cells have run: let it read
    only its arguments and values bound when it was defined (default arguments, a closure), not
    notebook globals that a later cell may reassign.

    Example:
        >>> import ipywidgets as widgets, matplotlib.pyplot as plt
        >>> def draw(beta):
        ...     fig, ax = plt.subplots()
        ...     ax.bar(range(3), torch.softmax(beta * torch.tensor([2.0, 4.0, 4.0]), dim=-1))
        ...     return fig
        >>> interactive_plot(draw, beta=widgets.FloatLogSlider(value=1.0, min=-2, max=2))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    if not callable(draw):
        raise TypeError(f"draw must be a function draw(**values) that returns a matplotlib Figure; got "
                        f"{type(draw).__name__}")
    for name, widget in controls.items():
        if not hasattr(widget, "value"):
            raise TypeError(f"controls must be widgets with a .value (e.g. ipywidgets.FloatSlider); got {name}={widget!r}")

    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - plain Python: nothing to display into
        plt.close(draw(**{name: widget.value for name, widget in controls.items()}))
        return

    def render() -> Any:
        fig = draw(**{name: widget.value for name, widget in controls.items()})
        plt.close(fig)  # shown through the display handle only, not again by the inline backend
        return fig

    handle = display(render(), display_id=True)
    if handle is None:  # not in a notebook: the figure was printed, nothing can be redrawn
        return
    try:
        import ipywidgets
    except ImportError:
        return
    for widget in controls.values():
        widget.observe(lambda _change: handle.update(render()), names="value")
        widget.continuous_update = False  # redraw when the slider is released, not at every pixel
    display(ipywidgets.VBox(list(controls.values())))


def _major_minor(version: str) -> tuple[int, int] | None:
    """``"0.1.0"`` -> ``(0, 1)``; also reads ``"0.2.0.dev1"`` or ``"1.0rc1"``; ``None`` if it is no version."""
    m = _RELEASE.match(version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def require_version(written_for: str) -> None:
    """Warn when the installed ``transformer_lib`` is not the version a notebook was written for.

    The first cell of every course notebook calls it with the library version the notebook was written
    and tested with. Only major.minor is compared (``"0.1"`` matches 0.1.0 and 0.1.7): a patch release
    changes no name and no result a notebook shows. A mismatch is a ``UserWarning`` of one line, not an
    error: most cells may still run, but some can fail or print other numbers than the text says.

    Args:
        written_for: ``"MAJOR.MINOR"`` (or ``"MAJOR.MINOR.PATCH"``), e.g. ``"0.1"``.

    Raises:
        TypeError: ``written_for`` is not a str.
        ValueError: ``written_for`` is not a version such as ``"0.1"``.

    Example:
        >>> import transformer_lib
        >>> require_version(transformer_lib.__version__)  # the installed version: silent
    """
    if not isinstance(written_for, str):
        raise TypeError(f"written_for must be a version string such as '0.1'; got {type(written_for).__name__}")
    wanted = _major_minor(written_for.strip()) if _RELEASE.fullmatch(written_for.strip()) else None
    if wanted is None:
        raise ValueError(f"written_for must be a version such as '0.1' or '0.1.0'; got {written_for!r}")
    from . import __version__ as installed  # at call time: the package has finished importing

    if _major_minor(installed) != wanted:
        warnings.warn(
            f"this notebook was written for transformer_lib {wanted[0]}.{wanted[1]}, but {installed} is installed: "
            "use the notebooks that come with your library, or run `pip install -e .` in the course folder "
            "this notebook comes from, then restart the kernel",
            UserWarning, stacklevel=2)
