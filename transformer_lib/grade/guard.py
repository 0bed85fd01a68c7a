"""Runs inside a grading kernel: every check judges the student's code against the true reference.

``python -m transformer_lib.grade`` loads this file into the kernel (by its path, as the module
``__grade_guard__``) before any student code runs, and calls

* :func:`snapshot` once, first: it records the functions and classes that the checks rely on (the public
  names of ``torch``, ``torch.nn``, ``torch.nn.functional``, ... and of the classes they define, ``math``,
  ``builtins``), the import machinery (``sys.meta_path``, ``sys.path_hooks``) and IPython's hooks;
* :func:`restore` in a hidden cell just before each check cell: undoes every change made with the
  notebook's own code (a library such as torch may change its own attributes; that is kept), drops
  every ``transformer_lib`` module from ``sys.modules`` and imports the library afresh from its own folder
  (never from the kernel's working directory), then re-runs the pristine notebook's import statements, so
  that ``checks``, ``attention``, ... name the fresh modules again;
* :func:`verify` in a hidden cell just after each check cell: raises :class:`GradingTampered` if anything
  recorded changed while the check ran (student code called by the check can patch ``torch.allclose``
  on its first call), and restores it.

So ``checks.check_softmax = lambda *a, **k: None``, ``import transformer_lib.checks as c; c.check_x = ...``,
patching ``transformer_lib.attention.scaled_dot_product_attention`` (the reference a check compares with),
``checks = Fake()``, ``torch.allclose = lambda *a, **k: True`` or an import hook that serves a fake library
all leave the check judging against the reference. This is a defence against patching from inside Python,
not a sandbox: a student who studies the grader can still defeat it from inside the kernel. The grader also
flags such code statically (``patches-runtime``, ``dynamic-code``) so that a person looks at it.

Only the standard library is imported at module level; ``torch`` is imported by :func:`snapshot`.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import sys
from collections.abc import Callable

__all__ = ["GradingTampered", "snapshot", "restore", "verify"]

# Modules whose public functions and classes the checks (and the library) use.
MODULES = ("builtins", "math", "operator", "functools", "itertools", "torch", "torch.nn", "torch.nn.functional",
           "torch.nn.init", "torch.nn.parameter", "torch.testing", "torch.linalg", "torch.special", "torch.fft",
           "torch.random", "torch.autograd", "torch.autograd.grad_mode", "numpy")
PACKAGE = "transformer_lib"
# Libraries whose own code may change the recorded names at run time; a change made with anything else
# (the notebook's __main__, builtins, functools...) is the student's.
LIBRARIES = {"torch", "transformer_lib", "numpy", "matplotlib", "matplotlib_inline", "IPython", "ipykernel",
             "ipywidgets", "comm", "tqdm", "traitlets", "jupyter_client", "sympy", "importlib", "_frozen_importlib",
             "_frozen_importlib_external", "zipimport", "setuptools", "_distutils_hack", "pkg_resources", "six",
             "tokenizers", "sacrebleu", "polib", "num2words", "PIL", "scipy"}

_state: dict = {}


class GradingTampered(RuntimeError):
    """Code run by a check changed torch, the library or the import machinery while the check ran."""


def _watched(name: str) -> bool:
    """Public names and special methods (``__eq__``, ``__call__``), not caches the runtime itself fills in."""
    if not name.strip("_") or name in _KERNEL_SETS:  # _, __, ___: IPython's last outputs
        return False
    if name.startswith("__") and name.endswith("__"):
        return name not in _RUNTIME_DUNDERS
    return not name.startswith("_")


_RUNTIME_DUNDERS = {"__dict__", "__weakref__", "__doc__", "__abstractmethods__", "__annotations__", "__parameters__",
                    "__slotnames__", "__orig_bases__", "__protocol_attrs__", "__non_callable_proto_members__",
                    "__module__", "__qualname__", "__firstlineno__", "__static_attributes__"}
_KERNEL_SETS = {"input", "getpass"}  # ipykernel binds these anew for every cell it runs
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python; built-in C types cannot be patched


def _record() -> dict:
    modules = [sys.modules[name] for name in MODULES if name in sys.modules]
    modules += [m for name, m in list(sys.modules.items()) if name == PACKAGE or name.startswith(PACKAGE + ".")]
    classes = {id(v): v for m in modules for k, v in list(vars(m).items())
               if not k.startswith("_") and isinstance(v, type) and v.__flags__ & _HEAP_TYPE}
    return {
        "modules": [(m, {k: v for k, v in vars(m).items() if _watched(k) or k in ("__import__", "__build_class__")})
                    for m in modules],
        "classes": [(c, {k: v for k, v in vars(c).items() if _watched(k)}) for c in classes.values()],
    }


def _hooks() -> dict:
    shell = getattr(builtins, "get_ipython", lambda: None)()
    hooks = {"sys": {"meta_path": list(sys.meta_path), "path_hooks": list(sys.path_hooks)},
             "streams": {"stdout": sys.stdout, "stderr": sys.stderr}}
    if shell is not None:
        hooks["shell"] = shell
        hooks["lists"] = {name: list(getattr(shell, name)) for name in
                          ("ast_transformers", "input_transformers_post", "input_transformers_cleanup")}
        hooks["events"] = {name: list(fns) for name, fns in shell.events.callbacks.items()}
        hooks["custom_exceptions"] = shell.custom_exceptions
    return hooks


def snapshot(package_dir: str) -> None:
    """Record the state to restore before each check (call once, before any student code runs)."""
    import math  # noqa: F401 - so that they are in sys.modules and recorded
    import operator  # noqa: F401

    import torch  # noqa: F401
    import torch.nn.functional  # noqa: F401

    _state.update(package_dir=package_dir, hooks=_hooks(), record=_record())


def _suspicious(value) -> bool:
    """Whether a new value was made by the notebook's own code (a lambda, a cell's function, ``print``,
    ``functools.partial``...) rather than by a library: torch, for one, patches some of its own functions the
    first time a submodule is imported, and matplotlib registers IPython hooks. Only suspicious changes are
    undone and reported."""
    module = getattr(value, "__module__", None)
    if not isinstance(module, str):
        module = type(value).__module__
    return module.split(".")[0] not in LIBRARIES


def _put_back(record: dict) -> list[str]:
    """Undo the suspicious changes to the recorded names; return them ("torch.allclose", ...)."""
    changed = []
    for module, names in record["modules"]:
        current = vars(module)
        for name, value in names.items():
            now = current.get(name, _state)
            if now is not value and (now is _state or _suspicious(now)):
                changed.append(f"{module.__name__}.{name}")
                setattr(module, name, value)
    for cls, names in record["classes"]:
        current = {k: v for k, v in vars(cls).items() if _watched(k)}
        for name in set(current) | set(names):
            now = current.get(name, _state)
            if now is not names.get(name, _state) and (now is _state or _suspicious(now)):
                changed.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
                if name in names:
                    type.__setattr__(cls, name, names[name])
                else:
                    type.__delattr__(cls, name)
    return changed


def _merge(recorded: list, current: list) -> list | None:
    """``current`` without suspicious additions and with removed entries back, or None if it needs no change."""
    added = [x for x in current if not any(x is r for r in recorded)]
    if all(any(r is x for x in current) for r in recorded) and not any(map(_suspicious, added)):
        return None
    return recorded + [x for x in added if not _suspicious(x)]


def _put_back_lists(get: Callable[[str], list], put: Callable[[str, list], None], recorded_by_name: dict,
                    label: str, changed: list[str]) -> None:
    """Put each recorded hook list back (see :func:`_merge`), naming what changed in ``changed``."""
    for name, recorded in recorded_by_name.items():
        merged = _merge(recorded, get(name))
        if merged is not None:
            changed.append(label.format(name))
            put(name, merged)


def _put_back_hooks() -> list[str]:
    hooks, changed = _state["hooks"], []
    _put_back_lists(lambda n: getattr(sys, n), lambda n, v: setattr(sys, n, v), hooks["sys"], "sys.{}", changed)
    for name, stream in hooks["streams"].items():
        if getattr(sys, name) is not stream:
            changed.append(f"sys.{name}")
            setattr(sys, name, stream)
    if sys.gettrace() is not None or sys.getprofile() is not None:
        changed.append("sys.settrace")
        sys.settrace(None)
        sys.setprofile(None)
    shell = hooks.get("shell")
    if shell is not None:
        _put_back_lists(lambda n: getattr(shell, n), lambda n, v: setattr(shell, n, v), hooks["lists"],
                        "IPython's {}", changed)
        callbacks = shell.events.callbacks
        _put_back_lists(lambda n: callbacks.get(n, []), callbacks.__setitem__, hooks["events"], "IPython's {} event",
                        changed)
        if shell.custom_exceptions != hooks["custom_exceptions"]:
            changed.append("IPython's custom exceptions")
            shell.set_custom_exc((), None)
    return changed


def _fresh_library() -> None:
    """Drop every transformer_lib module and import the package again from its own folder."""
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    init = f"{_state['package_dir']}/__init__.py"
    spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[_state["package_dir"]])
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    importlib.import_module(f"{PACKAGE}.checks")


def restore(imports: str, keep: list[str] = ()) -> None:
    """Before a check: undo patches, import a fresh library, re-run the notebook's ``imports`` in the caller's
    namespace (found from its frame, so that a student's ``globals = ...`` cannot redirect it).

    The names in ``keep`` (the student's objects that the check is given) keep their values.
    """
    namespace = sys._getframe(1).f_globals
    _put_back(_state["record"])
    _put_back_hooks()
    _fresh_library()
    namespace["__builtins__"] = builtins
    kept = {name: namespace[name] for name in keep if name in namespace}
    for statement in imports.split("\n"):
        if statement.strip():
            try:
                exec(statement, namespace)  # noqa: S102 - the pristine notebook's own import lines
            except Exception:  # noqa: BLE001 - a failing import fails the check cell itself, visibly
                pass
    namespace.update(kept)
    _state["record"] = _record()  # now with the fresh library's modules, for verify()


def verify() -> None:
    """After a check: raise GradingTampered if the check's run changed anything recorded (and undo it)."""
    changed = _put_back(_state["record"]) + _put_back_hooks()
    if changed:
        shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise GradingTampered(f"your code changed {shown} while the check ran, so the check's result does not count")
