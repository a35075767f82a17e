"""Validation and compilation of the safe template and expression language.

This is the engine behind `camera_core.template`: it parses a source with `ast`,
checks every node against a whitelist and turns the tree into closures that
evaluate it. Nothing is ever passed to `eval`, `exec` or `compile`. Anything
that is not allowed raises `.TemplateError` while compiling; oversized values
and refused operations raise it while evaluating.

The sandbox has two layers. While compiling, private and interpreter-internal
attribute names (``_x``, ``f_globals``, ``cr_frame``, ...) are refused. While
evaluating, every value a node produces is checked by `_Compiler.guard`, which
refuses modules, frames, code objects, tracebacks, coroutines, generators,
tasks and futures, threads and locks, files, class ``__dict__`` proxies and
functions or methods that are not being called; ``get_*`` methods may only be
called on the context objects themselves, never on objects reached from them.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import functools
import gc
import inspect
import io
import operator
import os
import re
import socket
import subprocess
import threading
import types
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from camera_core.exceptions import CardError, TemplateError

MAX_SOURCE_LENGTH = 4096
MAX_STRING_LENGTH = 64 * 1024
MAX_INT_BITS = 4096
MAX_FORMAT_NUMBER = 1024
MAX_DEPTH = 64

_SAFE_DUNDERS = frozenset({"__name__", "__version__"})
#: Attribute prefixes of interpreter internals (frames, coroutines, generators,
#: async generators, tracebacks, code objects), refused like private names.
_INTERNAL_PREFIXES = ("f_", "cr_", "gi_", "ag_", "tb_", "co_")
_SAFE_METHODS = frozenset(
    {"isoformat", "strftime", "upper", "lower", "strip", "to_value", "to_string"}
)
_Op = Callable[..., Any]
_BINOPS: Mapping[type, _Op] = MappingProxyType(
    {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
    | {ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}
    | {ast.Mod: operator.mod}
)
_UNARYOPS: Mapping[type, _Op] = MappingProxyType(
    {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
)
_CMPOPS: Mapping[type, _Op] = MappingProxyType(
    {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt}
    | {ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
    | {ast.Is: operator.is_, ast.IsNot: operator.is_not}
    | {ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
)
_CONVERSIONS: Mapping[int, _Op] = MappingProxyType(
    {ord("r"): repr, ord("s"): str, ord("a"): ascii}
)
_CONSTANT_TYPES = (str, int, float, bool, type(None))
_SEQUENCES = (str, bytes, list, tuple)
_HINT = (
    "Templates may only use context names, public attributes, constants, "
    "arithmetic (+ - * / // %), comparisons, 'and'/'or'/'not', 'x if c else y', "
    "indexing, and calls to {functions} or to methods named get_* or "
    + ", ".join(sorted(_SAFE_METHODS))
    + ". Compute anything else in Python and pass it in the context."
)
_NOT_ALLOWED: Mapping[type, str] = MappingProxyType(
    {ast.Lambda: "lambda expressions", ast.NamedExpr: "assignment expressions (:=)"}
    | dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp), "comprehensions")
    | {ast.GeneratorExp: "generator expressions", ast.Starred: "*args unpacking"}
    | {ast.Dict: "dict displays", ast.Set: "set displays"}
    | {ast.List: "list displays (use a tuple)", ast.JoinedStr: "nested f-strings"}
    | dict.fromkeys((ast.Await, ast.Yield, ast.YieldFrom), "await/yield")
)


_Eval = Callable[[Mapping[str, Any]], Any]

#: Values that a template must never hold, with the words used to refuse them.
#: Each of them leads out of the sandbox (module globals, the stack, running
#: coroutines and tasks, threads, files or the environment).
_FORBIDDEN_TYPES: tuple[tuple[tuple[type, ...], str], ...] = (
    ((types.ModuleType,), "a module"),
    ((types.FrameType,), "a stack frame"),
    ((types.CodeType,), "a code object"),
    ((types.TracebackType,), "a traceback"),
    ((types.CoroutineType,), "a coroutine"),
    ((types.GeneratorType,), "a generator"),
    ((types.AsyncGeneratorType,), "an async generator"),
    ((asyncio.Future, concurrent.futures.Future), "a task or future"),
    ((asyncio.AbstractEventLoop, asyncio.Handle), "an event loop or its handle"),
    (
        (
            threading.Thread,
            type(threading.Lock()),
            type(threading.RLock()),
            threading.Condition,
            threading.Semaphore,
            threading.Event,
            threading.Barrier,
            asyncio.Lock,
            asyncio.Event,
            asyncio.Condition,
            asyncio.Semaphore,
            asyncio.Queue,
            concurrent.futures.Executor,
        ),
        "a thread, lock or queue",
    ),
    ((io.IOBase, socket.socket, subprocess.Popen), "a file, socket or process"),
    ((type(os.environ),), "the process environment"),
    (
        (
            staticmethod,
            classmethod,
            property,
            types.CellType,
            types.GetSetDescriptorType,
            types.MemberDescriptorType,
            types.WrapperDescriptorType,
            types.MethodDescriptorType,
            types.ClassMethodDescriptorType,
        ),
        "a descriptor",
    ),
)
#: Keys that every class ``__dict__`` has; a mapping proxy holding one of them
#: is taken to be a class namespace.
_CLASS_DICT_KEYS = ("__module__", "__doc__", "__dict__", "__weakref__")
#: Packages whose values may use the formatting methods in `_SAFE_METHODS`
#: even when they are not context objects themselves (``text.upper()``).
_VALUE_PACKAGES = frozenset(
    {"builtins", "datetime", "decimal", "fractions", "numpy", "astropy"}
)


def _forbidden(value: Any) -> str | None:
    """Describes why ``value`` may not be held by a template, or returns None.

    Functions and methods are not covered here; see `_is_function`.
    """
    for kinds, what in _FORBIDDEN_TYPES:
        if isinstance(value, kinds):
            return what
    if asyncio.iscoroutine(value) or asyncio.isfuture(value):
        return "a coroutine, task or future"
    if isinstance(value, MappingProxyType) and any(
        key in value for key in _CLASS_DICT_KEYS
    ):
        return "the namespace of a class"
    return None


def _is_function(value: Any) -> bool:
    """Whether ``value`` is a function, method or partial (but not a class)."""
    return inspect.isroutine(value) or isinstance(
        value, (functools.partial, types.MethodWrapperType)
    )


def _task_owns(coro: Any) -> bool:
    """Whether a task or future refers to ``coro`` (it is scheduled to run)."""
    return any(asyncio.isfuture(ref) for ref in gc.get_referrers(coro))


def _close_if_fresh(result: Any) -> bool:
    """Closes a coroutine that was just created by a call and is not used.

    Only a native coroutine that has not started (``CORO_CREATED``) and that no
    task or future refers to is closed, to avoid the "never awaited" warning.
    Any other awaitable (a running coroutine, a task, a future) may belong to
    someone else and is left alone. Returns whether ``result`` was closed.
    """
    if not isinstance(result, types.CoroutineType):
        return False
    if inspect.getcoroutinestate(result) != inspect.CORO_CREATED:
        return False
    if _task_owns(result):
        return False
    result.close()
    return True


def _const(value: Any) -> _Eval:
    return lambda ctx: value


def _check_value(value: Any, source: str) -> Any:
    """Refuses oversized strings and integers produced during evaluation."""
    if isinstance(value, (str, bytes)) and len(value) > MAX_STRING_LENGTH:
        raise TemplateError(f"{source!r} produced a string over {MAX_STRING_LENGTH}.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TemplateError(f"{source!r} produced an integer that is too large.")
    return value


def _check_spec(spec: str, source: str) -> str:
    """Refuses format specs with huge widths or precisions."""
    numbers = [int(num) for num in re.findall(r"\d+", spec)]
    if len(spec) > 64 or any(num > MAX_FORMAT_NUMBER for num in numbers):
        raise TemplateError(f"format spec {spec!r} in {source!r} is too large.")
    return spec


def _binop(op: ast.operator, left: Any, right: Any, source: str) -> Any:
    """Applies a binary operator, refusing sequence repetition and %-formatting."""
    sequence = isinstance(left, _SEQUENCES) or isinstance(right, _SEQUENCES)
    if isinstance(op, ast.Mult) and sequence:
        raise TemplateError(f"sequence repetition with '*' in {source!r}.")
    if isinstance(op, ast.Mod) and isinstance(left, (str, bytes)):
        raise TemplateError(
            f"'%' string formatting in {source!r}; use a format spec like {{x:.2f}}."
        )
    return _check_value(_BINOPS[type(op)](left, right), source)


class _Compiler:
    """Validates a syntax tree and turns it into closures that evaluate it.

    Each allowed node becomes a function of the context mapping; anything else
    raises `.TemplateError` while compiling. No Python code object is created.
    """

    def __init__(self, source: str, functions: Mapping[str, Callable[..., Any]]):
        self.source = source
        self.functions = functions
        self.names: set[str] = set()

    def fail(self, what: str) -> TemplateError:
        functions = ", ".join(sorted(self.functions)) or "no functions"
        hint = _HINT.format(functions=functions)
        return TemplateError(
            f"{self.source!r} uses {what}, which is not allowed. {hint}"
        )

    def check_attr(self, attr: str) -> str:
        if attr.startswith("_") and attr not in _SAFE_DUNDERS:
            raise self.fail(
                f"the private attribute {attr!r} (only public attributes, __name__ "
                "and __version__ can be read; expose the value as a public attribute)"
            )
        if attr.startswith(_INTERNAL_PREFIXES):
            raise self.fail(
                f"the interpreter-internal attribute {attr!r} (attributes starting "
                f"with {', '.join(_INTERNAL_PREFIXES)} belong to frames, coroutines, "
                "generators, tracebacks and code objects)"
            )
        return attr

    def refuse(self, what: str, value: Any, hint: str = "") -> TemplateError:
        return TemplateError(
            f"{self.source!r} reaches {what} ({type(value).__name__}), which "
            "templates may not use: they may only read plain values (numbers, "
            f"strings, times, quantities) from the context objects.{hint} Compute "
            "the value in Python and pass it in the context or as an attribute."
        )

    def guard(self, value: Any, opaque: bool = False) -> Any:
        """Refuses a value produced while evaluating that leads out of the sandbox.

        With ``opaque``, the value is only compared by identity or asked for its
        ``__name__``/``__version__``, so functions and methods are allowed.
        """
        what = _forbidden(value)
        if what is not None:
            raise self.refuse(what, value)
        if not opaque and _is_function(value):
            raise self.refuse(
                "a function or method",
                value,
                " A callable can only be called in place, as a registered "
                "function or a get_* method of a context object; it cannot be "
                "stored, passed or walked.",
            )
        return value

    def build(self, node: ast.AST, depth: int = 0, opaque: bool = False) -> _Eval:
        """Compiles ``node``; ``opaque`` allows a function as its value (`guard`)."""
        if depth > MAX_DEPTH:
            raise self.fail("an expression nested this deeply")
        sub = depth + 1
        source = self.source
        match node:
            case ast.Constant(value=value) if isinstance(value, _CONSTANT_TYPES):
                return _const(value)
            case ast.Name(id=name):
                self.names.add(name)
                return lambda ctx: self.guard(self.load(ctx, name), opaque)
            case ast.Attribute(value=obj_node, attr=attr):
                attr = self.check_attr(attr)
                obj = self.build(obj_node, sub, opaque=attr in _SAFE_DUNDERS)
                return lambda ctx: self.guard(getattr(obj(ctx), attr), opaque)
            case ast.Subscript(value=obj_node, slice=index_node):
                obj, index = self.build(obj_node, sub), self.index(index_node, sub)
                return lambda ctx: self.guard(obj(ctx)[index(ctx)], opaque)
            case ast.BinOp(left=left_node, op=op, right=right_node):
                if type(op) not in _BINOPS:
                    name = "**" if isinstance(op, ast.Pow) else type(op).__name__
                    raise self.fail(f"the operator {name}")
                left, right = self.build(left_node, sub), self.build(right_node, sub)
                return lambda ctx: self.guard(_binop(op, left(ctx), right(ctx), source))
            case ast.UnaryOp(op=op, operand=operand_node) if type(op) in _UNARYOPS:
                func, operand = _UNARYOPS[type(op)], self.build(operand_node, sub)
                return lambda ctx: self.guard(func(operand(ctx)))
            case ast.BoolOp(op=op, values=value_nodes):
                values = [self.build(v, sub, opaque) for v in value_nodes]
                return lambda ctx: _boolop(isinstance(op, ast.And), values, ctx)
            case ast.Compare(left=left_node, ops=ops, comparators=comparators):
                if any(type(op) not in _CMPOPS for op in ops):
                    raise self.fail("this comparison operator")
                # 'f is None' only compares identities, so f may be a function.
                identity = all(isinstance(op, (ast.Is, ast.IsNot)) for op in ops)
                items = [
                    self.build(n, sub, identity) for n in (left_node, *comparators)
                ]
                return lambda ctx: _compare(ops, items, ctx)
            case ast.IfExp(test=test_node, body=body_node, orelse=else_node):
                test = self.build(test_node, sub)
                body = self.build(body_node, sub, opaque)
                orelse = self.build(else_node, sub, opaque)
                return lambda ctx: body(ctx) if test(ctx) else orelse(ctx)
            case ast.Tuple(elts=elts):
                items = [self.build(e, sub) for e in elts]
                return lambda ctx: tuple(item(ctx) for item in items)
            case ast.Call():
                return self.call(node, sub, opaque)
        if type(node) in _NOT_ALLOWED:
            raise self.fail(_NOT_ALLOWED[type(node)])
        raise self.fail(f"{ast.unparse(node)!r} ({type(node).__name__})")

    def load(self, ctx: Mapping[str, Any], name: str) -> Any:
        if name not in ctx:
            available = ", ".join(sorted(map(str, ctx))) or "none"
            raise TemplateError(
                f"name {name!r} used in {self.source!r} is not defined. "
                f"Available names: {available}."
            )
        return ctx[name]

    def index(self, node: ast.AST, depth: int) -> _Eval:
        if isinstance(node, ast.Slice):
            parts = [
                _const(None) if p is None else self.index(p, depth)
                for p in (node.lower, node.upper, node.step)
            ]
            return lambda ctx: slice(*(part(ctx) for part in parts))
        if isinstance(node, ast.Tuple):
            items = [self.index(elt, depth) for elt in node.elts]
            return lambda ctx: tuple(item(ctx) for item in items)
        inner = node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = node.operand
        if not isinstance(inner, (ast.Constant, ast.Name)):
            raise self.fail("an index that is not a constant, a name or a slice")
        return self.build(node, depth)

    def call(self, node: ast.Call, depth: int, opaque: bool = False) -> _Eval:
        func_node = node.func
        if isinstance(func_node, ast.Name):
            if func_node.id not in self.functions:
                raise self.fail(f"calling {func_node.id!r}")
            func = self.functions[func_node.id]
            label = func_node.id
            get_func = _const(func)
        elif isinstance(func_node, ast.Attribute):
            label = self.check_attr(func_node.attr)
            if not (label.startswith("get_") or label in _SAFE_METHODS):
                raise self.fail(f"calling the method {label!r}")
            obj = self.build(func_node.value, depth)

            def get_func(ctx: Mapping[str, Any]) -> Any:
                owner = obj(ctx)
                self.check_owner(ctx, owner, label)
                return self.check_method(ctx, owner, getattr(owner, label), label)

        else:
            raise self.fail("calling anything but a function name or a method")
        if any(kw.arg is None for kw in node.keywords):
            raise self.fail("**kwargs unpacking")
        args = [self.build(arg, depth) for arg in node.args]
        kwargs = {str(kw.arg): self.build(kw.value, depth) for kw in node.keywords}

        def call(ctx: Mapping[str, Any]) -> Any:
            func = get_func(ctx)
            if inspect.iscoroutinefunction(func):
                raise self.async_error(label)
            values = [arg(ctx) for arg in args]
            named = {key: value(ctx) for key, value in kwargs.items()}
            if any(callable(v) for v in (*values, *named.values())):
                raise TemplateError(
                    f"{self.source!r} passes a callable to {label}(), which is not "
                    "allowed (it would bypass the list of callable methods)."
                )
            result = func(*values, **named)
            if inspect.isawaitable(result) or asyncio.iscoroutine(result):
                closed = _close_if_fresh(result)
                raise self.async_error(label, left_alone=not closed)
            return _check_value(self.guard(result, opaque), self.source)

        return call

    def check_owner(self, ctx: Mapping[str, Any], owner: Any, label: str) -> None:
        """Refuses calling ``owner.label()`` unless ``owner`` may be called on.

        ``get_*`` methods may only be called on the context objects themselves
        (``__camera__.get_temperature()``), never on objects reached from them
        (``__camera__.system.task.get_stack()``). The formatting methods in
        `_SAFE_METHODS` may also be called on values of `_VALUE_PACKAGES`.
        This runs before the method is looked up on ``owner``.
        """
        if not any(owner is root for root in ctx.values()):
            package = str(type(owner).__module__).partition(".")[0]
            if label.startswith("get_") or package not in _VALUE_PACKAGES:
                raise TemplateError(
                    f"{self.source!r} calls {label}() on a "
                    f"{type(owner).__name__} reached through attributes, which is "
                    "not allowed: get_* methods can only be called on the context "
                    "objects themselves (e.g. __camera__.get_temperature()), and "
                    f"{', '.join(sorted(_SAFE_METHODS))} only on them or on "
                    "strings, numbers, times and quantities. Expose the value as "
                    "an attribute or a get_* method of a context object instead."
                )

    def check_method(
        self, ctx: Mapping[str, Any], owner: Any, func: Any, label: str
    ) -> Any:
        """Refuses ``func`` unless it is a routine bound to ``owner`` or a root.

        A context object could hold a method bound to another object (say,
        ``task.get_stack``) or a builtin of a module; neither may be called.
        """
        bound_to = getattr(func, "__self__", None)
        bound_ok = bound_to is None or any(
            bound_to is obj for obj in (owner, type(owner), *ctx.values())
        )
        if not _is_function(func) or not bound_ok:
            raise TemplateError(
                f"{self.source!r} calls {label}(), which is a "
                f"{type(func).__name__} and not a method of "
                f"{type(owner).__name__}; only methods of the context objects can "
                "be called."
            )
        return func

    def async_error(self, label: str, left_alone: bool = False) -> CardError:
        note = (
            " The awaitable it returned was left untouched: it had already "
            "started, belongs to a task or is not a coroutine, so it may be in use."
            if left_alone
            else ""
        )
        return CardError(
            f"{label}() in {self.source!r} is async and cannot be used in a header "
            "template. Cache the value in an attribute (for example, updated by a "
            f"poller) and reference that attribute instead.{note}"
        )

    def joined(self, node: ast.JoinedStr, depth: int = 0) -> _Eval:
        """Compiles the f-string itself (depth 0) or a field's format spec."""
        parts: list[_Eval] = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                text = str(part.value)
                if depth:
                    _check_spec(text, self.source)
                parts.append(_const(text))
            elif isinstance(part, ast.FormattedValue):
                if depth and part.format_spec is not None:
                    raise self.fail("nesting format specs this deeply")
                parts.append(self.field(part, depth))
            else:  # pragma: no cover
                raise self.fail(type(part).__name__)
        return lambda ctx: _check_value("".join(p(ctx) for p in parts), self.source)

    def field(self, node: ast.FormattedValue, depth: int) -> _Eval:
        value = self.build(node.value, depth + 1)
        convert = _CONVERSIONS.get(node.conversion)
        spec = _const("")
        if isinstance(node.format_spec, ast.JoinedStr):
            spec = self.joined(node.format_spec, depth + 1)

        def render(ctx: Mapping[str, Any]) -> str:
            result = value(ctx)
            if convert is not None:
                result = convert(result)
            return format(result, _check_spec(spec(ctx), self.source))

        return render


def _boolop(is_and: bool, values: list[_Eval], ctx: Mapping[str, Any]) -> Any:
    result: Any = None
    for value in values:
        result = value(ctx)
        if bool(result) != is_and:
            return result
    return result


def _compare(ops: list[ast.cmpop], items: list[_Eval], ctx: Mapping[str, Any]) -> bool:
    left = items[0](ctx)
    for op, item in zip(ops, items[1:], strict=True):
        right = item(ctx)
        if not _CMPOPS[type(op)](left, right):
            return False
        left = right
    return True


def _run(func: _Eval, context: Mapping[str, Any], source: str) -> Any:
    """Runs a compiled template, wrapping unexpected errors as `.CardError`."""
    try:
        return func(context)
    except CardError:
        raise
    except Exception as err:
        raise CardError(
            f"failed evaluating {source!r}: {type(err).__name__}: {err}"
        ) from err


def _parse(source: Any, wrapped: str, kind: str) -> ast.AST:
    if not isinstance(source, str):
        raise TemplateError(f"{kind} source must be a string, got {source!r}.")
    if len(source) > MAX_SOURCE_LENGTH:
        raise TemplateError(f"{kind} is longer than {MAX_SOURCE_LENGTH} characters.")
    try:
        return ast.parse(wrapped, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        msg = getattr(err, "msg", str(err))
        raise TemplateError(
            f"invalid {kind} {source!r}: {msg}. Check the braces and quotes "
            "(use '{{' and '}}' for literal braces)."
        ) from err
