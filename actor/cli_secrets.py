"""Keeping credentials out of logs, messages and printed configurations."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "hide_secrets",
    "is_secret",
    "redact_text",
    "redacted",
]

#: What replaces a secret.
REDACTED = "***"


def is_secret(key: str) -> bool:
    """Whether a key names a secret (password, secret, token)."""
    return any(word in key.lower() for word in ("password", "secret", "token"))


_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]*@")


def redact_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` hidden."""
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


def redacted(config: Any) -> Any:
    """A copy of ``config`` safe to log: passwords and URL passwords hidden.

    Any key containing ``password``, ``secret`` or ``token`` is replaced, and
    so is the password inside any ``scheme://user:password@host`` string.
    """
    if isinstance(config, Mapping):
        return {
            key: (
                REDACTED
                if is_secret(str(key)) and value not in (None, "")
                else redacted(value)
            )
            for key, value in config.items()
        }
    if isinstance(config, list | tuple):
        return [redacted(value) for value in config]
    if isinstance(config, str):
        return redact_text(config)
    return config


class RedactingFilter(logging.Filter):
    """Hides URL passwords (``amqp://user:***@host``) in log records.

    The message and the traceback of a logged exception are both cleaned.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def hide_secrets(logger: logging.Logger) -> None:
    """Installs a `RedactingFilter` on ``logger`` and on each of its handlers.

    The logger's filter cleans what is logged through it, whichever handler
    (its own, or an ancestor's) writes it; the handlers' filters also clean
    records that reach them from child loggers. Calling it again does not add
    a second filter.
    """
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())
