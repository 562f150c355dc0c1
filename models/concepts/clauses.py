"""The clause functions that word one feature's value (with its companion columns).

Each function takes the feature's value first, then the companions its ``Phrase`` lists
(``phrases._SPEC``), and returns a short clause or ``None`` when there is nothing worth
saying. Kept apart from the table that assigns them to features so that each file reads
as one thing: here the wording rules, there which feature uses which rule.
"""

from __future__ import annotations

from collections.abc import Callable

from .wording import (
    _change,
    _count,
    _counted,
    _on,
    _points,
    _tone,
    fmt_duration,
    fmt_number,
    fmt_percent,
    is_missing,
    plural,
)

_NO_TICKETS = "no support tickets in the last 90 days"


def _nps_class(v: float) -> str:
    return "detractor" if v <= 6 else "passive" if v <= 8 else "promoter"


def _last_nps(v):
    if is_missing(v):
        return "no NPS answer yet"
    return f"last NPS answer {fmt_number(v, 0)} ({_nps_class(float(v))})"


def _unanswered(what: str):
    """``no CSAT answer yet``, or the NPS wording when the customer never answered at all."""
    def fn(v, last_nps):
        return None if not is_missing(v) else "no NPS answer yet" if is_missing(last_nps) \
            else f"no {what} yet"
    return fn


def _last_csat(v, last_nps):
    return _unanswered("CSAT answer")(v, last_nps) or f"last CSAT {fmt_number(v, 0)} of 5"


def _last_effort(v, last_nps):
    if is_missing(v):
        return _unanswered("effort score")(v, last_nps)
    n = int(round(float(v)))
    note = " (high effort)" if n >= 5 else " (low effort)" if n <= 2 else ""
    return f"last effort score {n} of 7{note}"


def _took(v) -> str:
    v = float(v)
    if v < 1:
        return "within a day"
    if v >= 9.95:
        return plural(int(round(v)), "day")
    text = fmt_number(v, 1)
    return "1 day" if text == "1" else f"{text} days"


def _resolution(slowest: bool):
    """Mean or slowest resolution time; one shared clause when both read the same."""
    def fn(v, other, tickets):
        if is_missing(v):
            return _NO_TICKETS if _count(tickets) == 0 else "no ticket closed in the last 90 days"
        took = _took(v)
        fast = took == "within a day"
        if not is_missing(other) and _took(other) == took:      # one ticket, or all alike
            return "tickets closed within a day" if fast else f"tickets took {took} to close"
        if slowest:
            return "every ticket closed within a day" if fast else f"slowest ticket took {took} to close"
        return "tickets closed within a day on average" if fast else \
            f"tickets took {took} on average to close"
    return fn


def _days_to_renewal(v, contract):
    if is_missing(v):   # month-to-month has no term: say what the contract phrase says
        return _contract(contract) if _contract(contract) == "month-to-month contract" \
            else "no contract end date on file"
    v = float(v)
    if -1 < v < 1:
        return "contract renews today"
    if v > 0:
        return f"contract renews in {fmt_duration(v)}"
    return f"contract term ended {fmt_duration(v)} ago"


def _contract(v):
    if is_missing(v):
        return None
    names = {"month_to_month": "month-to-month", "one_year": "one-year", "two_year": "two-year"}
    return f"{names.get(str(v), str(v).replace('_', ' '))} contract"


def _segment(v):
    if is_missing(v):
        return None
    return f"{str(v).replace('_', '-')} customer"


def _price_change(v):
    if is_missing(v):
        return None
    pts = fmt_percent(v)
    if pts == "0":
        return "no price change in the last 90 days"
    return f"price {'up' if v > 0 else 'down'} {pts} % in the last 90 days"


def _days_late(v):
    n = _count(v)
    if n is None:
        return None
    if n == 0:
        return "paid on time in the last 90 days"
    return f"paid up to {plural(n, 'day')} late in the last 90 days"


def _usage_last(v):
    if is_missing(v):
        return "no usage recorded last month"
    v = float(v)
    if v <= 0:
        return "no usage last month"
    return f"{fmt_number(v, 0 if v >= 100 else 1)} usage units last month"


_SHORT_HISTORY = "usage history too short for a trend"


def _drop_ratio(v):
    if is_missing(v):
        return _SHORT_HISTORY
    pts = fmt_percent(100 * float(v))
    return "usage at its 6-month high" if float(v) >= 0.995 else f"usage at {pts} % of its 6-month high"


def _vs_usual(when: str):
    """'usage last month 45 % below its usual level' (seasonally adjusted ratio)."""
    def clause(v):
        if is_missing(v):
            return _SHORT_HISTORY
        change = 100 * (float(v) - 1)
        if abs(change) < 5:
            return f"usage {when} at its usual level for the season"
        side = "below" if change < 0 else "above"
        return f"usage {when} {fmt_percent(abs(change))} % {side} its usual level for the season"
    return clause


def _promoter_drop(flag, ratio):
    if not _on(flag):
        return None
    return "promoter whose usage has dropped" if is_missing(ratio) else \
        f"promoter whose usage fell to {fmt_percent(100 * float(ratio))} % of its 6-month high"


def _nps_vs_usage(v, nps_trend, usage_trend):
    if is_missing(v) or is_missing(nps_trend) or is_missing(usage_trend):
        return None
    usage = _change(usage_trend, "usage", " over 90 days")
    return f"{_points(nps_trend)} while {usage}"


def _sentiment_vs_usage(v, sentiment, usage_trend):
    if is_missing(v) or is_missing(sentiment) or is_missing(usage_trend):
        return None
    return f"{_tone(sentiment)} comments while {_change(usage_trend, 'usage', ' over 90 days')}"


def _sentiment_90d(v, v180):
    tone = _tone(v)
    if tone is None:   # no comment over 180 days either: say that (the 180-day clause)
        return f"no comments in the last {180 if is_missing(v180) else 90} days"
    return f"{tone} comments in the last 90 days"


def _sentiment_180d(v, v90):
    tone = _tone(v)
    if tone is None:
        return "no comments in the last 180 days"
    if tone == _tone(v90):      # same tone lately: the recent clause says it for both
        return _sentiment_90d(v90, v)
    return f"{tone} comments in the last 180 days"


def _nps_summary(fmt: str, digits: int):
    def fn(v, last, mean, low):
        if is_missing(v):
            return "no NPS answer yet" if is_missing(last) else "no NPS answer in the last year"
        if not is_missing(mean) and not is_missing(low) and fmt_number(mean, 1) == fmt_number(low, 1):
            return f"every NPS answer in the last year was {fmt_number(low, 0)}"
        return fmt.format(fmt_number(v, digits))
    return fn


def _with_tickets(tickets_90d_zero: str | None, inner: Callable[[object], str | None]):
    """``no support tickets in the last 90 days`` when there were none at all, else ``inner``."""
    def fn(v, tickets):
        return tickets_90d_zero if _count(tickets) == 0 and not is_missing(v) and float(v) == 0 \
            else inner(v)
    return fn


def _topic(driver: str):
    def fn(share, comments):
        if is_missing(share):
            return "no comments in the last 180 days"
        share = float(share)
        if share <= 0:
            return f"comments do not mention {driver}"
        if share >= 0.995:
            return f"comments mention {driver}"
        n = _count(comments)
        if n:
            return f"{int(round(share * n))} of {n} comments mention {driver}"
        return f"{fmt_percent(100 * share)} % of comments mention {driver}"
    return fn


def _response_rate(rate, invited):
    if is_missing(rate):
        return "no survey invitations in the last year"
    n = _count(invited)
    if n:
        return f"answered {int(round(float(rate) * n))} of {plural(n, 'survey invitation')} in the last year"
    return f"answered {fmt_percent(100 * float(rate))} % of survey invitations in the last year"


def _ago(what: str, never: str):
    def fn(v):
        return never if is_missing(v) else f"{what} {fmt_duration(v)} ago"
    return fn


def _flagged(text: str):
    def fn(v):
        return text if _on(v) else None
    return fn


def _silent(flag, tickets):
    if not _on(flag):
        return None
    n = _count(tickets)
    return ("never answered a survey but raised tickets in the last 90 days" if not n else
            f"never answered a survey but raised {plural(n, 'ticket')} in the last 90 days")


def _negative_unresolved(flag, unresolved):
    if not _on(flag):
        return None
    n = _count(unresolved) or 1
    return f"negative comments and {plural(n, 'unresolved ticket')}"


def _topic_times_count(topic: str, what: str):
    def fn(v, count):
        if is_missing(v) or float(v) <= 0:
            return None
        n = _count(count)
        return f"comments mention {topic}" + (f", {plural(n, what)} in the last 90 days" if n else "")
    return fn


def _price_topic(v, price):
    if is_missing(v) or float(v) <= 0:
        return None
    return "comments mention price" + (f" after a {fmt_percent(price)} % price rise"
                                       if not is_missing(price) and price > 0 else "")


def _complaint_price(flag, price):
    if not _on(flag):
        return None
    return "complained after a price rise" + (f" of {fmt_percent(price)} %" if not is_missing(price) else "")


def _complaints(count, severity):
    """Complaints and the worst severity, one clause for both features."""
    n, worst = _count(count), _count(severity)
    if n == 0 or (n is None and worst == 0):
        return "no complaints in the last 90 days"
    level = {1: "low", 2: "medium"}.get(worst or 0, "high") if worst else None
    if n is None:
        return None if level is None else f"a complaint of {level} severity in the last 90 days"
    return f"{plural(n, 'complaint')} in the last 90 days" + (f" ({level} severity)" if level else "")


def _actions(v, days_since):
    if _count(v) == 0 and is_missing(days_since):
        return "never received a retention action"
    return _counted(v, "retention action", " in the last 90 days", "no retention action in the last 90 days")


def _tenure(v):
    return None if is_missing(v) else f"customer for {fmt_duration(v)}"


def _text(fmt: str):
    """A categorical label in a template (``premium plan``; underscores read as spaces)."""
    def fn(v):
        return None if is_missing(v) else fmt.format(str(v).replace("_", " "))
    return fn


def _count_phrase(word: str, tail: str, none: str, many: str | None = None):
    def fn(v):
        return _counted(v, word, tail, none, many)
    return fn
