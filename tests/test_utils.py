"""Tests of transformer_lib.utils (notebook helpers), transformer_lib._validation, transformer_lib.device and the package."""

import ast
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import transformer_lib
from transformer_lib import describe_device, get_device, masks, set_seed, show_source
from transformer_lib._validation import check_dim, check_positive_int, check_tensor, check_token_ids, door
from transformer_lib.attention import scaled_dot_product_attention
from transformer_lib.device import ENV_VAR
from transformer_lib.multihead import MultiHeadAttention

PACKAGE = Path(transformer_lib.__file__).parent
# The course order; no module may import a later one (STYLE.md).
ORDER = ["_validation", "utils", "device", "viz", "tasks", "rnn", "attention", "masks", "positional", "multihead",
         "layers", "model", "cache", "decoding", "data", "catalogs", "lexicon", "grammar", "conjugation", "corpus",
         "bpe", "tokenizer", "objective", "batching", "translator", "distributed", "train", "evaluate", "translate",
         "bench", "gpt", "checks", "grade"]
MODULES = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))  # every file, checks/ included


# -- show_source ------------------------------------------------------------------------------------


def test_show_source_of_function_class_module_and_instance():
    code = show_source(scaled_dot_product_attention)
    assert "def scaled_dot_product_attention(" in code.data
    assert "Eq. (1)" in code.data
    assert hasattr(code, "_repr_html_")  # renders with highlighting in Jupyter
    assert "class MultiHeadAttention(" in show_source(MultiHeadAttention).data
    assert "class MultiHeadAttention(" in show_source(MultiHeadAttention(8, 2)).data  # instance -> its class
    assert "def causal_mask(" in show_source(masks).data
    assert "def forward(" in show_source(MultiHeadAttention.forward).data


def test_show_source_without_ipython_prints_and_returns_str(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "IPython", None)  # makes `import IPython...` raise ImportError
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    text = show_source(scaled_dot_product_attention)
    assert isinstance(text, str) and "def scaled_dot_product_attention(" in text
    assert "def scaled_dot_product_attention(" in capsys.readouterr().out


def test_show_source_of_builtin_is_a_clear_error():
    with pytest.raises(TypeError, match="show_source cannot find the source"):
        show_source(len)


# -- set_seed -----------------------------------------------------------------------------------------


def test_set_seed_makes_python_numpy_and_torch_reproducible():
    set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    with pytest.raises(TypeError, match="seed must be an int"):
        set_seed(1.5)


# -- device -----------------------------------------------------------------------------------------------


def _no_accelerator(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_get_device_order_cuda_mps_cpu(monkeypatch):
    _no_accelerator(monkeypatch)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")


def test_get_device_prefer_and_env_var(monkeypatch):
    _no_accelerator(monkeypatch)
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(ENV_VAR, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cpu")  # the variable beats auto-detection


def test_get_device_unavailable_or_unknown_is_an_error(monkeypatch):
    _no_accelerator(monkeypatch)
    with pytest.raises(ValueError, match="prefer asks for device 'cuda', which is not available"):
        get_device("cuda")
    with pytest.raises(ValueError, match="prefer must name a device"):
        get_device("gpu-please")
    monkeypatch.setenv(ENV_VAR, "mps")
    with pytest.raises(ValueError, match=f"{ENV_VAR} asks for device 'mps'"):
        get_device()


def test_describe_device_cpu(monkeypatch):
    _no_accelerator(monkeypatch)
    text = describe_device()
    assert text.startswith("cpu") and torch.__version__ in text


# -- validation helpers -----------------------------------------------------------------------------------


def test_validation_helpers_messages():
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor of shape \(B, T\); got list"):
        check_tensor([1, 2], "x", "(B, T)")
    with pytest.raises(ValueError, match=r"x must have shape \(B, T\) \(2 dims\); got shape \(3,\)"):
        check_tensor(torch.zeros(3), "x", "(B, T)", ndim=2)
    with pytest.raises(TypeError, match=r"x must be a bool tensor of shape \(B, T\); got dtype torch.float32"):
        check_tensor(torch.zeros(2, 3), "x", "(B, T)", kind="bool")
    with pytest.raises(ValueError, match=r"x must have shape \(B, d_model\) with d_model = 8; got shape \(2, 4\)"):
        check_dim(torch.zeros(2, 4), "x", "(B, d_model)", -1, 8, "d_model")
    with pytest.raises(TypeError, match="n_heads must be a positive int"):
        check_positive_int(True, "n_heads")
    with pytest.raises(ValueError, match=r"src contains token ids outside \[0, 5\)"):
        check_token_ids(torch.tensor([[1, 5]]), "src", "(B, S)", 5)


def test_token_id_range_is_not_read_off_the_cpu():
    """On an accelerator .min()/.max() would make the step wait for the device; the meta device has no
    values at all, so reading them would raise: the check must not."""
    ids = torch.empty(2, 3, dtype=torch.long, device="meta")
    assert check_token_ids(ids, "src", "(B, S)", 5) is ids
    with pytest.raises(TypeError, match="torch.long"):  # dtype and shape are still checked
        check_token_ids(ids.int(), "src", "(B, S)", 5)


def test_door_checks_once_at_the_outermost_call():
    seen = []

    @door(lambda x: seen.append(("outer", x)))
    def outer(x):
        return inner(x + 1)

    @door(lambda x: seen.append(("inner", x)))
    def inner(x):
        return x * 10

    assert outer(1) == 20 and seen == [("outer", 1)]  # inner trusts outer
    assert inner(1) == 10 and seen[-1] == ("inner", 1)  # called directly, inner checks

    @door(lambda x: (_ for _ in ()).throw(ValueError("bad x")))
    def refuses(x):
        return x

    with pytest.raises(ValueError, match="bad x"):
        refuses(1)
    assert inner(2) == 20 and seen[-1] == ("inner", 2)  # a failed check leaves no door open

    def boom(x):
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError):
        door(lambda x: None)(boom)(1)
    assert inner(3) == 30 and seen[-1] == ("inner", 3)  # nor does an exception inside


# -- the package ------------------------------------------------------------------------------------------


def test_package_exports_and_shape_legend():
    for name in ("show_source", "get_device", "describe_device", "set_seed", "interactive_plot"):
        assert name in transformer_lib.__all__ and callable(getattr(transformer_lib, name))
    doc = transformer_lib.__doc__
    for symbol in ("B ", "T ", "S ", "H ", "d_model", "d_head", "d_ff", "V "):
        assert symbol in doc, symbol


@pytest.mark.parametrize("path", MODULES)
def test_module_is_short(path):
    """No module over 300 lines, none exempted (STYLE.md): one concept per module."""
    n = len((PACKAGE / path).read_text().splitlines())
    assert n <= 300, f"{path} is {n} lines"


@pytest.mark.parametrize("module", ORDER[:-1])
def test_module_imports_no_later_module(module):
    files = sorted((PACKAGE / module).glob("*.py")) if (PACKAGE / module).is_dir() else [PACKAGE / f"{module}.py"]
    assert files and all(f.exists() for f in files), f"{module} is in ORDER but not in transformer_lib/"
    later = set(ORDER[ORDER.index(module) + 1:])
    for path in files:  # a package (checks/): its modules import the library with two dots
        level = 2 if path.parent != PACKAGE else 1
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == level:
                imported = (node.module or "").split(".")[0]
                assert imported not in later, f"{path.name} imports the later module {node.module}"


def _module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(["transformer_lib", *(parts[:-1] if parts[-1] == "__init__" else parts)])


@pytest.mark.parametrize("path", MODULES)
def test_docstring_examples_run(path, capsys):
    """Every `Example:` in the docstrings is runnable (doctest), the checks' included."""
    import doctest
    import importlib

    torch.manual_seed(0)
    module = importlib.import_module(_module_name(path))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, capsys.readouterr().out


def test_door_leaves_no_graph_break_under_torch_compile():
    """The checks stay out of a compiled model: dynamo traces Transformer.forward as one graph."""
    from transformer_lib.model import Transformer, TransformerConfig

    model = Transformer(TransformerConfig.tiny()).eval()
    src, tgt = torch.randint(1, 32, (2, 7)), torch.randint(1, 32, (2, 5))
    explanation = torch._dynamo.explain(model)(src, tgt)
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons
