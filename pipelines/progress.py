"""A process-wide progress hook, so step functions deep inside Prefect tasks can drive
the CLI's Rich progress bar without passing callables through flow parameters."""

from __future__ import annotations

from collections.abc import Callable

_report: Callable[[int, int], None] | None = None
_advance: Callable[[], None] | None = None


def install(report: Callable[[int, int], None] | None = None,
            advance: Callable[[], None] | None = None) -> None:
    global _report, _advance
    _report, _advance = report, advance


def report(done: int, total: int) -> None:
    if _report:
        _report(done, total)


def advance() -> None:
    if _advance:
        _advance()
