"""Tests of transformer_lib.utils, transformer_lib.device and the package itself."""

import ast
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import transformer_lib
from transformer_lib import describe_device, get_device, masks, set_seed, show_source
from transformer_lib.attention import scaled_dot_product_attention
from transformer_lib.device import ENV_VAR
from transformer_lib.multihead import MultiHeadAttention
from transformer_lib.utils import check_dim, check_positive_int, check_tensor, check_token_ids

PACKAGE = Path(transformer_lib.__file__).parent
# The course order; no module may import a later one (STYLE.md).
ORDER = ["utils", "device", "attention", "masks", "positional", "multihead", "layers", "model", "decoding"]


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


# -- the package ------------------------------------------------------------------------------------------


def test_package_exports_and_shape_legend():
    for name in ("show_source", "get_device", "describe_device", "set_seed"):
        assert name in transformer_lib.__all__ and callable(getattr(transformer_lib, name))
    doc = transformer_lib.__doc__
    for symbol in ("B ", "T ", "S ", "H ", "d_model", "d_head", "d_ff", "V "):
        assert symbol in doc, symbol


@pytest.mark.parametrize("module", ORDER)
def test_module_is_short_and_imports_no_later_module(module):
    path = PACKAGE / f"{module}.py"
    source = path.read_text()
    assert len(source.splitlines()) < 300, f"{module}.py is {len(source.splitlines())} lines"
    later = set(ORDER[ORDER.index(module) + 1:]) - {"utils", "device"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            assert (node.module or "") not in later, f"{module} imports the later module {node.module}"


@pytest.mark.parametrize("module", ORDER)
def test_docstring_examples_run(module):
    """Every `Example:` in the docstrings is runnable (doctest)."""
    import doctest
    import importlib

    torch.manual_seed(0)
    result = doctest.testmod(importlib.import_module(f"transformer_lib.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
