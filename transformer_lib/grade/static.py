"""What an exercise cell's code does, read from its syntax tree (never from its output).

:func:`analyse` returns flags for one exercise cell:

* ``uses-reference``: the cell imports, calls, aliases or subclasses the library's version of the very thing
  it should implement (``references.REFERENCES``), or the checker's own helpers. Names are resolved
  as Python would: through the notebook's imports and the cell's own (``import transformer_lib.attention as
  m``), attribute chains (``checks.attention.attention.x``), ``getattr(m, "x")``, ``importlib.import_module``
  and aliases (``f = m.x``); a name the student defines (in any exercise) or a parameter shadows the library's.
* ``patches-runtime``: it assigns to an attribute of a module or class (``checks.check_x = ...``,
  ``torch.allclose = ...``), rebinds a module the notebook imported (``checks = ...``), or touches
  ``sys.modules``, import hooks, ``builtins`` or IPython's hooks.
* ``dynamic-code``: ``exec``/``eval``/``compile`` or an import or ``getattr`` whose name is computed, so the
  code cannot be read statically.
* ``system-access``: files, processes or the network (``open``, ``os``, ``subprocess``, ``shutil``, ``socket``...).

Each flag comes with a note naming the line, for the report. Grading is not changed by any flag.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import sys
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType

from .references import METHODS, REFERENCES, resolve_path

__all__ = ["analyse", "Findings", "notebook_env"]

_IMPORTABLE = ("transformer_lib", "torch", "math", "importlib", "sys", "builtins", "os")
_SYSTEM = {"os", "subprocess", "shutil", "socket", "ctypes", "pathlib", "urllib", "requests", "http", "signal",
           "multiprocessing", "threading", "tempfile", "glob", "pty", "resource"}
_SYS_WORDS = {"modules", "meta_path", "path_hooks", "path_importer_cache", "settrace", "setprofile", "excepthook",
              "displayhook", "stdout", "stderr"}
_DUNDER_WORDS = {"__globals__", "__code__", "__builtins__", "__subclasses__"}
_GRADER_BUILTINS = {"__import__", "__builtins__", "__build_class__", "globals", "exec", "getattr", "print"}
_UNKNOWN = object()


@dataclass
class Findings:
    """Flags of one exercise cell and a note per finding ("line 3: ...")."""

    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, flag: str, line: int, text: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
        self.notes.append(f"line {line}: {text}")


def _import(name: str):
    if name.split(".")[0] not in _IMPORTABLE:
        return _UNKNOWN
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a module that does not exist is simply unknown
        return _UNKNOWN


def _attr(value, name: str):
    return _UNKNOWN if value is _UNKNOWN else getattr(value, name, _UNKNOWN)


def _parse(source: str) -> ast.Module | None:
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def _bind(tree: ast.Module, env: dict) -> None:
    """Add to ``env`` the top-level names a cell binds: imports and aliases (``f = m.x``) resolved to objects,
    anything else unknown (it shadows the name)."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name if alias.asname else alias.name.split(".")[0]
                env[alias.asname or name] = _import(name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                value = _attr(_import(node.module), alias.name)
                env[alias.asname or alias.name] = value if value is not _UNKNOWN else \
                    _import(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            env[node.targets[0].id] = _Resolver(env).resolve(node.value)
        else:
            for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [node]:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    env[sub.name] = _UNKNOWN
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    env[sub.id] = _UNKNOWN


def notebook_env(sources: list[str]) -> dict:
    """The names bound by a sequence of cells, in order (a later binding wins)."""
    env: dict = {}
    for tree in filter(None, map(_parse, sources)):
        _bind(tree, env)
    return env


class _Resolver(ast.NodeVisitor):
    """Resolves names to objects; as a visitor, records the findings of one cell."""

    def __init__(self, env: dict, refs: tuple = (), methods: tuple = (), findings: Findings | None = None,
                 modules: set | None = None) -> None:
        self.env, self.refs, self.methods = env, refs, methods
        self.findings = findings or Findings()
        self.modules = modules or set()  # names the notebook bound to modules
        self.local: list[set[str]] = []

    def resolve(self, node: ast.AST):
        """The object an expression names, or _UNKNOWN; nothing is called but getattr/import."""
        if isinstance(node, ast.Name):
            if any(node.id in scope for scope in self.local):
                return _UNKNOWN
            return self.env[node.id] if node.id in self.env else getattr(builtins, node.id, _UNKNOWN)
        if isinstance(node, ast.Attribute):
            return _attr(self.resolve(node.value), node.attr)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            base = self.resolve(node.value)
            return base.get(node.slice.value, _UNKNOWN) if isinstance(base, (dict, MappingProxyType)) else _UNKNOWN
        if not isinstance(node, ast.Call) or not node.args:
            return _UNKNOWN
        func, args = self.resolve(node.func), node.args
        constant = [isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args]
        if func is getattr and len(args) >= 2 and constant[1]:
            return _attr(self.resolve(args[0]), args[1].value)
        if func is vars and len(args) == 1:
            base = self.resolve(args[0])
            return vars(base) if isinstance(base, (type, ModuleType)) else _UNKNOWN
        if func is importlib.import_module and constant[0]:
            return _import(args[0].value)
        if func is __import__ and constant[0]:
            fromlist = len(args) >= 4 or any(k.arg == "fromlist" for k in node.keywords)
            return _import(args[0].value if fromlist else args[0].value.split(".")[0])
        return _UNKNOWN

    def _is_reference(self, value) -> str | None:
        """How to name ``value`` if it is a reference of this exercise (or the checker's own code), else None."""
        if value is _UNKNOWN:
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
        a = node.args
        params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x is not None}
        stored = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        declared = {name for n in ast.walk(node) if isinstance(n, ast.Global) for name in n.names}
        self.local.append(params | (stored - declared))
        for stmt in node.body:
            self.visit(stmt)
        self.local.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node) -> None:
        a = node.args
        self.local.append({x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x})
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
            self._check_import(node, alias.name, _import(alias.name))

    def visit_ImportFrom(self, node) -> None:
        module = _import(node.module or "") if not node.level else _UNKNOWN
        for alias in node.names:
            self._check_import(node, f"{node.module}.{alias.name}", _attr(module, alias.name))

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
                and self.resolve(node.func) is _UNKNOWN:
            self.findings.add("uses-reference", node.lineno, f"calls `.{node.func.attr}(...)`, torch's version of "
                              "this exercise")
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
    tree = _parse(source)
    findings = Findings()
    if tree is None:
        return findings  # a syntax error: the check reports it
    refs = tuple(obj for path in REFERENCES.get(check, ()) for obj in [resolve_path(path)] if obj is not None)
    modules = {name for name, value in env.items() if isinstance(value, ModuleType)}
    own = dict(env)
    _bind(tree, own)
    resolver = _Resolver(own, refs, METHODS.get(check, ()), findings, modules)
    for node in tree.body:  # top-level rebinding of a notebook module, e.g. `checks = Fake()` or `import x as checks`
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound in modules and own.get(bound) is not env[bound]:
                    findings.add("patches-runtime", node.lineno, f"rebinds `{bound}`, a module the notebook imported")
    resolver.visit(tree)
    return findings
