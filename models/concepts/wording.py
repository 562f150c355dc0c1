"""How numbers, counts, durations and changes are worded for staff.

Conventions: counts are whole numbers with singular/plural ("1 ticket", "3 tickets");
percentages are rounded ("45 %", "5.2 %"); durations are days under two months, months
under two years, years beyond; NaN (unknown) gets its own wording ("no NPS answer yet")
or no phrase, never "nan". Shared by every clause in ``clauses`` and ``phrases``, so
all reasons read alike.
"""

from __future__ import annotations


def is_missing(value) -> bool:
    """None, NaN or pandas NA."""
    if value is None:
        return True
    try:
        return bool(value != value)   # NaN and pd.NA (NA != NA is NA -> TypeError below)
    except TypeError:
        return True


def fmt_number(x: float, digits: int = 1) -> str:
    """A number for people: at most ``digits`` decimals, no trailing zeros (3.0000001 -> 3)."""
    text = f"{float(x):.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_money(x: float) -> str:
    """An amount: whole numbers as such, otherwise two decimals (61.5 -> 61.50)."""
    x = float(x)
    return str(int(round(x))) if abs(x - round(x)) < 0.005 else f"{x:.2f}"


def fmt_percent(points: float) -> str:
    """Percentage points as text: whole above 10, one decimal below (45, 5.2, 0.4)."""
    p = abs(float(points))
    return str(int(round(p))) if p >= 9.95 else fmt_number(p, 1)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 ticket`` / ``3 tickets`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def fmt_duration(days: float) -> str:
    """Days under two months, months under two years, years beyond."""
    d = abs(float(days))
    if d < 1:
        return "less than a day"
    if d < 59.5:
        return plural(int(round(d)), "day")
    if d < 730:
        return plural(max(int(round(d / 30.4375)), 2), "month")
    return plural(int(round(d / 365.25)), "year")


def _count(v) -> int | None:
    return None if is_missing(v) else int(round(float(v)))


def _counted(v, word: str, tail: str, none: str, many: str | None = None) -> str | None:
    """``"3 tickets" + tail`` or the ``none`` wording for zero."""
    n = _count(v)
    if n is None:
        return None
    return none if n == 0 else f"{plural(n, word, many)}{tail}"


def _change(frac: float, noun: str, tail: str) -> str | None:
    """``usage down 45 % over 90 days`` from a ratio - 1 (0.45 = +45 %)."""
    if is_missing(frac):
        return None
    pts = fmt_percent(100 * float(frac))
    if pts == "0":
        return f"{noun} flat{tail}"
    return f"{noun} {'up' if frac > 0 else 'down'} {pts} %{tail}"


def _points(delta: float, noun: str = "NPS") -> str | None:
    """``NPS down 3 points``."""
    n = _count(delta)
    if n is None:
        return None
    return f"{noun} unchanged" if n == 0 else f"{noun} {'up' if n > 0 else 'down'} {plural(abs(n), 'point')}"


def _tone(sentiment: float) -> str | None:
    """VADER convention: below -0.05 negative, above 0.05 positive, neutral between."""
    if is_missing(sentiment):
        return None
    return "negative" if sentiment < -0.05 else "positive" if sentiment > 0.05 else "neutral"


def _on(flag) -> bool:
    return not is_missing(flag) and float(flag) > 0
