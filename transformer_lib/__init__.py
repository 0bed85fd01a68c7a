"""transformer_lib: a readable reference implementation of "Attention Is All You Need" (Vaswani et al., 2017).

Modules, in the order the course teaches them: ``tasks`` (synthetic data), ``rnn``, ``attention``, ``masks``,
``positional``, ``multihead``, ``layers``, ``model``, ``cache``, ``decoding``; the translation data: ``data``,
``catalogs`` (real pairs), ``lexicon``, ``grammar``, ``conjugation``, ``corpus`` (the generated corpus); ``bpe``,
``tokenizer``; training: ``objective``, ``batching``, ``translator``, ``train``, and the command lines ``evaluate``
and ``translate``; then ``gpt``; plus ``device``, ``utils`` (the notebook helpers), ``viz`` (the example
sentence, heat maps) and the ``checks`` package. No module imports a later one.

``__version__`` is the library's version (as in pyproject.toml). The first cell of each notebook calls
``require_version("MAJOR.MINOR")`` with the version it was written for, which warns if another is installed.

Shape legend (batch first everywhere):

    B        batch size
    T        target (or query) length; T_q, T_k: query and key lengths inside attention
    S        source length
    H        number of heads (n_heads)
    d_model  model width (512 in the paper's base model)
    d_head   width of one head, d_model // n_heads (the paper's d_k = d_v = 64)
    d_k, d_v query/key width and value width in attention
    d_ff     inner width of the feed-forward network (2048)
    V        vocabulary size

Masks: bool, ``True`` = may attend, broadcastable to ``(B, H, T_q, T_k)``, filled with ``-inf`` before the
softmax. A query row with no allowed key gives zero weights and zero output (a plain masked softmax
gives NaN there).

Example:
    >>> from transformer_lib import get_device, show_source
    >>> device = get_device()
"""

from .device import describe_device, get_device
from .utils import interactive_plot, require_version, set_seed, show_source

__all__ = ["get_device", "describe_device", "show_source", "set_seed", "interactive_plot", "require_version"]
__version__ = "0.1.0"  # the same as pyproject.toml's; notebooks call require_version("0.1") (major.minor)
