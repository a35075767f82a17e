"""Clear, one-line messages for JSON Schema validation errors of the config.

Each message names the key path (``actor.port``), and an unknown key gets the
closest valid one as a suggestion. Secret values are never shown.
"""

from __future__ import annotations

import difflib
from typing import Any

import jsonschema

from .cli_secrets import is_secret, redacted

__all__ = ["error_messages", "key_path"]


def _show(where: str, value: Any) -> str:
    """The value as shown in an error message, never revealing a secret."""
    if is_secret(where):
        return f"a value of type {type(value).__name__} (hidden)"
    return repr(redacted(value))


def key_path(path: Any) -> str:
    """``actor.default_cameras[0]`` for a jsonschema path."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "the configuration"


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "null": "null",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}

_PATTERN_RULES = {
    "^[A-Za-z][A-Za-z0-9_-]*$": "must start with a letter and contain only "
    "letters, digits, '_' and '-'",
    "^amqps?://": "is not an amqp:// or amqps:// URL",
}


def error_messages(errors: list[jsonschema.ValidationError]) -> list[str]:
    """Messages for validation errors, shallowest key first, without repeats."""
    texts: list[str] = []
    for error in sorted(
        errors, key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path])
    ):
        text = _message(error)
        texts.extend(text if isinstance(text, list) else [text])
    return list(dict.fromkeys(texts))


def _message(error: jsonschema.ValidationError) -> str | list[str]:
    where = key_path(error.absolute_path)
    value, schema, kind = error.instance, error.schema, error.validator
    if kind == "additionalProperties":
        valid = sorted(schema.get("properties", {}))
        prefix = "" if where == "the configuration" else f"{where}."
        messages = []
        for key in sorted(set(value) - set(valid), key=str):
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = (
                f"did you mean {prefix}{close[0]}?"
                if close
                else f"valid keys: {', '.join(valid)}"
            )
            messages.append(f"unknown key {prefix}{key} ({hint})")
        return messages
    if kind == "type":
        expected = error.validator_value
        if isinstance(expected, str):
            expected = [expected]
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
        return f"{where} must be {names}, not {_show(where, value)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{where} must be in {low}..{high}, not {value!r}"
        if kind == "exclusiveMinimum":
            return f"{where} must be > {error.validator_value}, not {value!r}"
        return f"{where} must be ≥ {low}, not {value!r}"
    if kind == "pattern":
        rule = _PATTERN_RULES.get(error.validator_value, "")
        return f"{where}: {_show(where, value)} {rule or 'is invalid'}"
    if kind == "minLength":
        return f"{where} must not be empty"
    if kind == "uniqueItems":
        return f"{where} has duplicate entries: {value!r}"
    if kind == "required":
        missing = [key for key in error.validator_value if key not in value]
        return [f"{where}.{key} is required" for key in missing]
    return f"{where}: {error.message}"  # pragma: no cover - other keywords
