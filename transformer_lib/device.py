"""Pick the device to run on: CUDA, then Apple's MPS, then CPU.

Override with ``get_device("cpu")`` or the environment variable ``TRANSFORMER_LIB_DEVICE=cpu``
(e.g. to compare timings, or to run on CPU on a GPU machine).
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
