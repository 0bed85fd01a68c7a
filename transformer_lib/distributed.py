"""Data-parallel training across processes: what :class:`~transformer_lib.train.Trainer` does under ``torchrun``.

Each process holds a full copy of the model and trains on its own share of every epoch's batches; after
each backward pass, ``DistributedDataParallel`` (DDP) averages the gradients over the processes, so every
copy takes the same optimiser step and the copies stay identical. With ``P`` processes a step sees ``P``
batches, and an epoch has ``P`` times fewer steps. ``torchrun`` starts the processes and tells each one
its place through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ...)::

    torchrun --standalone --nproc-per-node 2 -m transformer_lib.train --preset small --epochs 1 --out runs/ddp

On CUDA each process takes the GPU ``LOCAL_RANK`` and the NCCL backend; on CPU the Gloo backend (which is
how the tests run it, with 2 processes on one machine). Without ``torchrun`` (``WORLD_SIZE`` unset) nothing
here does anything: one process, the model unwrapped, every batch.

Only process 0 ("the main process") validates, writes checkpoints, shows the progress bar and prints; the
logged loss and tokens/s are summed over all processes. Decisions that end the loop (the time limit) are
taken together, so that no process waits forever for the others in a gradient average.

Example:
    >>> world()  # outside torchrun
    (0, 1)
    >>> shard([[0], [1], [2], [3], [4]], rank=1, world_size=2)  # every process gets as many batches
    [[1], [3]]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["world", "init_from_env", "shard", "wrap", "agree", "reduce_log", "main_first", "finish"]

T = TypeVar("T")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` unless a process group is running."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: str | None = None) -> str | None:
    """Join the process group that ``torchrun`` describes in the environment; return the device to train on.

    Args:
        device: the device asked for (``None`` = the best available). Under ``torchrun`` with CUDA, process
            ``LOCAL_RANK`` takes ``cuda:LOCAL_RANK``.

    Returns:
        ``device``, or ``"cuda:<LOCAL_RANK>"`` for a CUDA run under ``torchrun``. Without ``torchrun``
        (``WORLD_SIZE`` unset or 1) nothing is initialised and ``device`` comes back unchanged.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = (device is None or str(device).startswith("cuda")) and torch.cuda.is_available()
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    return device


def shard(batches: Sequence[T], rank: int, world_size: int) -> list[T]:
    """This process's share of an epoch's batches: every ``world_size``-th one, starting at ``rank``.

    Every process gets the same number of batches (the last ``len(batches) % world_size`` are dropped):
    a process with one batch more would wait forever for the others in the gradient average.

    Args:
        batches: the epoch's batches, in the same order on every process (same seed).
        rank: this process, ``0 <= rank < world_size``.
        world_size: number of processes.

    Example:
        >>> shard(list("abcdefg"), rank=0, world_size=3)
        ['a', 'd']
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size) = [0, {world_size}); got rank={rank}")
    usable = len(batches) - len(batches) % world_size
    return list(batches[rank:usable:world_size])


def wrap(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` when a process group runs, else ``model`` itself.

    The wrapper averages the gradients over the processes during ``backward``; call the model through it
    (``wrap(model)(src, tgt)``) and keep the bare ``model`` for its parameters and ``state_dict``.
    """
    if world()[1] == 1:
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def agree(flag: bool, device: torch.device | str = "cpu") -> bool:
    """``True`` on every process if ``flag`` is ``True`` on any (one all-reduce; no-op for one process)."""
    if world()[1] == 1:
        return flag
    t = torch.tensor(float(flag), device=_collective_device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def reduce_log(loss_sum: torch.Tensor, n_steps: int, tokens: int) -> tuple[float, int]:
    """Mean loss per step and total target tokens since the last log line, over all processes.

    Args:
        loss_sum: the sum of this process's step losses (a 0-d tensor, on the training device).
        n_steps: how many steps it sums.
        tokens: this process's target tokens in those steps.

    Returns:
        ``(mean loss, tokens)``: the mean over every process's steps, and the sum of their tokens.
    """
    if world()[1] == 1:
        return loss_sum.item() / n_steps, tokens
    t = torch.stack([loss_sum.detach().float(), torch.tensor(float(n_steps), device=loss_sum.device),
                     torch.tensor(float(tokens), device=loss_sum.device)]).to(_collective_device(loss_sum.device))
    dist.all_reduce(t)  # (3,) summed over the processes
    return t[0].item() / t[1].item(), int(t[2].item())


def main_first(make: Callable[[], object], load: Callable[[], T]) -> T:
    """Run ``make`` on the main process only (e.g. train and save a tokenizer), then ``load`` on every process.

    The other processes wait at a barrier until ``make`` has finished, so they read what it wrote: one
    tokenizer for all, rather than one per process that might differ.
    """
    rank, world_size = world()
    if rank == 0:
        make()
    if world_size > 1:
        dist.barrier()
    return load()


def finish() -> None:
    """Wait for the other processes, then leave the process group, if one runs.

    Call it once, at the end of a ``torchrun`` process that succeeded (a process that failed just exits:
    ``torchrun`` stops the others). The barrier matters: Gloo's worker threads free each finished
    collective's tensors a moment after it returns, and they need Python to do it. A process that left
    straight after its last all-reduce could reach interpreter shutdown first, and abort
    ("terminate called without an active exception"). At the barrier every earlier collective is done.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # every process's last collective is done (see above)
        dist.destroy_process_group()


def _collective_device(device: torch.device | str) -> torch.device:
    """Gloo reduces CPU tensors, NCCL CUDA ones."""
    return torch.device(device) if dist.get_backend() == "nccl" else torch.device("cpu")
