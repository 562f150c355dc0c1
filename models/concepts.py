"""Business concepts behind the 62 features, and how to say a customer's values in words.

Staff trust a score when its reasons are theirs: "3 tickets unresolved in the last 90
days", not "tickets_unresolved_90d = 3". Every feature of ``FEATURE_SCHEMA`` belongs to
exactly one ``Concept`` (support friction, price & billing, ...); related features, the
one-hot columns of a categorical and the fused X+O signals group with the concept a
member of staff would name. Each feature also has a ``Phrase``: the columns it reads
(its own value first, sometimes a companion such as ``tickets_90d``) and a function
from those values to a short clause, or ``None`` when there is nothing worth saying
(a fused flag that is off, a value that is unknown). Phrases describe the value, not
the risk, so they read right in both directions: "no support tickets in the last 90
days" is what a protective support reason says.

Conventions: counts are whole numbers with singular/plural ("1 ticket", "3 tickets");
percentages are rounded ("45 %", "5.2 %"); durations are days under two months, months
under two years, years beyond; NaN (unknown) gets its own wording ("no NPS answer yet")
or no phrase, never "nan".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from features.transforms.schema import DRIVERS, FEATURE_SCHEMA

OTHER = "other"


@dataclass(frozen=True)
class Concept:
    """A business concept: its key, the label staff read, and a one-line description."""

    key: str
    label: str
    description: str


@dataclass(frozen=True)
class Phrase:
    """How to word one feature: the columns read (the feature first) and the wording."""

    inputs: tuple[str, ...]
    fn: Callable[..., str | None]


CONCEPTS: dict[str, Concept] = {c.key: c for c in [
    Concept("support", "Support friction",
            "tickets raised, unresolved or still open, and how long they took"),
    Concept("reliability", "Service reliability", "outage and technical tickets"),
    Concept("price_billing", "Price & billing",
            "monthly charge, price rises, discounts, late payments, billing tickets"),
    Concept("usage", "Usage & engagement",
            "product usage, its trend against earlier months, active days and sessions"),
    Concept("tenure", "Onboarding / tenure", "how long the customer has been with us"),
    Concept("contract", "Contract & renewal", "contract type and the time to renewal"),
    Concept("survey_scores", "Survey scores", "NPS, CSAT and effort answers and their trend"),
    Concept("survey_participation", "Survey participation",
            "invitations, answers and response rate: who talks to us at all"),
    Concept("comments", "Comments & sentiment", "tone of survey comments and the topics they name"),
    Concept("complaints", "Complaints", "complaints received and their severity"),
    Concept("orders", "Orders & delivery", "orders placed and orders that failed"),
    Concept("retention", "Retention history", "retention actions delivered to the customer"),
    Concept("profile", "Customer profile", "segment, region and plan"),
    Concept(OTHER, "Other factors", "features without a business concept"),
]}

_MEMBERS: dict[str, list[str]] = {
    "support": ["tickets_30d", "tickets_90d", "tickets_unresolved_90d", "tickets_open_now",
                "mean_resolution_days_90d", "max_resolution_days_90d",
                "detractor_with_open_ticket", "silent_with_tickets",
                "negative_comment_with_unresolved", "support_topic_x_unresolved"],
    "reliability": ["outage_tickets_90d", "technical_tickets_90d",
                    "reliability_topic_x_outage_tickets"],
    "price_billing": ["monthly_charge", "price_change_90d_pct", "discount_90d", "late_payments_90d",
                      "days_late_max_90d", "billing_tickets_90d", "complaint_and_price_rise",
                      "price_topic_x_price_change"],
    "usage": ["usage_last_month", "usage_30d_trend", "usage_90d_trend", "usage_drop_ratio",
              "active_days_last_month", "sessions_last_month", "promoter_with_usage_drop",
              "nps_trend_minus_usage_trend", "sentiment_x_usage_trend"],
    "tenure": ["tenure_days"],
    "contract": ["contract", "days_to_renewal"],
    "survey_scores": ["last_nps", "last_csat", "last_effort", "nps_trend", "mean_nps_365d",
                      "min_nps_365d"],
    "survey_participation": ["last_touchpoint", "days_since_last_survey_answer",
                             "days_since_last_invitation", "invitations_365d", "responses_365d",
                             "response_rate_365d", "ever_responded"],
    "comments": ["comments_180d", "sentiment_90d", "sentiment_180d",
                 *[f"topic_{d}_180d" for d in DRIVERS]],
    "complaints": ["complaints_90d", "complaint_max_severity_90d"],
    "orders": ["orders_90d", "failed_orders_90d"],
    "retention": ["actions_90d", "days_since_last_action"],
    "profile": ["segment", "region", "plan"],
}

FEATURE_CONCEPT: dict[str, str] = {f: c for c, feats in _MEMBERS.items() for f in feats}

_KINDS = {c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}
_CATEGORICAL = sorted((c for c, k in _KINDS.items() if k == "string"), key=len, reverse=True)


def schema_features() -> list[str]:
    """Every feature declared in ``FEATURE_SCHEMA``, in table order."""
    return [c for table in FEATURE_SCHEMA.values() for c in table]


def missing_concepts(features: Iterable[str] | None = None) -> list[str]:
    """Features (default: the whole schema) that have no business concept."""
    feats = schema_features() if features is None else list(features)
    return [f for f in feats if base_feature(f) not in FEATURE_CONCEPT]


def base_feature(name: str) -> str:
    """The schema feature behind a model column: itself, or the categorical of a one-hot
    column such as ``plan_premium`` / ``plan=premium``."""
    if name in FEATURE_CONCEPT or name in _KINDS:
        return name
    for cat in _CATEGORICAL:
        if name.startswith(cat) and name[len(cat):len(cat) + 1] in ("_", "="):
            return cat
    return name


def concept_of(name: str) -> str:
    """The concept key of a model column (``"other"`` for a column nobody declared)."""
    return FEATURE_CONCEPT.get(base_feature(name), OTHER)


def concept_features(concept: str) -> list[str]:
    """The schema features of a concept."""
    return list(_MEMBERS.get(concept, []))


# --------------------------------------------------------------------------- formatting

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


# --------------------------------------------------------------------------- phrases

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


def _p(fn: Callable[..., str | None], *extra: str) -> Callable[[str], Phrase]:
    return lambda feature: Phrase((feature, *extra), fn)


_L90, _L30 = " in the last 90 days", " in the last 30 days"
_NO_TICKETS = "no support tickets in the last 90 days"
_SPEC: dict[str, Callable[[str], Phrase]] = {
    # support friction
    "tickets_30d": _p(_with_tickets(_NO_TICKETS, _count_phrase(
        "ticket", _L30, "no support tickets in the last 30 days")), "tickets_90d"),
    "tickets_90d": _p(_count_phrase("ticket", _L90, _NO_TICKETS)),
    "tickets_unresolved_90d": _p(_with_tickets(_NO_TICKETS, _count_phrase(
        "ticket", " unresolved" + _L90, "no unresolved tickets in the last 90 days")), "tickets_90d"),
    "tickets_open_now": _p(_count_phrase("ticket", " open now", "no ticket open now")),
    "mean_resolution_days_90d": _p(_resolution(False), "max_resolution_days_90d", "tickets_90d"),
    "max_resolution_days_90d": _p(_resolution(True), "mean_resolution_days_90d", "tickets_90d"),
    "detractor_with_open_ticket": _p(_flagged("detractor with a ticket still open")),
    "silent_with_tickets": _p(_silent, "tickets_90d"),
    "negative_comment_with_unresolved": _p(_negative_unresolved, "tickets_unresolved_90d"),
    "support_topic_x_unresolved": _p(_topic_times_count("support", "unresolved ticket"),
                                     "tickets_unresolved_90d"),
    # service reliability
    "outage_tickets_90d": _p(_count_phrase("outage ticket", _L90, "no outage tickets in the last 90 days")),
    "technical_tickets_90d": _p(_count_phrase("technical ticket", _L90,
                                              "no technical tickets in the last 90 days")),
    "reliability_topic_x_outage_tickets": _p(_topic_times_count("reliability", "outage ticket"),
                                             "outage_tickets_90d"),
    # price & billing
    "monthly_charge": _p(lambda v: None if is_missing(v) else f"monthly charge {fmt_money(v)}"),
    "price_change_90d_pct": _p(_price_change),
    "discount_90d": _p(lambda v: None if is_missing(v) else "no discount in the last 90 days"
                       if float(v) <= 0 else f"discounts of {fmt_money(v)} in the last 90 days"),
    "late_payments_90d": _p(_count_phrase("late payment", _L90, "no late payments in the last 90 days")),
    "days_late_max_90d": _p(_days_late),
    "billing_tickets_90d": _p(_count_phrase("billing ticket", _L90,
                                            "no billing tickets in the last 90 days")),
    "complaint_and_price_rise": _p(_complaint_price, "price_change_90d_pct"),
    "price_topic_x_price_change": _p(_price_topic, "price_change_90d_pct"),
    # usage & engagement
    "usage_last_month": _p(_usage_last),
    "usage_30d_trend": _p(lambda v: _change(v, "usage", " on the previous month") or _SHORT_HISTORY),
    "usage_90d_trend": _p(lambda v: _change(v, "usage", " over 90 days") or _SHORT_HISTORY),
    "usage_drop_ratio": _p(_drop_ratio),
    "active_days_last_month": _p(_count_phrase("day", " active last month", "not active last month")),
    "sessions_last_month": _p(_count_phrase("session", " last month", "no sessions last month")),
    "promoter_with_usage_drop": _p(_promoter_drop, "usage_drop_ratio"),
    "nps_trend_minus_usage_trend": _p(_nps_vs_usage, "nps_trend", "usage_90d_trend"),
    "sentiment_x_usage_trend": _p(_sentiment_vs_usage, "sentiment_90d", "usage_90d_trend"),
    # tenure, contract, profile
    "tenure_days": _p(_tenure),
    "contract": _p(_contract),
    "days_to_renewal": _p(_days_to_renewal, "contract"),
    "segment": _p(_segment),
    "region": _p(_text("{} region")),
    "plan": _p(_text("{} plan")),
    # survey scores
    "last_nps": _p(_last_nps),
    "last_csat": _p(_last_csat, "last_nps"),
    "last_effort": _p(_last_effort, "last_nps"),
    "nps_trend": _p(lambda v: None if is_missing(v) else f"{_points(v)} since the previous answer"),
    "mean_nps_365d": _p(_nps_summary("average NPS answer {} in the last year", 1),
                        "last_nps", "mean_nps_365d", "min_nps_365d"),
    "min_nps_365d": _p(_nps_summary("lowest NPS answer {} in the last year", 0),
                       "last_nps", "mean_nps_365d", "min_nps_365d"),
    # survey participation
    "last_touchpoint": _p(lambda v: "never answered a survey" if is_missing(v)
                          else f"last answered a {v} survey"),
    "days_since_last_survey_answer": _p(_ago("last survey answer", "never answered a survey")),
    "days_since_last_invitation": _p(_ago("last survey invitation", "never invited to a survey")),
    "invitations_365d": _p(_count_phrase("survey invitation", " in the last year",
                                         "no survey invitations in the last year")),
    "responses_365d": _p(_count_phrase("survey answer", " in the last year",
                                       "no survey answers in the last year")),
    "response_rate_365d": _p(_response_rate, "invitations_365d"),
    "ever_responded": _p(lambda v: None if is_missing(v) else "never answered a survey"
                         if float(v) <= 0 else "has answered surveys before"),
    # comments & sentiment
    "comments_180d": _p(_count_phrase("comment", " in the last 180 days",
                                      "no comments in the last 180 days")),
    "sentiment_90d": _p(_sentiment_90d, "sentiment_180d"),
    "sentiment_180d": _p(_sentiment_180d, "sentiment_90d"),
    **{f"topic_{d}_180d": _p(_topic(d), "comments_180d") for d in DRIVERS},
    # complaints
    "complaints_90d": _p(_complaints, "complaint_max_severity_90d"),
    "complaint_max_severity_90d": _p(lambda v, n: _complaints(n, v), "complaints_90d"),
    # orders & delivery
    "orders_90d": _p(_count_phrase("order", _L90, "no orders in the last 90 days")),
    "failed_orders_90d": _p(_count_phrase("failed order", _L90, "no failed orders in the last 90 days")),
    # retention history
    "actions_90d": _p(_actions, "days_since_last_action"),
    "days_since_last_action": _p(_ago("last retention action", "never received a retention action")),
}

PHRASES: dict[str, Phrase] = {f: make(f) for f, make in _SPEC.items()}


def phrase_of(name: str) -> Phrase | None:
    """The phrase of a model column (one-hot columns use their categorical's phrase)."""
    return PHRASES.get(base_feature(name))


def _value(row: Mapping, col: str):
    try:
        v = row[col]
    except (KeyError, IndexError):
        return None
    return None if is_missing(v) else v


def describe(feature: str, row: Mapping) -> str | None:
    """The clause for ``feature`` given one customer's values (``row``: dict or Series)."""
    phrase = phrase_of(feature)
    if phrase is None:
        return None
    return phrase.fn(*(_value(row, c) for c in phrase.inputs))


def join_phrases(phrases: Iterable[str | None], fallback: str, limit: int = 2) -> str:
    """Up to ``limit`` distinct clauses joined into one sentence, capitalised; ``fallback``
    (the concept label) when no clause is available."""
    kept: list[str] = []
    for p in phrases:
        if p and p not in kept:
            kept.append(p)
        if len(kept) == limit:
            break
    text = ", ".join(kept) if kept else fallback
    return text[:1].upper() + text[1:]


def concept_sentence(concept: str, row: Mapping, features: Iterable[str], limit: int = 2) -> str:
    """The sentence of a concept for one customer, from its features in order of strength."""
    return join_phrases((describe(f, row) for f in features),
                        CONCEPTS.get(concept, CONCEPTS[OTHER]).label, limit)


_missing_phrase = [f for f in FEATURE_CONCEPT if f not in PHRASES]
assert not _missing_phrase, f"features without a phrase: {_missing_phrase}"
