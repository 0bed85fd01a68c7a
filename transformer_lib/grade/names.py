"""Names in a notebook, resolved to the objects they stand for, from the code alone.

Nothing runs but imports of the library, torch and a few standard modules (``_IMPORTABLE``); whatever cannot
be known without running the code is ``UNKNOWN``. :class:`Names` resolves an expression as Python would:
through imports and aliases (``import transformer_lib.attention as m``, ``f = m.x``), attribute chains,
``getattr(m, "x")``, ``vars(m)["x"]``, ``importlib.import_module`` and ``__import__``. A function's own
names (a parameter, ``t = torch``, ``import torch as t`` in its body) shadow the notebook's, and are resolved
too. :func:`notebook_env` gives the names a sequence of cells binds. :mod:`transformer_lib.grade.static`
reads what an exercise cell does with them.

Example:
    >>> import transformer_lib.attention
    >>> env = notebook_env(["from transformer_lib import attention as a",
    ...                     "f = getattr(a, 'scaled_dot_product_attention')"])
    >>> env["f"] is transformer_lib.attention.scaled_dot_product_attention
    True
    >>> Names(env).resolve(ast.parse("f(q, k, v)").body[0].value) is UNKNOWN  # a call's result is not known
    True
"""

from __future__ import annotations

import ast
import builtins
import importlib
from collections import ChainMap
from types import MappingProxyType, ModuleType

__all__ = ["UNKNOWN", "Names", "import_name", "attribute", "parse", "bind", "notebook_env"]

_IMPORTABLE = ("transformer_lib", "torch", "math", "importlib", "sys", "builtins", "os")
UNKNOWN = object()  # what cannot be known without running the code


def import_name(name: str):
    """The module ``name`` if it is one the grader may import (``_IMPORTABLE``) and exists, else UNKNOWN."""
    if name.split(".")[0] not in _IMPORTABLE:
        return UNKNOWN
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a module that does not exist is simply unknown
        return UNKNOWN


def attribute(value, name: str):
    """``value.name``, or UNKNOWN (for an unknown value or a missing attribute)."""
    return UNKNOWN if value is UNKNOWN else getattr(value, name, UNKNOWN)


def parse(source: str) -> ast.Module | None:
    """The syntax tree of a cell (its ``%magic`` and ``!shell`` lines blanked), or None for a syntax error."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


class Names:
    """Resolves expressions to objects, given ``env`` (name -> object) and the local scopes being read."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self.local: list[dict] = []  # name -> object bound in each function being read, innermost last

    def visible(self) -> ChainMap:
        """Every name in scope, the innermost binding first."""
        return ChainMap(*reversed(self.local), self.env)

    def resolve(self, node: ast.AST):
        """The object an expression names, or UNKNOWN; nothing is called but getattr/import."""
        if isinstance(node, ast.Name):
            names = self.visible()
            return names[node.id] if node.id in names else getattr(builtins, node.id, UNKNOWN)
        if isinstance(node, ast.Attribute):
            return attribute(self.resolve(node.value), node.attr)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            base = self.resolve(node.value)
            return base.get(node.slice.value, UNKNOWN) if isinstance(base, (dict, MappingProxyType)) else UNKNOWN
        if not isinstance(node, ast.Call) or not node.args:
            return UNKNOWN
        func, args = self.resolve(node.func), node.args
        constant = [isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args]
        if func is getattr and len(args) >= 2 and constant[1]:
            return attribute(self.resolve(args[0]), args[1].value)
        if func is vars and len(args) == 1:
            base = self.resolve(args[0])
            return vars(base) if isinstance(base, (type, ModuleType)) else UNKNOWN
        if func is importlib.import_module and constant[0]:
            return import_name(args[0].value)
        if func is __import__ and constant[0]:
            fromlist = len(args) >= 4 or any(k.arg == "fromlist" for k in node.keywords)
            return import_name(args[0].value if fromlist else args[0].value.split(".")[0])
        return UNKNOWN


def bind(tree: ast.Module, env: dict) -> None:
    """Add to ``env`` the top-level names a cell binds: imports and aliases (``f = m.x``) resolved to objects,
    anything else unknown (it shadows the name)."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name if alias.asname else alias.name.split(".")[0]
                env[alias.asname or name] = import_name(name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                value = attribute(import_name(node.module), alias.name)
                env[alias.asname or alias.name] = value if value is not UNKNOWN else \
                    import_name(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            env[node.targets[0].id] = Names(env).resolve(node.value)
        else:
            for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [node]:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    env[sub.name] = UNKNOWN
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    env[sub.id] = UNKNOWN


def notebook_env(sources: list[str]) -> dict:
    """The names bound by a sequence of cells, in order (a later binding wins)."""
    env: dict = {}
    for tree in filter(None, map(parse, sources)):
        bind(tree, env)
    return env
