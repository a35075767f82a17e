"""A safe template and expression language for header cards and file names.

Templates use Python f-string syntax (``"{camera.name}-{num:04d}.fits"``) but
their replacement fields may only contain a small, whitelisted subset of Python
expressions. Sources are parsed with `ast` and evaluated by walking the syntax
tree; nothing is ever passed to `eval`, `exec` or `compile`. Everything that is
not allowed is rejected with `.TemplateError` when the `Expression` or
`Template` is built, so configuration mistakes surface at start-up.

Evaluation is sandboxed as well: a template may only read plain values. Any
module, frame, code object, traceback, coroutine, generator, task or future,
thread or lock, file, class namespace, or function or method that is not being
called is refused with `.TemplateError` as soon as it is reached, and ``get_*``
methods may only be called on the context objects themselves (for example
``__camera__.get_temperature()``), not on objects reached from them. An
awaitable returned by a call is refused with `.CardError`; it is closed only if
the call has just created it and it has not started.

The parsing, validation and compilation of the syntax tree live in
`camera_core._template_ast`; this module holds the public classes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

# The limits of the language are re-exported for backward compatibility.
from camera_core._template_ast import (  # noqa: F401
    MAX_DEPTH,
    MAX_FORMAT_NUMBER,
    MAX_INT_BITS,
    MAX_SOURCE_LENGTH,
    MAX_STRING_LENGTH,
    _Compiler,
    _Eval,
    _parse,
    _run,
)
from camera_core.exceptions import TemplateError

__all__ = ["DEFAULT_FUNCTIONS", "Expression", "Template"]

#: Functions that can be called by name from a template or expression.
DEFAULT_FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {f.__name__: f for f in (int, float, str, bool, round, abs, min, max, len)}
)


def _resolve_functions(
    functions: Mapping[str, Callable[..., Any]] | None,
) -> Mapping[str, Callable[..., Any]]:
    if functions is None:
        return DEFAULT_FUNCTIONS
    return MappingProxyType(dict(functions))


class Expression:
    """A single whitelisted Python expression.

    Parameters
    ----------
    source
        The expression, for example ``"__camera__.get_temperature()"`` or
        ``"int(date.mjd)"``.
    functions
        Functions that may be called by name. Defaults to `DEFAULT_FUNCTIONS`.

    Raises
    ------
    TemplateError
        If the expression is invalid or uses something that is not allowed.
    """

    def __init__(
        self, source: str, functions: Mapping[str, Callable[..., Any]] | None = None
    ) -> None:
        self.functions = _resolve_functions(functions)
        stripped = source.strip() if isinstance(source, str) else ""
        tree = _parse(source, stripped, "expression")
        self.source: str = source
        compiler = _Compiler(source, self.functions)
        self._func = compiler.build(tree)
        self.names: frozenset[str] = frozenset(compiler.names)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source!r}>"

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """Evaluates the expression.

        Parameters
        ----------
        context
            Mapping of the names that the expression can use.

        Returns
        -------
        value
            The value of the expression.

        Raises
        ------
        TemplateError
            If a name is not in ``context``, an operation is refused, or the
            expression reaches a value that templates may not use (a module, a
            frame, a task, a function, ...) or calls a ``get_*`` method on an
            object that is not in ``context``.
        CardError
            If evaluating fails (e.g., a missing attribute) or calls an async method.
        """
        return _run(self._func, context, self.source)


class Template:
    """A format template with whitelisted expressions in its fields.

    Parameters
    ----------
    source
        The template, using f-string syntax, e.g. ``"{camera.name}-{num:04d}.fits"``
        or ``"/data/{camera.uid}/{int(date.mjd)}"``. Use ``{{`` and ``}}`` for
        literal braces.
    functions
        Functions that may be called by name. Defaults to `DEFAULT_FUNCTIONS`.

    Raises
    ------
    TemplateError
        If the template is invalid or uses something that is not allowed.
    """

    def __init__(
        self, source: str, functions: Mapping[str, Callable[..., Any]] | None = None
    ) -> None:
        self.functions = _resolve_functions(functions)
        tree = _parse(source, "f" + repr(source), "template")
        if not isinstance(tree, ast.JoinedStr):  # pragma: no cover
            raise TemplateError(f"invalid template {source!r}.")
        self.source: str = source
        compiler = _Compiler(source, self.functions)
        self._render = compiler.joined(tree)
        fields = [v for v in tree.values if isinstance(v, ast.FormattedValue)]
        self.has_fields: bool = len(fields) > 0
        self._single: _Eval | None = None
        if len(tree.values) == 1 and fields:
            field = fields[0]
            if field.conversion == -1 and field.format_spec is None:
                self._single = compiler.build(field.value, 1)
        self.names: frozenset[str] = frozenset(compiler.names)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source!r}>"

    def render(self, context: Mapping[str, Any]) -> str:
        """Renders the template as a string.

        Parameters
        ----------
        context
            Mapping of the names that the template can use.

        Returns
        -------
        str
            The rendered template.

        Raises
        ------
        TemplateError
            If a name is not in ``context``, an operation is refused, or a
            field reaches a value that templates may not use (see `Expression`).
        CardError
            If evaluating a field fails or calls an async method.
        """
        return _run(self._render, context, self.source)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """Evaluates the template, keeping the type of a lone field.

        If the template is exactly one replacement field without literal text,
        format spec or conversion (e.g. ``"{__exposure__.exptime}"``), returns
        the raw value of the field; otherwise returns `render`.

        Parameters
        ----------
        context
            Mapping of the names that the template can use.

        Returns
        -------
        value
            The raw value of the single field, or the rendered string.
        """
        if self._single is not None:
            return _run(self._single, context, self.source)
        return self.render(context)
