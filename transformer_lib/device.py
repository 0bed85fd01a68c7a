"""Pick the device to run on (CUDA, then Apple's MPS, then the CPU), and what to expect of its numbers.

Which device
    :func:`get_device` returns ``cuda`` if PyTorch sees an NVIDIA GPU, else ``mps`` (an Apple GPU), else
    ``cpu``: the fastest device that is there, in a fixed order, with no benchmark at import. Override it
    with ``get_device("cpu")`` or the environment variable ``TRANSFORMER_LIB_DEVICE=cpu`` (to compare
    timings, or to run on the CPU on a GPU machine). A device asked for but not available raises
    ``ValueError``: no silent fallback, so nobody believes they trained on a GPU when they did not.
    Only ``train.Trainer`` (and the ``train`` command line), the ``bench`` command line and notebooks 00
    and 10 call it; ``translator.load_translator`` (the ``evaluate`` and ``translate`` command lines)
    loads on the CPU unless told otherwise; every other function computes on the device of its inputs. The checks (:mod:`transformer_lib.checks`) build their cases on the
    CPU in float32, and bring a result the student computed on a GPU back to the CPU before comparing.

Seeds and reproducibility
    :func:`~transformer_lib.utils.set_seed` seeds Python's ``random``, NumPy and PyTorch (the CPU and
    every GPU). On the CPU, with the same seed, the same PyTorch build and the same number of threads,
    a run is repeatable bit for bit: initial weights, dropout masks, a few training steps and greedy
    decoding give equal tensors (``torch.equal``) run twice in one process and in two new processes
    (``tests/test_reproducibility.py``). Not across PyTorch versions, CPU models (other vector
    instructions) or thread counts, which change the order of floating-point sums.
    A model built on the CPU, then moved (as ``Trainer`` does), starts from the same weights on every
    device; but random numbers drawn on a GPU (dropout) come from that GPU's own generator, so they
    differ from the CPU's, and a GPU run never retraces a CPU run.

What differs on CUDA
    * float32 matrix products: PyTorch's default is full float32 (``torch.get_float32_matmul_precision()``
      is ``"highest"``); TF32 (10-bit mantissa, ~1e-3 relative error) runs only if you allow it, e.g.
      ``torch.set_float32_matmul_precision("high")``. The library never changes that setting.
    * bf16: ``Trainer`` (``amp="auto"``) runs its training steps and validation loss under
      ``torch.autocast(dtype=torch.bfloat16)`` on CUDA only: an 8-bit mantissa, about 3 significant
      digits per operation; the loss itself is computed in float32 (``objective``). ``amp="off"`` turns
      it off; decoding and translation run in float32.
    * Nondeterministic kernels: some CUDA kernels add in parallel in an unspecified order (PyTorch lists
      them under ``torch.use_deterministic_algorithms``: ``scatter_add_``, ``index_add``, the backward of
      ``gather`` and ``index_select``, ...), and ``torch.compile`` picks kernels by timing them. Two CUDA
      runs with one seed can therefore agree only to rounding, and drift apart over many training steps.
      ``torch.use_deterministic_algorithms(True)`` (slower; see PyTorch's notes on reproducibility)
      removes most of it; the library does not set it.

What differs on MPS
    No float64 on the device, other kernels (so other rounding than the CPU), and no guarantee of
    bit-identical runs; float32 only (``Trainer``'s ``amp="auto"`` uses no autocast there). The course
    was not run on MPS.

Tolerances the tests and checks use (float32 on the CPU)
    * bit for bit (``torch.equal``): a seeded run against itself (above); the KV cache against none;
      eval mode against eval mode.
    * one function against its torch built-in or a formula: ``torch.testing.assert_close``'s float32
      defaults (``rtol=1.3e-6, atol=1e-5``), or ``atol=1e-6``/``1e-5`` where the test says so.
    * a check comparing a student's function with the reference: ``atol=1e-5, rtol=1e-4``
      (``checks._core.close``); a student's module, several matmuls and LayerNorms deep:
      ``atol=1e-4, rtol=1e-4`` (``checks._core.MODULE_TOL``).
    * bf16 autocast against float32: 2e-2 relative on a loss (``tests/test_train.py``,
      ``tests/test_objective.py``).
    The tests run on the CPU only. On a GPU, float32 with TF32 off differs from the CPU by rounding,
    about 1e-6 relative per operation, which the function and check tolerances above are meant to
    absorb at the checks' small sizes (not measured here); under bf16 or TF32 expect about 1e-2.
"""

from __future__ import annotations

import os

import torch

__all__ = ["get_device", "describe_device", "ENV_VAR"]

ENV_VAR = "TRANSFORMER_LIB_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index is None or device.index < torch.cuda.device_count())
    if device.type == "mps":
        return _mps_available()
    return False


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the best available device: ``cuda`` -> ``mps`` -> ``cpu``.

    Args:
        prefer: a device to use instead (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``). If ``None``,
            the environment variable ``TRANSFORMER_LIB_DEVICE`` is used when set, else auto-detection.
            A requested device that is not available raises ``ValueError`` (no silent fallback).

    Returns:
        ``torch.device``.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    source = "prefer"
    if prefer is None and os.environ.get(ENV_VAR, "").strip():
        prefer, source = os.environ[ENV_VAR].strip(), ENV_VAR
    if prefer is not None:
        try:
            device = torch.device(prefer)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"{source} must name a device such as 'cpu', 'cuda', 'cuda:0' or 'mps'; got {prefer!r}"
            ) from err
        if not _available(device):
            raise ValueError(f"{source} asks for device {str(device)!r}, which is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: str | torch.device | None = None) -> str:
    """One line describing the device (name, memory) and the torch version.

    Args:
        device: the device to describe; default ``get_device()``.

    Example:
        >>> describe_device("cpu").startswith("cpu")
        True
    """
    device = get_device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        what = f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    elif device.type == "mps":
        what = "mps (Apple GPU)"
    else:
        what = f"cpu ({torch.get_num_threads()} threads)"
    return f"{what}, torch {torch.__version__}"
