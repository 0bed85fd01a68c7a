"""Reproducibility on the CPU, and the version check of the notebooks (see transformer_lib.device's docstring).

(a) A seeded run (model initialisation with dropout on, three training steps on the copy task with Adam,
Eq. (3)'s schedule and label smoothing, then greedy decoding, plus Python's and NumPy's generators) gives
equal tensors, bit for bit, run twice in this process and in two new processes with different hash seeds.
(b) ``require_version`` warns, in one line, exactly when the installed major.minor differs from the
notebook's; the library's version is pyproject.toml's.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import transformer_lib
from transformer_lib import require_version, set_seed
from transformer_lib.decoding import greedy_decode
from transformer_lib.model import Transformer, TransformerConfig
from transformer_lib.objective import label_smoothed_cross_entropy, make_optimizer, noam_scheduler
from transformer_lib.tasks import BOS_ID, EOS_ID, make_batch

ROOT = Path(__file__).resolve().parent.parent
THREADS = 2  # the same in every run compared: the number of threads can change the order of float sums


def seeded_run(seed: int) -> dict[str, torch.Tensor]:
    """Everything a seed decides in a short training run on the CPU, as tensors to compare bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        set_seed(seed)
        config = TransformerConfig.tiny(dropout=0.1)  # dropout draws random masks at every step
        model = Transformer(config)
        initial = torch.cat([p.detach().flatten() for p in model.parameters()])
        optimizer = make_optimizer(model)
        scheduler = noam_scheduler(optimizer, d_model=config.d_model, warmup=10)
        losses = []
        model.train()
        for _ in range(3):
            batch = make_batch("copy", 8, 6, config.src_vocab_size, min_length=3)  # the global generator
            logits = model(batch.src, batch.tgt_in)  # (B, T, V)
            loss = label_smoothed_cross_entropy(logits, batch.tgt_out, pad_id=config.pad_id)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
        src = make_batch("copy", 4, 6, config.src_vocab_size).src  # (4, 6)
        return {
            "initial weights": initial,
            "trained weights": torch.cat([p.detach().flatten() for p in model.parameters()]),
            "losses": torch.stack(losses),
            "greedy decode": greedy_decode(model, src, max_len=10, bos_id=BOS_ID, eos_id=EOS_ID),
            "python random": torch.tensor([random.random() for _ in range(3)], dtype=torch.float64),
            "numpy random": torch.from_numpy(np.random.rand(3)),
        }
    finally:
        torch.set_num_threads(threads)


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], label: str) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not (a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]))]
    assert not differ, f"{label}: not bit for bit equal: {differ}"


def test_a_seed_gives_the_same_run_twice_in_one_process():
    first, second = seeded_run(0), seeded_run(0)
    assert_identical(first, second, "the same seed in one process")
    # the comparison means something: the run trains, and another seed changes every part of it
    assert not torch.equal(first["initial weights"], first["trained weights"])
    assert torch.isfinite(first["losses"]).all() and (first["greedy decode"][:, 0] == BOS_ID).all()
    other = seeded_run(1)
    assert all(not torch.equal(first[k], other[k]) for k in first), [k for k in first if torch.equal(first[k], other[k])]


def test_a_seed_gives_the_same_run_in_new_processes(tmp_path):
    """Two fresh interpreters (different PYTHONHASHSEED, so set and dict orders of str differ) and this one."""
    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); from test_reproducibility import seeded_run; "
            "torch.save(seeded_run(0), sys.argv[2])")
    runs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run{hash_seed}.pt"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        runs.append((out, subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent), str(out)],
                                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    results = []
    for out, process in runs:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        results.append(torch.load(out))
    assert_identical(results[0], results[1], "two new processes")
    assert_identical(results[0], seeded_run(0), "a new process and this one")


def test_eval_mode_and_the_kv_cache_are_repeatable():
    """The bit-for-bit claims of transformer_lib.device's docstring besides the seeded run: eval mode
    is deterministic, and the KV cache decodes the same tokens as recomputing the prefix."""
    set_seed(0)
    model = Transformer(TransformerConfig.tiny(dropout=0.1)).eval()
    src = make_batch("copy", 3, 5, 32).src
    assert torch.equal(model(src, src), model(src, src))
    assert torch.equal(greedy_decode(model, src, 8, BOS_ID, EOS_ID, use_cache=True),
                       greedy_decode(model, src, 8, BOS_ID, EOS_ID, use_cache=False))


def test_device_docstring_states_the_tolerances_the_checks_use():
    """transformer_lib.device documents the checks' tolerances: fails if the checks change them and not the text."""
    import inspect

    from transformer_lib import device
    from transformer_lib.checks import _core

    def text(x: float) -> str:  # 0.0001 -> "1e-4", as the docstring writes it
        short = f"{x:.0e}" if float(f"{x:.0e}") == x else f"{x:g}"
        return re.sub(r"e([-+])0*(\d)", r"e\1\2", short).replace("e+", "e")

    defaults = inspect.signature(_core.close).parameters
    doc = " ".join(device.__doc__.split())
    assert f"atol={text(defaults['atol'].default)}, rtol={text(defaults['rtol'].default)}" in doc
    assert f"atol={text(_core.MODULE_TOL['atol'])}, rtol={text(_core.MODULE_TOL['rtol'])}" in doc
    for words in ("CUDA", "MPS", "TF32", "bf16", "use_deterministic_algorithms", "TRANSFORMER_LIB_DEVICE"):
        assert words in doc, words


# --------------------------------------------------------------------------- the version check


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def test_library_version_is_pyprojects():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert transformer_lib.__version__ == project["version"]
    assert "require_version" in transformer_lib.__all__


@pytest.mark.parametrize("written_for", ["{mm}", "{mm}.0", "{mm}.17"])
def test_require_version_is_silent_for_the_installed_major_minor(written_for):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        require_version(written_for.format(mm=_major_minor(transformer_lib.__version__)))
    assert caught == []


@pytest.mark.parametrize("installed, written_for", [("0.2.0", "0.1"), ("0.1.3", "0.2"), ("1.1.0", "0.1"),
                                                    ("0.10.0.dev1", "0.1")])
def test_require_version_warns_in_one_line_when_major_minor_differs(monkeypatch, installed, written_for):
    monkeypatch.setattr(transformer_lib, "__version__", installed)
    with pytest.warns(UserWarning) as caught:
        require_version(written_for)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "\n" not in message
    assert f"written for transformer_lib {written_for}, but {installed} is installed" in message
    assert "pip install -e ." in message and "restart the kernel" in message
    assert caught[0].filename == __file__  # points at the caller (the notebook cell), not at the library


@pytest.mark.parametrize("bad, error", [(0.1, TypeError), (None, TypeError), ("1", ValueError), ("one", ValueError),
                                        ("0.1.0rc1", ValueError), ("", ValueError)])
def test_require_version_rejects_what_is_not_a_version(bad, error):
    with pytest.raises(error, match="written_for"):
        require_version(bad)


def test_a_notebooks_first_cell_warns_when_the_library_differs():
    """The first code cell of notebook 02, run as a student runs it, with another library version installed."""
    cell = next(c for c in json.loads((ROOT / "notebooks" / "02_attention_from_scratch.ipynb").read_text())["cells"]
                if c["cell_type"] == "code")
    code = "import transformer_lib; transformer_lib.__version__ = '9.9.0'\n" + "".join(cell["source"])
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    written_for = _major_minor(transformer_lib.__version__)
    assert f"UserWarning: this notebook was written for transformer_lib {written_for}, but 9.9.0 is installed" \
        in result.stderr, result.stderr[-3000:]
