"""What an exercise cell's code does, read from its syntax tree (never from its output).

:func:`analyse` returns flags for one exercise cell, each with a note naming the line (for the report; no flag
changes a grade):

* ``uses-reference``: the cell imports, calls, aliases or subclasses the library's version of the very thing
  it should implement (``references.REFERENCES``; ``KEYWORDS``: or calls torch's with the keyword that makes it
  the exercise, ``F.cross_entropy(..., label_smoothing=0.1)``), or the checker's own helpers. Names are resolved
  as Python would (:mod:`transformer_lib.grade.names`: the notebook's imports and the cell's own, aliases,
  attribute chains such as ``checks.attention.attention.x``, ``getattr(m, "x")``); a name the student
  defines (in any exercise) or a parameter shadows the library's.
* ``patches-runtime``: it assigns to an attribute of a module or class (``checks.check_x = ...``,
  ``torch.allclose = ...``), rebinds a module the notebook imported (``checks = ...``), or touches
  ``sys.modules``, import hooks, ``builtins`` or IPython's hooks.
* ``dynamic-code``: ``exec``/``eval``/``compile`` or an import or ``getattr`` whose name is computed, so the
  code cannot be read statically.
* ``system-access``: files, processes or the network (``open``, ``os``, ``subprocess``, ``shutil``, ``socket``...).
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections import ChainMap
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType

from .names import UNKNOWN, Names, attribute, bind, import_name, notebook_env, parse
from .references import KEYWORDS, METHODS, REFERENCES, resolve_path

__all__ = ["analyse", "Findings", "notebook_env"]

_SYSTEM = {"os", "subprocess", "shutil", "socket", "ctypes", "pathlib", "urllib", "requests", "http", "signal",
           "multiprocessing", "threading", "tempfile", "glob", "pty", "resource"}
_SYS_WORDS = {"modules", "meta_path", "path_hooks", "path_importer_cache", "settrace", "setprofile", "excepthook",
              "displayhook", "stdout", "stderr"}
_DUNDER_WORDS = {"__globals__", "__code__", "__builtins__", "__subclasses__"}
_GRADER_BUILTINS = {"__import__", "__builtins__", "__build_class__", "globals", "exec", "getattr", "print"}


@dataclass
class Findings:
    """Flags of one exercise cell and a note per finding ("line 3: ...")."""

    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, flag: str, line: int, text: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
        self.notes.append(f"line {line}: {text}")


def _parameters(a: ast.arguments) -> set[str]:
    """The names a function's or lambda's parameters bind."""
    return {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x is not None}


class _Resolver(Names, ast.NodeVisitor):
    """Reads one cell: resolves its names (:class:`Names`) and records its findings."""

    def __init__(self, env: dict, refs: tuple = (), methods: tuple = (), findings: Findings | None = None,
                 modules: set | None = None, keywords: tuple = ()) -> None:
        super().__init__(env)
        self.refs, self.methods, self.keywords = refs, methods, keywords  # keywords: (object, word) pairs
        self.findings = findings or Findings()
        self.modules = modules or set()  # names the notebook bound to modules

    def _is_reference(self, value) -> str | None:
        """How to name ``value`` if it is a reference of this exercise (or the checker's own code), else None."""
        if value is UNKNOWN:
            return None
        module, name = getattr(value, "__module__", None) or "", getattr(value, "__qualname__", "")
        if any(value is ref for ref in self.refs):
            return f"{module}.{name}, the reference version of this exercise".lstrip(".")
        if module.startswith("transformer_lib.checks") and not isinstance(value, ModuleType) \
                and not name.startswith("check_") and name not in ("CheckFailed", "ExerciseNotDone"):
            return f"{module}.{name}, a part of the checker"
        return None

    def _flag_reference(self, node: ast.AST, verb: str = "uses") -> bool:
        found = self._is_reference(self.resolve(node))
        if found:
            self.findings.add("uses-reference", node.lineno, f"{verb} `{ast.unparse(node)[:60]}`: {found}")
        return bool(found)

    # -- scopes: a parameter or local name shadows the notebook's names
    def visit_FunctionDef(self, node) -> None:
        self._rebinds(node.name, node.lineno)
        if node.name in ("__torch_function__", "__torch_dispatch__"):
            self.findings.add("patches-runtime", node.lineno, f"defines `{node.name}`, which changes what torch's "
                              "functions (those the checks compare with, too) do with these tensors")
        for base in node.decorator_list:
            self.visit(base)
        params = _parameters(node.args)
        stored = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        declared = {name for n in ast.walk(node) if isinstance(n, ast.Global) for name in n.names}
        own: dict = {}  # the body's imports and aliases (``t = torch``), resolved; any other local is unknown
        bind(ast.Module(body=node.body, type_ignores=[]), ChainMap(own, self.visible()))
        self.local.append({**dict.fromkeys(stored - declared, UNKNOWN),
                           **{k: v for k, v in own.items() if k not in declared}, **dict.fromkeys(params, UNKNOWN)})
        for stmt in node.body:
            self.visit(stmt)
        self.local.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node) -> None:
        self.local.append(dict.fromkeys(_parameters(node.args), UNKNOWN))
        self.generic_visit(node)
        self.local.pop()

    def _rebinds(self, name: str, line: int) -> None:
        if self.local:
            return
        if name in self.modules:
            self.findings.add("patches-runtime", line, f"rebinds `{name}`, a module the notebook imported")
        elif name in _GRADER_BUILTINS:
            self.findings.add("patches-runtime", line, f"rebinds `{name}`, a built-in the grader relies on")

    def visit_ClassDef(self, node) -> None:
        self._rebinds(node.name, node.lineno)
        for base in node.bases:
            if not self._flag_reference(base, "subclasses"):
                self.visit(base)
        for stmt in node.body:
            self.visit(stmt)

    # -- uses
    def visit_Name(self, node) -> None:
        if isinstance(node.ctx, ast.Load):
            self._flag_reference(node)
        if node.id in ("get_ipython", "__builtins__"):
            self.findings.add("patches-runtime", node.lineno, f"`{node.id}` reaches into the kernel itself")

    def visit_Attribute(self, node) -> None:
        if isinstance(node.ctx, ast.Load) and self._flag_reference(node):
            return
        if node.attr in _DUNDER_WORDS or (node.attr in _SYS_WORDS and self.resolve(node.value) is sys):
            self.findings.add("patches-runtime", node.lineno, f"`{ast.unparse(node)[:60]}` reaches into the runtime")
        self.generic_visit(node)

    def visit_Import(self, node) -> None:
        for alias in node.names:
            self._check_import(node, alias.name, import_name(alias.name))

    def visit_ImportFrom(self, node) -> None:
        module = import_name(node.module or "") if not node.level else UNKNOWN
        for alias in node.names:
            self._check_import(node, f"{node.module}.{alias.name}", attribute(module, alias.name))

    def _check_import(self, node, name: str, value) -> None:
        found = self._is_reference(value)
        if found:
            self.findings.add("uses-reference", node.lineno, f"imports `{name}`: {found}")
        if name.split(".")[0] in _SYSTEM:
            self.findings.add("system-access", node.lineno, f"imports `{name}`")
        if name.split(".")[0] in ("builtins", "importlib", "gc"):
            self.findings.add("patches-runtime", node.lineno, f"imports `{name}`")

    def visit_Call(self, node) -> None:
        if self._flag_reference(node):  # getattr(m, "x"), importlib.import_module("...")
            return
        func, args = self.resolve(node.func), node.args
        computed = not (args and isinstance(args[0], ast.Constant))
        if func in (exec, eval, compile):
            self.findings.add("dynamic-code", node.lineno, f"`{ast.unparse(node)[:60]}` runs code from a string, "
                              "which cannot be read before it runs")
        elif (func in (importlib.import_module, __import__) and computed) or (
                func is getattr and len(args) >= 2 and not isinstance(args[1], ast.Constant)
                and isinstance(self.resolve(args[0]), ModuleType)):
            self.findings.add("dynamic-code", node.lineno, f"`{ast.unparse(node)[:60]}` looks up code by a computed "
                              "name, which cannot be read before it runs")
        if func in (setattr, delattr) and args and isinstance(self.resolve(args[0]), (type, ModuleType)):
            self.findings.add("patches-runtime", node.lineno, f"`{ast.unparse(node)[:60]}` changes a module or class")
        if func is open:
            self.findings.add("system-access", node.lineno, "opens a file")
        if isinstance(node.func, ast.Attribute) and node.func.attr in self.methods \
                and self.resolve(node.func) is UNKNOWN:
            self.findings.add("uses-reference", node.lineno, f"calls `.{node.func.attr}(...)`, torch's version of "
                              "this exercise")
        for word in (w for obj, w in self.keywords if func is obj and any(k.arg == w for k in node.keywords)):
            self.findings.add("uses-reference", node.lineno, f"calls `{ast.unparse(node.func)[:40]}(..., {word}=...)`, "
                              "torch's version of this exercise")
        self.generic_visit(node)

    def visit_Assign(self, node) -> None:
        for target in getattr(node, "targets", None) or [node.target]:
            self._check_target(target)
        self.generic_visit(node)

    visit_AugAssign = visit_AnnAssign = visit_Delete = visit_Assign

    def _check_target(self, target) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_target(element)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            base = self.resolve(target.value)
            if isinstance(base, (type, ModuleType, dict, MappingProxyType)) or (
                    isinstance(target, ast.Attribute) and target.attr in _DUNDER_WORDS | {"__dict__", "__class__"}):
                self.findings.add("patches-runtime", target.lineno, f"assigns to `{ast.unparse(target)[:60]}`, "
                                  "changing a module or class that other code relies on")
        elif isinstance(target, ast.Name) and not self.local:
            self._rebinds(target.id, target.lineno)


def analyse(source: str, check: str, env: dict) -> Findings:
    """Flags of the exercise cell ``source`` checked by ``check``, given the names ``env`` the notebook bound
    before it (:func:`notebook_env` of the cells above, the student's earlier exercises included)."""
    tree = parse(source)
    findings = Findings()
    if tree is None:
        return findings  # a syntax error: the check reports it
    refs = tuple(obj for path in REFERENCES.get(check, ()) for obj in [resolve_path(path)] if obj is not None)
    modules = {name for name, value in env.items() if isinstance(value, ModuleType)}
    own = dict(env)
    bind(tree, own)
    keywords = tuple((resolve_path(path), word) for path, word in KEYWORDS.get(check, {}).items())
    resolver = _Resolver(own, refs, METHODS.get(check, ()), findings, modules, keywords)
    for node in tree.body:  # top-level rebinding of a notebook module, e.g. `checks = Fake()` or `import x as checks`
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound in modules and own.get(bound) is not env[bound]:
                    findings.add("patches-runtime", node.lineno, f"rebinds `{bound}`, a module the notebook imported")
    resolver.visit(tree)
    return findings
