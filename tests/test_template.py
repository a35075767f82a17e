"""Tests for the safe template/expression language in camera_core.template."""

from __future__ import annotations

import ast
import asyncio
import gc
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from astropy.time import Time

from camera_core.exceptions import CardError, TemplateError
from camera_core.template import DEFAULT_FUNCTIONS, Expression, Template

MALICIOUS = [
    "__import__('os').system('id')",
    "().__class__.__bases__",
    "open('/etc/passwd')",
    "__camera__._private",
    "x.__dict__",
    "9**9**9",
    "lambda: 1",
    "[c for c in x]",
    "{'a': 1}",
    "{1, 2}",
    "[1, 2]",
    "(y := 1)",
    "max(*x)",
    "min(**x)",
    "x.format(1)",
    "x.__class__.__subclasses__()",
    "getattr(x, 'a')",
    "eval('1')",
    "x.get_a()()",
    "x[x[0]]",
    "x @ x",
    "x << 2",
    "~x",
    "b'bytes'",
    "f'{x}'",
    "__camera__.__init__.__globals__",
]


class FakeCamera:
    """A small camera-like object with sync and async methods."""

    __version__ = "1.2.3"

    def __init__(self) -> None:
        self.name = "cam1"
        self.uid = "S0001"
        self._private = "secret"

    def get_temperature(self) -> float:
        return -25.5

    def get_offset(self, value: float, scale: float = 1.0) -> float:
        return value * scale + 1

    async def get_status(self) -> dict[str, Any]:
        return {"ok": True}

    def get_coro(self) -> Any:
        return self.get_status()

    def shutdown(self, *args: Any) -> str:  # pragma: no cover - must not be called
        raise AssertionError("shutdown was called")


@pytest.fixture
def context() -> dict[str, Any]:
    camera = FakeCamera()
    return {
        "camera": camera,
        "__camera__": camera,
        "num": 7,
        "date": Time(60000.25, format="mjd"),
        "values": (1, 2, 3, 4),
        "mapping": {"a": 10},
        "text": "Hello",
    }


def test_default_functions_read_only() -> None:
    assert set(DEFAULT_FUNCTIONS) == {
        "int",
        "float",
        "str",
        "bool",
        "round",
        "abs",
        "min",
        "max",
        "len",
    }
    with pytest.raises(TypeError):
        DEFAULT_FUNCTIONS["open"] = open  # type: ignore[index]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{camera.name}-{num:04d}.fits", "cam1-0007.fits"),
        ("/data/{camera.uid}/{int(date.mjd)}", "/data/S0001/60000"),
        ("{num!r:>4}|{text!s}|{text!a}", "   7|Hello|'Hello'"),
        ("{values[-1]}{values[1:3]}{mapping['a']}", "4(2, 3)10"),
        ("{num:>{num}}", "      7"),
        ("{{literal}} {num}", "{literal} 7"),
        ("{text.upper()}-{text.lower()}", "HELLO-hello"),
        ("{'even' if num % 2 == 0 else 'odd'}", "odd"),
        ("{num * 2 + 1 - 4 // 3}", "14"),
        ("{1 < num <= 7 and not False}", "True"),
        ("{round(1 / 3, 3)} {abs(-2)} {max(values)} {len(text)}", "0.333 2 4 5"),
        ("{camera.get_offset(2, scale=3):.1f}", "7.0"),
        ("{date.strftime('%Y')}", "2023"),
        ("no fields", "no fields"),
    ],
)
def test_render(context: dict[str, Any], source: str, expected: str) -> None:
    assert Template(source).render(context) == expected


def test_names_and_has_fields() -> None:
    template = Template("{camera.name}-{num:0{width}d}-{int(date.mjd)}")
    assert template.names == frozenset({"camera", "num", "width", "date"})
    assert template.has_fields
    plain = Template("plain {{text}}")
    assert not plain.has_fields
    assert plain.names == frozenset()
    assert Expression("int(date.mjd) + x").names == frozenset({"date", "x"})


def test_evaluate_keeps_type_of_lone_field(context: dict[str, Any]) -> None:
    exposure = SimpleNamespace(exptime=1.5, stack=3)
    assert (
        Template("{__exposure__.exptime}").evaluate({"__exposure__": exposure}) == 1.5
    )
    value = Template("{__exposure__.stack}").evaluate({"__exposure__": exposure})
    assert value == 3 and isinstance(value, int)
    assert Template("{num:d}").evaluate(context) == "7"
    assert Template("{num!s}").evaluate(context) == "7"
    assert Template(" {num}").evaluate(context) == " 7"


def test_expression_calls_sync_get_method(context: dict[str, Any]) -> None:
    expression = Expression("__camera__.get_temperature()")
    assert expression.evaluate(context) == -25.5
    assert Expression("camera.__version__").evaluate(context) == "1.2.3"
    assert Expression("int(date.mjd)").evaluate(context) == 60000


@pytest.mark.parametrize("source", MALICIOUS)
def test_malicious_expressions_rejected_at_build(source: str) -> None:
    with pytest.raises(TemplateError, match=r"not allowed|invalid"):
        Expression(source)


@pytest.mark.parametrize("source", MALICIOUS)
def test_malicious_templates_rejected_at_build(source: str) -> None:
    with pytest.raises(TemplateError):
        Template("{ " + source + " }")


def test_rejection_message_explains(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as exc:
        Template("{__import__('os').system('x')}")
    message = str(exc.value)
    assert "not allowed" in message
    assert "get_*" in message and "context" in message
    with pytest.raises(TemplateError, match="private attribute '_private'"):
        Expression("__camera__._private")
    with pytest.raises(TemplateError, match=r"\*\*"):
        Expression("9**9**9")


def test_no_eval_exec_or_compile_in_source() -> None:
    import camera_core.template as module

    with open(module.__file__, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


@pytest.mark.parametrize("source", ["{", "}", "{num", "{num:{a:{b}}}", "{x:>99999}"])
def test_syntax_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        Template(source)


def test_custom_functions(context: dict[str, Any]) -> None:
    template = Template("{double(num)}", functions={"double": lambda x: 2 * x})
    assert template.evaluate(context) == 14
    with pytest.raises(TemplateError, match="calling 'int'"):
        Template("{int(num)}", functions={"double": lambda x: 2 * x})


def test_missing_name(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as exc:
        Template("{missing.value}").render(context)
    assert "'missing'" in str(exc.value)
    assert "camera" in str(exc.value) and "num" in str(exc.value)


def test_attribute_error_is_card_error(context: dict[str, Any]) -> None:
    with pytest.raises(CardError, match=r"camera\.nope") as exc:
        Template("{camera.nope}").render(context)
    assert not isinstance(exc.value, TemplateError)
    assert isinstance(exc.value.__cause__, AttributeError)


def test_async_method_raises_card_error(context: dict[str, Any]) -> None:
    with pytest.raises(CardError, match="async"):
        Expression("__camera__.get_status()").evaluate(context)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(CardError, match="async"):
            Template("{__camera__.get_coro()}").render(context)
        gc.collect()  # an unclosed coroutine would warn here


def test_async_coroutine_is_closed(context: dict[str, Any]) -> None:
    created: list[Any] = []

    async def work() -> int:
        return 1

    def get_work() -> Any:
        created.append(work())
        return created[-1]

    ctx = {**context, "obj": SimpleNamespace(get_work=get_work)}
    with pytest.raises(CardError):
        Expression("obj.get_work()").evaluate(ctx)
    assert asyncio.iscoroutine(created[0])
    assert created[0].cr_frame is None  # closed


def test_refused_operations(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="repetition"):
        Template("{text * 100000}").render(context)
    with pytest.raises(TemplateError, match="repetition"):
        Expression("3 * values").evaluate(context)
    with pytest.raises(TemplateError, match="%"):
        Expression("text % 1").evaluate(context)
    with pytest.raises(TemplateError, match="format spec"):
        Template("{num:>{width}}").render({**context, "width": 10**6})
    big = {"s": "x" * 40000}
    with pytest.raises(TemplateError, match="string"):
        Template("{s + s}").render(big)
    with pytest.raises(TemplateError, match="string"):
        Template("{s}{s}").render(big)


def test_callable_arguments_refused(context: dict[str, Any]) -> None:
    ctx = {**context, "key": context["camera"].shutdown}
    with pytest.raises(TemplateError, match="callable"):
        Expression("max(values, key=key)").evaluate(ctx)
    with pytest.raises(TemplateError, match="callable"):
        Expression("min(values, key=camera.shutdown)").evaluate(ctx)


def test_evaluation_error_wraps_source(context: dict[str, Any]) -> None:
    with pytest.raises(CardError, match="ZeroDivisionError") as exc:
        Expression("num / 0").evaluate(context)
    assert "num / 0" in str(exc.value)


def test_repeated_use_is_stateless(context: dict[str, Any]) -> None:
    template = Template("{camera.name}-{num}")
    assert template.render(context) == "cam1-7"
    assert template.render({**context, "num": 8}) == "cam1-8"
    with pytest.raises(TemplateError):
        template.render({"camera": context["camera"]})
    assert template.render(context) == "cam1-7"
