"""Customer identifiers and comments never reach the logs.

``install()`` wraps the process's log-record factory, so every record is cleaned where
it is created, whichever logger or handler it goes to:

* uvicorn's access log line keeps its shape, but a path segment that carries a customer
  id becomes ``{customer_id}`` and the query string is dropped;
* every value the service marks as sensitive during a request (the customer id of the
  path or body, a comment) is masked in any record logged while that request runs,
  tracebacks included.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

MASK = "***"
ACCESS_LOGGER = "uvicorn.access"
# a mutable list per request: endpoints run in worker threads with a copy of the request's context,
# and appending to the shared list (not setting the variable) is what the access log then sees
_SENSITIVE: ContextVar[list[str] | None] = ContextVar("cem_sensitive", default=None)
_CUSTOMER_SEGMENT = re.compile(r"(/customers/)[^/\s?\"]+")
_MIN_LENGTH = 3  # shorter values would mask unrelated text


def mark_sensitive(*values: object) -> None:
    """Mask these values in every log record for the rest of the current request."""
    marked = _SENSITIVE.get()
    if marked is None:
        marked = []
        _SENSITIVE.set(marked)
    marked.extend(str(v) for v in values if v is not None and len(str(v)) >= _MIN_LENGTH)


def new_request_scope() -> None:
    """Start a request with nothing marked (call at the start of each request's context)."""
    _SENSITIVE.set([])


def redact_path(path: str) -> str:
    """``/v1/customers/C1?fresh=true`` -> ``/v1/customers/{customer_id}``."""
    return _CUSTOMER_SEGMENT.sub(r"\1{customer_id}", path.split("?", 1)[0])


def mask(text: str, values: tuple[str, ...]) -> str:
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def clean(record: logging.LogRecord) -> logging.LogRecord:
    """Redact one record in place (access-log path, marked values, traceback)."""
    values = tuple(_SENSITIVE.get() or ())
    args = record.args
    if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5:
        # uvicorn's AccessFormatter unpacks (client, method, path, http_version, status)
        record.args = (args[0], args[1], redact_path(str(args[2])), args[3], args[4])
    elif values:
        record.msg, record.args = mask(record.getMessage(), values), ()
    if values and record.exc_info:
        record.exc_text = mask(logging.Formatter().formatException(record.exc_info), values)
        record.exc_info = None
    return record


def install() -> None:
    """Clean every log record of the process at creation (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "cem_redacting", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        return clean(current(*args, **kwargs))

    factory.cem_redacting = True
    logging.setLogRecordFactory(factory)
