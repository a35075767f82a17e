"""Escapes from the template sandbox found by the security review, and fixes.

The fake camera mirrors the real object graph that was used to escape:
``__camera__.camera_system.notifier.listeners[0].listener_task`` is a real,
running asyncio task, from which ``get_stack()`` reached frames (and so module
globals, files and the environment) and ``get_coro()`` handed out the running
coroutine, which the interpreter then closed, killing the listener.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys
import threading
import warnings
from collections.abc import AsyncIterator
from types import MappingProxyType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from astropy.time import Time

from camera_core.exceptions import CardError, TemplateError
from camera_core.template import Expression, Template

MODULE_ESCAPE = (
    "__camera__.camera_system.notifier.listeners[0].listener_task.get_stack()[0]"
    ".f_globals['inspect'].sys.modules"
)
TASK = "__camera__.camera_system.notifier.listeners[0].listener_task"


class Listener:
    def __init__(self, task: asyncio.Task[None]) -> None:
        self.listener_task = task
        self.name = "events"


class CameraSystem:
    def __init__(self, task: asyncio.Task[None]) -> None:
        self.notifier = SimpleNamespace(listeners=[Listener(task)])
        self.helpers = inspect  # a module reachable through an attribute
        self.frame = sys._getframe()
        self.code = CameraSystem.__init__.__code__
        self.lock = threading.Lock()
        self.thread = threading.current_thread()
        self.namespace = vars(FakeCamera)
        self.settings = MappingProxyType({"gain": 2})
        self.callback = FakeCamera.get_temperature
        self.generator = (n for n in range(3))
        self.environment = inspect.os.environ

    def get_name(self) -> str:  # pragma: no cover - must not be called
        raise AssertionError("get_name was called on a non-context object")


class FakeCamera:
    __version__ = "1.2.3"

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.name = "cam1"
        self.camera_system = CameraSystem(task)
        self.task = task

    def get_temperature(self) -> float:
        return -25.5

    def get_task(self) -> asyncio.Task[None]:
        return self.task

    def get_listener_coro(self) -> Any:
        return self.task.get_coro()

    def get_module(self) -> Any:
        return inspect

    def get_frame(self) -> Any:
        return sys._getframe()

    def get_method(self) -> Any:
        return self.get_temperature


class Listening:
    """A running listener task that records what it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.seen: list[str] = []
        self.task = asyncio.create_task(self.listen())

    async def listen(self) -> None:
        while True:
            self.seen.append(await self.queue.get())

    async def assert_alive(self) -> None:
        """The task is still running and still handles events."""
        assert not self.task.done()
        coro = self.task.get_coro()
        assert inspect.getcoroutinestate(coro) == inspect.CORO_SUSPENDED
        self.queue.put_nowait("event")
        for _ in range(10):
            await asyncio.sleep(0)
            if self.seen:
                break
        assert self.seen[-1] == "event"
        assert not self.task.done()


@pytest.fixture
async def listening() -> AsyncIterator[Listening]:
    listening = Listening()
    await asyncio.sleep(0)  # the listener starts and waits on its queue
    yield listening
    listening.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listening.task


@pytest.fixture
def context(listening: Listening) -> dict[str, Any]:
    camera = FakeCamera(listening.task)
    exposure = SimpleNamespace(
        camera=camera,
        obstime=Time(60000.25, format="mjd"),
        stack_function=np.median,
        exptime=1.5,
    )
    return {
        "__camera__": camera,
        "__exposure__": exposure,
        "date": Time(60000.25, format="mjd"),
        "text": "Hello",
    }


# --- escape 1: frames and module globals --------------------------------------


async def test_module_globals_escape_refused(
    context: dict[str, Any], listening: Listening
) -> None:
    with pytest.raises(TemplateError, match="'f_globals'"):
        Expression(MODULE_ESCAPE)
    with pytest.raises(TemplateError, match="'f_globals'"):
        Template("{" + MODULE_ESCAPE + "}")
    # Without the frame attribute, the task itself is refused when reached.
    for source in (TASK, TASK + ".get_stack()", TASK + ".get_stack()[0]"):
        with pytest.raises(TemplateError, match=r"a task or future \(Task\)"):
            Expression(source).evaluate(context)
    with pytest.raises(TemplateError, match="task or future"):
        Template("{" + TASK + ".get_stack()}").render(context)
    await listening.assert_alive()


@pytest.mark.parametrize(
    "source",
    [
        "__camera__.camera_system.helpers.sys.modules['pkgutil']"
        ".get_data('camera_core', '../../../../etc/hostname')",
        "__camera__.camera_system.helpers.os.environ",
        "__camera__.camera_system.helpers.os.environ['HOME']",
        "__camera__.camera_system.helpers.__name__",
        "__camera__.camera_system.helpers",
        "__camera__.get_module().os",
        "(__camera__.camera_system.helpers if True else 1).sys",
    ],
)
def test_module_reached_by_attribute_refused(
    context: dict[str, Any], source: str
) -> None:
    with pytest.raises(TemplateError, match=r"reaches a module \(module\)"):
        Expression(source).evaluate(context)
    with pytest.raises(TemplateError, match="module"):
        Template("{" + source + "}").render(context)


@pytest.mark.parametrize(
    ("attribute", "what"),
    [
        ("frame", "a stack frame"),
        ("code", "a code object"),
        ("lock", "a thread, lock or queue"),
        ("thread", "a thread, lock or queue"),
        ("namespace", "the namespace of a class"),
        ("callback", "a function or method"),
        ("generator", "a generator"),
        ("environment", "the process environment"),
    ],
)
def test_dangerous_values_refused(
    context: dict[str, Any], attribute: str, what: str
) -> None:
    source = f"__camera__.camera_system.{attribute}"
    with pytest.raises(TemplateError, match=what):
        Expression(source).evaluate(context)
    with pytest.raises(TemplateError, match=what):
        Template("{" + source + "!r}").render(context)


@pytest.mark.parametrize(
    "source",
    [
        "__camera__.get_frame()",
        "__camera__.get_method()",
        "__camera__.get_temperature",
        "max((__camera__.camera_system.helpers, 1))",
        "(__camera__.get_temperature, 1)",
        "__camera__.camera_system.namespace['get_temperature']",
    ],
)
def test_dangerous_results_refused(context: dict[str, Any], source: str) -> None:
    with pytest.raises(TemplateError, match="reaches"):
        Expression(source).evaluate(context)


@pytest.mark.parametrize(
    "attribute",
    [
        "f_globals",
        "f_back",
        "f_locals",
        "cr_frame",
        "cr_await",
        "gi_frame",
        "gi_code",
        "ag_frame",
        "tb_frame",
        "tb_next",
        "co_consts",
        "_private",
        "__class__",
        "__globals__",
        "__dict__",
    ],
)
def test_internal_attributes_refused_at_build(attribute: str) -> None:
    with pytest.raises(TemplateError, match="not allowed"):
        Expression(f"__camera__.{attribute}")
    with pytest.raises(TemplateError, match="not allowed"):
        Template(f"{{__camera__.x.{attribute}}}")
    with pytest.raises(TemplateError, match="not allowed"):
        Expression(f"__camera__.{attribute}.get_x()")


def test_get_methods_only_on_context_objects(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match=r"get_name\(\) on a CameraSystem"):
        Expression("__camera__.camera_system.get_name()").evaluate(context)
    with pytest.raises(TemplateError, match="reached through attributes"):
        Template("{__exposure__.obstime.get_x()}").render(context)
    # Formatting methods stay available on plain values reached by attributes.
    assert Template("{__exposure__.obstime.tai.strftime('%Y')}").render(context) == (
        "2023"
    )
    listener = "__camera__.camera_system.notifier.listeners[0]"
    assert Template("{" + listener + ".name.upper()}").render(context) == "EVENTS"
    with pytest.raises(TemplateError, match=r"upper\(\) on a Listener"):
        Expression(listener + ".upper()").evaluate(context)


async def test_get_method_bound_elsewhere_refused(
    context: dict[str, Any], listening: Listening
) -> None:
    system = context["__camera__"].camera_system
    task = context["__camera__"].task
    sneaky = SimpleNamespace(
        get_name=system.get_name, get_len=len, get_coro=task.get_coro
    )
    ctx = {**context, "sneaky": sneaky}
    with pytest.raises(TemplateError, match="not a method of"):
        Expression("sneaky.get_coro()").evaluate(ctx)
    with pytest.raises(TemplateError, match="not a method of"):
        Expression("sneaky.get_name()").evaluate(ctx)
    with pytest.raises(TemplateError, match="not a method of"):
        Expression("sneaky.get_len('abc')").evaluate(ctx)
    await listening.assert_alive()


# --- escape 2: closing a running coroutine ------------------------------------


async def test_running_coroutine_not_closed(
    context: dict[str, Any], listening: Listening
) -> None:
    with pytest.raises(TemplateError, match="task or future"):
        Expression(TASK + ".get_coro()").evaluate(context)
    with pytest.raises(TemplateError):
        Template("{" + TASK + ".get_coro()}").render(context)
    await listening.assert_alive()
    # Even a get_* method of a context object that returns the coroutine of a
    # running task, or the task itself, must leave it alone.
    with pytest.raises(CardError, match="left untouched"):
        Expression("__camera__.get_listener_coro()").evaluate(context)
    with pytest.raises(CardError, match="left untouched"):
        Template("{__camera__.get_task()}").render(context)
    await listening.assert_alive()


async def test_unstarted_task_coroutine_not_closed(context: dict[str, Any]) -> None:
    """A coroutine that has not started but belongs to a task is left alone."""
    done: list[bool] = []

    async def work() -> None:
        done.append(True)

    class Camera:
        def get_work(self) -> Any:
            return task.get_coro()

    task = asyncio.create_task(work())
    camera = Camera()
    assert inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_CREATED
    with pytest.raises(CardError, match="left untouched"):
        Expression("cam.get_work()").evaluate({"cam": camera})
    await task
    assert done == [True]


def test_fresh_coroutine_is_still_closed(context: dict[str, Any]) -> None:
    created: list[Any] = []

    async def work() -> int:  # pragma: no cover - never runs
        return 1

    def get_work() -> Any:
        created.append(work())
        return created[-1]

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(CardError, match="async") as exc:
            Expression("obj.get_work()").evaluate(
                {"obj": SimpleNamespace(get_work=get_work)}
            )
        assert "left untouched" not in str(exc.value)
        assert inspect.getcoroutinestate(created[0]) == inspect.CORO_CLOSED
        created.clear()
        gc.collect()


# --- what must keep working ---------------------------------------------------


def test_allowed_templates_still_work(context: dict[str, Any]) -> None:
    assert Template("{__camera__.name}").render(context) == "cam1"
    assert Template("{__camera__.__version__}").render(context) == "1.2.3"
    isot = Template("{__exposure__.obstime.tai.isot}").render(context)
    assert isot == context["__exposure__"].obstime.tai.isot
    assert Template("{__exposure__.stack_function.__name__}").render(context) == (
        "median"
    )
    assert Template("{int(date.mjd)}").render(context) == "60000"
    assert Expression("int(date.mjd)").evaluate(context) == 60000
    assert Expression("__camera__.get_temperature()").evaluate(context) == -25.5
    assert Template("{__camera__.get_temperature():.1f}").render(context) == "-25.5"
    assert Template("{__exposure__.exptime}").evaluate(context) == 1.5
    assert Template("{__exposure__.camera.get_temperature()}").evaluate(context) == (
        -25.5
    )
    assert Expression("__camera__.camera_system.settings['gain']").evaluate(
        context
    ) == (2)


@pytest.mark.parametrize(
    ("stack_function", "expected"),
    [(None, "none"), (np.median, "median"), (np.mean, "mean"), (max, "max")],
)
def test_stack_function_card_template(
    context: dict[str, Any], stack_function: Any, expected: str
) -> None:
    """The default STACKFUN card compares and names a function."""
    context["__exposure__"].stack_function = stack_function
    template = Template(
        "{'none' if __exposure__.stack_function is None "
        "else __exposure__.stack_function.__name__}"
    )
    assert template.render(context) == expected
    if stack_function is not None:
        with pytest.raises(TemplateError, match="function or method"):
            Template("{__exposure__.stack_function}").render(context)
        with pytest.raises(TemplateError, match="function or method"):
            Expression("__exposure__.stack_function == 1").evaluate(context)
