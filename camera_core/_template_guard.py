"""Runtime guards of the safe template and expression language.

While a compiled template (see `camera_core._template_ast`) is evaluated, every
value a node produces is checked by `_Guard.guard`, which refuses modules,
frames, code objects, tracebacks, coroutines, generators, tasks and futures,
threads and locks, files, class ``__dict__`` proxies and functions or methods
that are not being called. `_Guard.check_owner` and `_Guard.check_method`
restrict which methods may be called, and `_close_if_fresh` closes a coroutine
that a call has just created so that it is refused without a warning.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import inspect
import io
import os
import socket
import subprocess
import threading
import types
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from camera_core.exceptions import CardError, TemplateError

#: Methods that may be called on a value besides ``get_*`` (see `_Guard.check_owner`).
_SAFE_METHODS = frozenset(
    {"isoformat", "strftime", "upper", "lower", "strip", "to_value", "to_string"}
)
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


class _Guard:
    """The checks run on values while a compiled template is evaluated.

    Mixed into `camera_core._template_ast._Compiler`; ``source`` is the
    template or expression being evaluated, quoted in every error.
    """

    source: str

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
