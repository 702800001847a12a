"""Where do `ser train`'s options travel? A static walk, with Python's `ast`, from
`train_command(**options)` in ser/commands/train.py through every function that receives
the options or a value made from them, every branch of each (if/else, try/except, the
error branches) included: not a runtime trace of one run (benchmarks/trace_path.py and
files_entered.py are those). Prints the stops per file under ser/, most first, and with
`--path` every stop and the calls that made it.

The counting rule:

- *Tainted* names. The start function's parameters are tainted. In a function being
  walked, an expression is tainted when a name in it is (an attribute `a.b`, a subscript
  `a[k]` or a call `f(a)` uses the name `a`). A name is tainted, for the whole function
  (flow-insensitive: any binding anywhere counts, whatever the order), when it is bound
  from a tainted expression: `=`, `+=`, annotated `=`, `:=`, the target of a `for` or of a
  comprehension over a tainted iterable, `with tainted as x`. A store into `x.attr` or
  `x[k]` of a tainted value, and a method call `x.m(tainted)` on a local name `x`, taint
  `x` (the object now holds a value made from the options). A nested function or lambda
  is part of the function it is written in (its body is walked with it).
- A *followed call*: a call in the function whose arguments include a tainted expression
  (positional, `*args`, keyword, `**kwargs`, or the object a method is called on, which
  is its first argument) and whose callee resolves to a function defined in the package:
  a module-level function (`f`, `from ser.x import f`, `import ser.x as y; y.f`, through
  re-exports in `__init__.py`, imports inside the function included); a class's method
  called on the class (`Cls.m`) or on an object whose class is known (below); `super().m`;
  a class called, which enters its `__init__`, else its `__post_init__` (a dataclass's
  generated `__init__` calls it), found in the class or its package bases (depth-first,
  left to right; `cls(...)` in a classmethod is its class called); and a `@property` read
  on a tainted object of a known class. A method is the one the known class, or the
  first of its bases that has it, defines: not an override in a subclass the object may
  be at run time. The callee's parameters that receive a tainted expression are tainted
  (`self` when the object is tainted; `*args` and `**kwargs` taint every parameter they
  can fill).
- An object's class is *known* from: `self` and `cls` in a method; a parameter's
  annotation; a local name bound (its first binding in source order) to a class's call,
  an annotated assignment, or a call whose resolved callee has a return annotation; an
  attribute `obj.attr` whose class annotates `attr` in its body or in a method as
  `self.attr: T`, or has a `@property` `attr` with a return annotation. An annotation
  `T | None`, `Optional[T]` or the string `"T"` is `T`; any other generic (`list[T]`,
  `Sequence[T]`) is not a class, so an element's class from a loop is unknown.
- *Not resolved, so skipped*: a call through a value (a local name, a registry lookup
  `FAMILIES[name].build(...)`, a call's result called, `getattr`), a method on an object
  whose class is not known, a function passed as a value (`partial(f, x)`, a callback,
  `map(f, xs)`), operators and protocols (`+`, `len`, `iter`, `with`'s `__enter__`),
  decorators' wrappers, a dataclass's generated `__init__` when it has no `__post_init__`,
  module-level code, and everything outside the package (the standard library, torch,
  click). A call with no tainted argument is not followed, even into the package.
- Each function is walked once, at its first entry, with the parameters tainted then; a
  later followed call into it still counts as an entry (a call into its file) but is
  not walked again (so recursion ends).
- The *path* is the start function's file, then the file of every followed call in
  depth-first order: a callee walked whole before its caller's next call; a function's
  calls in source order, statement by statement (an `if`'s test, body, then `else`; a
  `try`'s body, handlers, `else`, `finally`), a call after the calls in its object and
  arguments. Consecutive entries into one file collapse into one *stop*. A file's figure
  is its stops; `returns` is the stops less the distinct files (entries to a file
  already left); `calls` the followed calls.

    python benchmarks/walk_options.py            # the table
    python benchmarks/walk_options.py --path     # and every stop, with the calls that made it
    python benchmarks/walk_options.py --json     # the figure as one JSON object
    python benchmarks/walk_options.py --unresolved   # the callees skipped as not resolved
    python benchmarks/walk_options.py --start ser/commands/sweep.py:sweep_command
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = "ser/commands/train.py:train_command"
Def = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Function:
    module: str  # dotted: ser.train.plan
    qualname: str  # f, or Cls.m for a method
    file: str  # relative to the package folder: train/plan.py
    node: Def = field(compare=False, hash=False)
    owner: Class | None = field(default=None, compare=False, hash=False)

    def decorated(self, *names: str) -> bool:
        return any(_tail(d) in names for d in self.node.decorator_list)


@dataclass(eq=False)
class Class:
    module: str
    name: str
    bases: list[ast.expr]
    methods: dict[str, Function] = field(default_factory=dict)
    fields: dict[str, ast.expr] = field(default_factory=dict)  # attribute -> annotation


@dataclass(frozen=True)
class ModuleRef:
    name: str


Ref = Function | Class | ModuleRef
Import = tuple[str, str, str]  # ("module", dotted, "") or ("from", dotted, name)


@dataclass
class Module:
    name: str
    file: str
    is_package: bool
    functions: dict[str, Function] = field(default_factory=dict)
    classes: dict[str, Class] = field(default_factory=dict)
    imports: dict[str, Import] = field(default_factory=dict)


def _tail(node: ast.expr) -> str:
    """`property` for `property`, `functools.cached_property`'s `cached_property`."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _imports(module: str, is_package: bool, nodes: Iterator[ast.AST]) -> dict[str, Import]:
    """The names `import` statements among `nodes` bind, relative imports made absolute."""
    out: dict[str, Import] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = ("module", alias.name, "")
                else:
                    top = alias.name.split(".")[0]
                    out[top] = ("module", top, "")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*parts, *([base] if base else [])])
            for alias in node.names:
                out[alias.asname or alias.name] = ("from", base, alias.name)
    return out


def _module_level(tree: ast.Module) -> Iterator[ast.AST]:
    """The module's statements, into `if` / `try` blocks (TYPE_CHECKING's imports), not
    into functions or classes."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop(0)
        yield node
        if isinstance(node, ast.If | ast.Try):
            todo.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)


class Package:
    """Every module of the package folder `folder`, parsed: its functions, classes and
    imports, and the lookups the walk resolves names with."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name
        self.modules: dict[str, Module] = {}
        self._scopes: dict[Function, dict[str, Import]] = {}
        for path in sorted(folder.rglob("*.py")):
            self._add(path)

    def _add(self, path: Path) -> None:
        relative = path.relative_to(self.folder)
        parts = [self.folder.name, *relative.with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module = Module(name, str(relative), is_package)
        module.imports = _imports(name, is_package, _module_level(tree))
        for node in tree.body:
            if isinstance(node, Def):
                module.functions[node.name] = Function(name, node.name, module.file, node)
            elif isinstance(node, ast.ClassDef):
                module.classes[node.name] = self._class(module, node)
        self.modules[name] = module

    def _class(self, module: Module, node: ast.ClassDef) -> Class:
        cls = Class(module.name, node.name, node.bases)
        for item in node.body:
            if isinstance(item, Def):
                qualname = f"{node.name}.{item.name}"
                cls.methods[item.name] = Function(module.name, qualname, module.file, item, cls)
                for inner in ast.walk(item):  # self.attr: T in a method
                    if isinstance(inner, ast.AnnAssign) and _self_attr(inner.target):
                        cls.fields.setdefault(_self_attr(inner.target), inner.annotation)
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                cls.fields[item.target.id] = item.annotation
        return cls

    def lookup(
        self, module: str, name: str, seen: frozenset[tuple[str, str]] = frozenset()
    ) -> Ref | None:
        """What `name` is in `module`'s namespace, through imports and re-exports."""
        if (module, name) in seen:
            return None
        found = self.modules.get(module)
        if found is not None:
            if name in found.functions:
                return found.functions[name]
            if name in found.classes:
                return found.classes[name]
            if name in found.imports:
                return self.imported(found.imports[name], seen | {(module, name)})
        return self._submodule(f"{module}.{name}")

    def imported(self, imp: Import, seen: frozenset[tuple[str, str]] = frozenset()) -> Ref | None:
        kind, dotted, name = imp
        if kind == "module":
            return self._submodule(dotted)
        return self.lookup(dotted, name, seen)

    def _submodule(self, dotted: str) -> ModuleRef | None:
        prefix = dotted + "."
        if dotted in self.modules or any(m.startswith(prefix) for m in self.modules):
            return ModuleRef(dotted)
        return None

    def scope(self, function: Function) -> dict[str, Import]:
        """The names the imports inside `function` bind."""
        if function not in self._scopes:
            module = self.modules[function.module]
            self._scopes[function] = _imports(
                module.name, module.is_package, ast.walk(function.node)
            )
        return self._scopes[function]

    def mro(self, cls: Class) -> Iterator[Class]:
        """`cls`, then its bases in the package, depth-first, left to right, each once."""
        seen: set[int] = set()
        todo = [cls]
        while todo:
            current = todo.pop(0)
            if id(current) in seen:
                continue
            seen.add(id(current))
            yield current
            bases = [self.static(current.module, {}, b) for b in current.bases]
            todo[:0] = [b for b in bases if isinstance(b, Class)]

    def method(self, cls: Class, name: str, skip_first: bool = False) -> Function | None:
        classes = list(self.mro(cls))[1 if skip_first else 0 :]
        return next((c.methods[name] for c in classes if name in c.methods), None)

    def static(self, module: str, scope: dict[str, Import], node: ast.expr) -> Ref | None:
        """What a name or a dotted name refers to in `module` (`scope`: the function's own
        imports, first), or None."""
        if isinstance(node, ast.Name):
            if node.id in scope:
                return self.imported(scope[node.id])
            return self.lookup(module, node.id)
        if isinstance(node, ast.Attribute):
            base = self.static(module, scope, node.value)
            if isinstance(base, ModuleRef):
                return self.lookup(base.name, node.attr)
            if isinstance(base, Class):
                return self.method(base, node.attr)
        return None

    def annotated(
        self, module: str, scope: dict[str, Import], node: ast.expr | None
    ) -> Class | None:
        """The class an annotation names: `T`, `T | None`, `Optional[T]`, `"T"`."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = [self.annotated(module, scope, s) for s in (node.left, node.right)]
            known = [s for s in sides if s is not None]
            return known[0] if len(known) == 1 else None
        if isinstance(node, ast.Subscript) and _tail(node.value) == "Optional":
            return self.annotated(module, scope, node.slice)
        found = (
            self.static(module, scope, node) if isinstance(node, ast.Name | ast.Attribute) else None
        )
        return found if isinstance(found, Class) else None


def _self_attr(node: ast.expr) -> str:
    """`attr` of `self.attr`, else ""."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == "self" else ""
    return ""


def _names(target: ast.expr) -> Iterator[str]:
    """The names a binding target binds (`a`, `a, (b, *c)`)."""
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            yield node.id


def _base(target: ast.expr) -> str | None:
    """`x` of a store into `x.a[k]`."""
    while isinstance(target, ast.Attribute | ast.Subscript):
        target = target.value
    return target.id if isinstance(target, ast.Name) else None


def _postorder(node: ast.AST) -> Iterator[ast.AST]:
    """`node`'s descendants, each after its children: a call after its arguments, as
    they are evaluated."""
    for child in ast.iter_child_nodes(node):
        yield from _postorder(child)
    yield node


@dataclass(frozen=True)
class Entry:
    file: str
    call: str  # caller -> callee


@dataclass
class Walk:
    """The followed calls from a start function, in depth-first order."""

    package: Package
    entries: list[Entry] = field(default_factory=list)
    walked: set[Function] = field(default_factory=set)
    # calls with a tainted argument not followed: ("outside" or "unresolved", the callee)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def enter(self, function: Function, tainted: set[str], caller: str) -> None:
        self.entries.append(Entry(function.file, f"{caller} -> {function.qualname}"))
        if function in self.walked:
            return
        self.walked.add(function)
        _Body(self, function, tainted).walk()


class _Body:
    """One function walked: its tainted names and known classes, then its calls."""

    def __init__(self, walk: Walk, function: Function, tainted: set[str]) -> None:
        self.walk_ = walk
        self.package = walk.package
        self.function = function
        self.scope = self.package.scope(function)
        self.locals = self._locals()
        self.tainted = set(tainted)
        self.types: dict[str, Class] = {}

    def _locals(self) -> set[str]:
        node = self.function.node
        args = node.args
        out = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        out |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                out.add(inner.id)
            elif isinstance(inner, ast.arg):
                out.add(inner.arg)
            elif isinstance(inner, ast.ExceptHandler | Def | ast.ClassDef) and inner is not node:
                out |= {inner.name} if inner.name else set()
        return out

    def walk(self) -> None:
        self._know_types()
        self._spread()
        for node in self.function.node.body:
            for inner in _postorder(node):
                if isinstance(inner, ast.Call):
                    self._call(inner)
                elif isinstance(inner, ast.Attribute) and isinstance(inner.ctx, ast.Load):
                    self._property(inner)

    # what is tainted

    def is_tainted(self, node: ast.expr | None) -> bool:
        if node is None:
            return False
        return any(isinstance(n, ast.Name) and n.id in self.tainted for n in ast.walk(node))

    def _spread(self) -> None:
        """Taint every name bound from a tainted expression, until nothing changes."""
        nodes = list(ast.walk(self.function.node))
        while True:
            before = len(self.tainted)
            for node in nodes:
                self._bind(node)
            if len(self.tainted) == before:
                return

    def _bind(self, node: ast.AST) -> None:
        pairs: list[tuple[list[ast.expr], ast.expr | None]] = []
        if isinstance(node, ast.Assign):
            pairs.append((node.targets, node.value))
        elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.NamedExpr):
            pairs.append(([node.target], node.value))
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            pairs.append(([node.target], node.iter))
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            pairs.append(([node.optional_vars], node.context_expr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            arguments = [*node.args, *(k.value for k in node.keywords)]
            if isinstance(receiver, ast.Name) and receiver.id in self.locals:
                pairs.append(([receiver], next((a for a in arguments if self.is_tainted(a)), None)))
        for targets, value in pairs:
            if not self.is_tainted(value):
                continue
            for target in targets:
                if isinstance(target, ast.Attribute | ast.Subscript):
                    base = _base(target)
                    self.tainted |= {base} if base else set()
                else:
                    self.tainted |= set(_names(target))

    # what class an object is

    def _know_types(self) -> None:
        function = self.function
        args = function.node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        if function.owner is not None and params and not function.decorated("staticmethod"):
            self.types[params[0].arg] = function.owner
        for a in params:
            found = self.package.annotated(function.module, self.scope, a.annotation)
            if found is not None:
                self.types.setdefault(a.arg, found)
        for node in sorted(self._assignments(), key=lambda n: (n.lineno, n.col_offset)):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            found = None
            if isinstance(node, ast.AnnAssign):
                found = self.package.annotated(function.module, self.scope, node.annotation)
            if found is None and node.value is not None:
                found = self.type_of(node.value)
            if isinstance(target, ast.Name) and found is not None:
                self.types.setdefault(target.id, found)

    def _assignments(self) -> Iterator[ast.Assign | ast.AnnAssign]:
        for node in ast.walk(self.function.node):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                yield node

    def type_of(self, node: ast.expr) -> Class | None:
        """The class of the value `node` gives, where it can be known."""
        if isinstance(node, ast.Name):
            return self.types.get(node.id) if node.id in self.locals else None
        if isinstance(node, ast.Attribute):
            owner = self.type_of(node.value)
            return self._attribute_type(owner, node.attr) if owner else None
        if isinstance(node, ast.Call):
            found = self.resolve(node.func)
            if found is None:
                return None
            callee = found[0]
            if isinstance(callee, Class):
                return callee
            scope = self.package.scope(callee)
            return self.package.annotated(callee.module, scope, callee.node.returns)
        return None

    def _attribute_type(self, owner: Class, attr: str) -> Class | None:
        for cls in self.package.mro(owner):
            if attr in cls.fields:
                return self.package.annotated(cls.module, {}, cls.fields[attr])
            method = cls.methods.get(attr)
            if method is not None and method.decorated("property", "cached_property"):
                return self.package.annotated(cls.module, {}, method.node.returns)
        return None

    # where a call goes

    def resolve(self, func: ast.expr) -> tuple[Function | Class, bool, ast.expr | None] | None:
        """The callee of a call to `func`: (function or class called, whether the first
        parameter is the object it is called on or `cls`, that object), or None."""
        if isinstance(func, ast.Name):
            if func.id in self.locals:
                owner = self.function.owner
                made = owner if func.id == self._cls_param() else None  # cls(...)
                return (made, False, None) if made else None
            found = self.package.static(self.function.module, self.scope, func)
            return (found, False, None) if isinstance(found, Function | Class) else None
        if not isinstance(func, ast.Attribute):
            return None
        value = func.value
        if isinstance(value, ast.Call) and _tail(value.func) == "super" and self.function.owner:
            method = self.package.method(self.function.owner, func.attr, skip_first=True)
            return (method, True, ast.Name("self", ast.Load())) if method else None
        if not (isinstance(value, ast.Name) and value.id in self.locals):
            found = self.package.static(self.function.module, self.scope, func)
            if isinstance(found, Function):
                return found, found.decorated("classmethod"), None
            if isinstance(found, Class):
                return found, False, None
        owner = self.type_of(value)
        method = self.package.method(owner, func.attr) if owner else None
        if method is None or method.decorated("property", "cached_property"):
            return None
        if method.decorated("staticmethod"):
            return method, False, None
        return method, True, None if method.decorated("classmethod") else value

    def _cls_param(self) -> str | None:
        """The name of a classmethod's first parameter."""
        if self.function.owner is None or not self.function.decorated("classmethod"):
            return None
        return next(iter(self._self_param(self.function)), None)

    def _call(self, call: ast.Call) -> None:
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        arguments = [*call.args, *(k.value for k in call.keywords)]
        if not any(self.is_tainted(a) for a in [*arguments, receiver]):
            return
        found = self.resolve(call.func)
        if found is None:
            self.walk_.skipped.append((self._outside(call.func), ast.unparse(call.func)))
            return
        callee, first_bound, obj = found
        if isinstance(callee, Class):
            init = self.package.method(callee, "__init__")
            post = None if init else self.package.method(callee, "__post_init__")
            if post is not None:
                self.walk_.enter(post, self._self_param(post), self.function.qualname)
            if init is None:
                return
            callee, first_bound, obj = init, True, None
        tainted = self._bound(callee.node.args, call, first_bound, self.is_tainted(obj))
        self.walk_.enter(callee, tainted, self.function.qualname)

    def _outside(self, func: ast.expr) -> str:
        """ "outside" for a callee named from outside the package (an import from another
        package, a builtin), else "unresolved" (a value's method, a call through a value)."""
        while isinstance(func, ast.Attribute):
            func = func.value
        if isinstance(func, ast.Constant | ast.JoinedStr):  # "".join, f"".format
            return "outside"
        if not isinstance(func, ast.Name) or func.id in self.locals:
            return "unresolved"
        imp = self.scope.get(func.id) or self.package.modules[self.function.module].imports.get(
            func.id
        )
        if imp is None:
            return "outside" if hasattr(builtins, func.id) else "unresolved"
        dotted = imp[1]
        inside = dotted == self.package.name or dotted.startswith(self.package.name + ".")
        return "unresolved" if inside else "outside"

    def _property(self, node: ast.Attribute) -> None:
        if not self.is_tainted(node.value):
            return
        owner = self.type_of(node.value)
        method = self.package.method(owner, node.attr) if owner else None
        if method is not None and method.decorated("property", "cached_property"):
            self.walk_.enter(method, self._self_param(method), self.function.qualname)

    @staticmethod
    def _self_param(method: Function) -> set[str]:
        args = method.node.args
        return {a.arg for a in [*args.posonlyargs, *args.args][:1]}

    def _bound(self, args: ast.arguments, call: ast.Call, first_bound: bool, obj: bool) -> set[str]:
        """The callee's parameters that receive a tainted argument of `call`."""
        positional = [a.arg for a in [*args.posonlyargs, *args.args]]
        out: set[str] = set()
        if first_bound and positional:
            first = positional.pop(0)
            out |= {first} if obj else set()
        rest = {a.arg for a in (args.vararg,) if a is not None}
        starred = False
        for i, arg in enumerate(call.args):
            starred = starred or isinstance(arg, ast.Starred)
            if not self.is_tainted(arg):
                continue
            if starred:  # where it lands is not known: wherever it can
                out |= set(positional[i:]) | rest
            else:
                out |= {positional[i]} if i < len(positional) else rest
        keywords = {a.arg for a in args.kwonlyargs} | set(positional)
        extra = {a.arg for a in (args.kwarg,) if a is not None}
        for keyword in call.keywords:
            if not self.is_tainted(keyword.value):
                continue
            if keyword.arg is None:  # **tainted
                out |= set(positional[len(call.args) :]) | keywords - set(positional) | extra
            else:
                out |= {keyword.arg} if keyword.arg in keywords else extra
        return out


def walk(folder: Path, start: str) -> Walk:
    """The walk from `start` ("path/of/module.py:function" or ":Class.method", the path
    relative to `folder`'s parent) in the package at `folder`."""
    path, _, qualname = start.partition(":")
    package = Package(folder)
    file = str(Path(path).relative_to(folder.name))
    module = next((m for m in package.modules.values() if m.file == file), None)
    if module is None:
        raise SystemExit(f"{path}: no such module in {folder}")
    head, _, method = qualname.partition(".")
    function = module.classes[head].methods.get(method) if method else module.functions.get(head)
    if function is None:
        raise SystemExit(f"{start}: no such function")
    args = function.node.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    found = Walk(package)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # the walk is as deep as the call graph
    try:
        found.enter(function, {p.arg for p in params if p is not None}, "(start)")
    finally:
        sys.setrecursionlimit(limit)
    return found


def stops(entries: list[Entry]) -> list[tuple[str, list[str]]]:
    """Consecutive entries into one file collapsed: (file, its calls) per stop."""
    out: list[tuple[str, list[str]]] = []
    for entry in entries:
        if out and out[-1][0] == entry.file:
            out[-1][1].append(entry.call)
        else:
            out.append((entry.file, [entry.call]))
    return out


def figure(found: Walk) -> dict[str, object]:
    path = stops(found.entries)
    counts = Counter(file for file, _ in path)
    return {
        "stops": len(path),
        "files": len(counts),
        "returns": len(path) - len(counts),
        "functions": len(found.walked),
        "calls": len(found.entries) - 1,
        "outside": sum(kind == "outside" for kind, _ in found.skipped),
        "unresolved": sum(kind == "unresolved" for kind, _ in found.skipped),
        "per_file": dict(counts.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", action="store_true", help="print every stop too")
    parser.add_argument("--json", action="store_true", help="print the figure as JSON")
    parser.add_argument(
        "--unresolved", action="store_true", help="print the callees not resolved, most first"
    )
    parser.add_argument("--start", default=START, help=f"module path:function [{START}]")
    parser.add_argument("--package", default=str(ROOT / "ser"), help="the package folder")
    args = parser.parse_args()
    found = walk(Path(args.package), args.start)
    result = figure(found)
    path = stops(found.entries)
    if args.json:
        if args.path:
            result["path"] = [{"file": f, "calls": list(dict.fromkeys(c))} for f, c in path]
        print(json.dumps(result))
        return
    if args.unresolved:
        names = Counter(name for kind, name in found.skipped if kind == "unresolved")
        for name, n in names.most_common():
            print(f"{n:5} {name}")
        print()
    if args.path:
        for file, calls in path:
            print(f"{file:32} {'; '.join(dict.fromkeys(calls))}")
        print()
    print(f"{'file':32} stops")
    for file, n in result["per_file"].items():  # type: ignore[attr-defined]
        print(f"{file:32} {n}")
    print(
        f"{'(all)':32} {result['stops']} stops in {result['files']} files, "
        f"{result['returns']} returns to a file already left; {result['functions']} "
        f"functions walked, {result['calls']} calls followed; not followed: "
        f"{result['outside']} outside the package, {result['unresolved']} not resolved"
    )


if __name__ == "__main__":
    main()
