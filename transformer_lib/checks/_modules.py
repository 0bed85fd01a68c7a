"""Checking a student's ``nn.Module`` class: build it, copy the reference weights in by name, compare.

A module that names its layers otherwise, or sizes them otherwise, is told exactly which names and
sizes the exercise uses, instead of being compared with weights it never received.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ._core import Mistake, call

__all__ = ["ModelPair"]


class ModelPair:
    """Build (student, reference) module pairs with the reference's weights copied into the student's.

    The weights are copied by parameter name (``q_proj.weight``, ...), the names the exercise gives.
    A module whose names or shapes differ is told exactly which to use, rather than being compared
    with weights it never received. The first copy prints one line saying so.
    """

    def __init__(self, cls: type, reference_cls: type, exercise: str, arg_names: Sequence[str] = (),
                 inspect: Callable[..., str | None] | None = None) -> None:
        """``inspect(student, *args, **kwargs)``, if given, may return a diagnosis before any weight is copied."""
        self.cls, self.reference_cls, self.exercise, self.arg_names = cls, reference_cls, exercise, arg_names
        self.inspect = inspect
        self.built: dict[tuple, tuple[nn.Module, nn.Module]] = {}

    def get(self, *args: Any, **kwargs: Any) -> tuple[nn.Module, nn.Module]:
        key = (args, tuple(sorted(kwargs.items())))
        if isinstance(self.cls, nn.Module):
            raise Mistake(f"pass the class itself, not an instance: {type(self.cls).__name__}, not "
                          f"{type(self.cls).__name__}(...); the check builds its own instances")
        if key not in self.built:
            reference = self.reference_cls(*args, **kwargs).eval()
            for module in reference.modules():  # non-trivial norms, so swapped norms are detectable
                if isinstance(module, nn.LayerNorm):
                    module.weight.copy_(1 + 0.3 * torch.randn_like(module.weight))
                    module.bias.copy_(0.3 * torch.randn_like(module.bias))
            student = call(self.cls, *args, names=self.arg_names, **kwargs)
            if not isinstance(student, nn.Module):
                name = getattr(self.cls, "__name__", "class")
                raise Mistake(f"your {name} is not an nn.Module: subclass torch.nn.Module")
            student = student.cpu().eval()  # a module that moved itself to a GPU is checked on the CPU
            mistake = self.inspect(student, *args, **kwargs) if self.inspect else None
            if mistake:
                raise Mistake(mistake)
            _copy_by_name(student, reference)
            if not self.built:
                tops = ", ".join(dict.fromkeys(n.split(".")[0] for n, _ in reference.named_parameters()))
                print(f"{self.exercise}: copied the reference weights into your module by name ({tops})")
            self.built[key] = student, reference
        return self.built[key]


def _copy_by_name(student: nn.Module, reference: nn.Module) -> None:
    """Copy every reference parameter into the student's parameter of the same name and shape."""
    # Every name, shared matrices included (tied embeddings): which name PyTorch lists a shared matrix under
    # depends on the order the student created the layers in, not on whether they are right.
    ref = dict(reference.named_parameters(remove_duplicate=False))
    mine = dict(student.named_parameters(remove_duplicate=False))
    missing, extra = [n for n in ref if n not in mine], [n for n in mine if n not in ref]
    if missing or extra:
        message = (f"the check copies the reference weights into your {type(student).__name__} by attribute name, "
                   f"so name your layers as the exercise does\n  expected: {_collapse(missing, ref)}")
        raise Mistake(message + (f"\n  yours:    {_collapse(extra, mine)} (not in the exercise)" if extra else ""))
    wrong = [n for n in ref if mine[n].shape != ref[n].shape]
    if wrong:
        sizes = "; ".join(f"{n}: expected {tuple(ref[n].shape)}, yours {tuple(mine[n].shape)}" for n in wrong)
        raise Mistake(f"some of your layers have the wrong size ({sizes}): check the in/out sizes of each layer")
    for n, p in ref.items():
        mine[n].copy_(p)


def _collapse(names: Sequence[str], universe: Sequence[str]) -> str:
    """Parameter names, shortened to the shortest prefix all of whose parameters are in ``names``."""
    out = []
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if all(u in names for u in universe if u == prefix or u.startswith(prefix + ".")):
                out.append(prefix)
                break
    return ", ".join(dict.fromkeys(out))
