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
Those runtime checks live in `camera_core._template_guard` (`_Guard`, mixed
into `_Compiler`); this module holds the whitelist and the compiler.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import operator
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from camera_core._template_guard import _SAFE_METHODS, _close_if_fresh, _Guard
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


class _Compiler(_Guard):
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
