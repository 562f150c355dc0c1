"""The reps' page: server-rendered HTML (Jinja2, autoescaped) over the same readers as the API.

``/login`` takes a token and opens a session: the cookie holds a random session id (stored
hashed, with its expiry), never the token; HttpOnly, SameSite=Lax, Secure under
``serving.https``;
``/reps/{rep_id}`` lists the rep's actions (alerts first, save desk first then by churn risk x
value at risk) with forms that record the outcome; ``/reps`` is the manager's per-rep summary;
``/customers/{customer_id}`` is one customer's page (``serving.routes.customer_page``).
Forms are parsed from ``application/x-www-form-urlencoded`` bodies directly (no multipart
dependency) and validated with the API's own ``OutcomeIn`` (``serving.routes.forms``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from models.impact.report import report_dir
from models.impact.text import page_section
from serving import page_views, views
from serving.auth import SESSION_COOKIE, close_session, open_session, principal_for
from serving.db.action_pages import SUMMARY_COLUMNS, rep_actions, rep_summary
from serving.db.events import FOLLOW_UP
from serving.deps import EngineDep, OptionalPrincipalDep, Services, ServicesDep
from serving.routes import customer_page
from serving.routes.forms import STATUS_LABELS, login_redirect, read_form, save_form_outcome, templates

router = APIRouter(include_in_schema=False)
router.include_router(customer_page.router)


def _safe_next(target: str | None) -> str | None:
    """Only local paths: an open redirect would hand the cookie's holder to another site."""
    return target if target and target.startswith("/") and not target.startswith("//") else None


@router.get("/", response_class=HTMLResponse)
def index(principal: OptionalPrincipalDep):
    """Start at the caller's own list, or sign in."""
    if principal is None:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    target = "/reps" if principal.is_manager else f"/reps/{principal.rep_id}"
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None):
    """The sign-in form."""
    return templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: ServicesDep):
    """Check the token; open a session (its id in an HttpOnly cookie) and go to the rep's list."""
    form = await read_form(request)
    token = form.get("token", "").strip()
    principal = await run_in_threadpool(principal_for, services.engine, token)
    if principal is None or principal.expired():
        error = "Unknown token." if principal is None else "This token has expired: ask for a new one."
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": _safe_next(form.get("next")), "error": error},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    serving = services.settings.serving
    session = await run_in_threadpool(open_session, services.engine, token, serving.session_hours)
    home = "/reps" if principal.is_manager else f"/reps/{principal.rep_id}"
    response = RedirectResponse(_safe_next(form.get("next")) or home, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=int(serving.session_hours * 3600),
        path="/",
        secure=serving.https,
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
def logout(request: Request, services: ServicesDep):
    """End the session here and in the database."""
    close_session(services.engine, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=services.settings.serving.https, httponly=True)
    return response


@router.get("/reps", response_class=HTMLResponse)
def reps_index(
    request: Request,
    principal: OptionalPrincipalDep,
    engine: EngineDep,
    services: ServicesDep,
    sort: Annotated[str, Query(pattern="^(" + "|".join(page_views.SUMMARY_SORTS) + ")$")] = "rep_id",
    desc: bool = False,
):
    """Managers: per rep of the latest run, planned actions, open alerts, outcomes this cycle and
    expected value shown; sortable by each. Below, the impact report saved by `cem impact`
    (read from its file, never computed here: the page stays fast)."""
    if principal is None:
        return login_redirect("/reps")
    if not principal.is_manager:
        return RedirectResponse(f"/reps/{principal.rep_id}", status_code=status.HTTP_303_SEE_OTHER)
    rows = page_views.sort_summary(rep_summary(engine), sort, desc)
    totals = {c: sum(r[c] for r in rows) for c in SUMMARY_COLUMNS}
    context = {"rows": rows, "totals": totals, "sort": sort, "desc": desc, "principal": principal,
               "impact": page_section(report_dir(services.settings))}
    return templates.TemplateResponse(request, "reps.html", context)


def _render_list(
    request: Request,
    services: Services,
    principal,
    rep_id: str,
    page: int,
    saved: int | None = None,
    error: str | None = None,
    code: int = 200,
) -> HTMLResponse:
    serving = services.settings.serving
    size = serving.page_size
    raw = rep_actions(services.engine, rep_id, page, size)
    result = views.action_page(rep_id, raw, page, size)
    context = {
        "data": result,
        "satisfaction_label": page_views.satisfaction_label(result.satisfaction_scale),
        "rows": page_views.list_rows(raw.items, result.items, result.as_of, serving.comment_days),
        "comment_days": serving.comment_days,
        "principal": principal,
        "rep_id": rep_id,
        "saved": saved,
        "error": error,
        "status_labels": STATUS_LABELS,
        "follow_up": FOLLOW_UP,
        "pages": max(1, math.ceil(result.total / size)),
    }
    return templates.TemplateResponse(request, "rep.html", context, status_code=code)


@router.get("/reps/{rep_id}", response_class=HTMLResponse)
def rep_page(
    request: Request,
    rep_id: str,
    principal: OptionalPrincipalDep,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1)] = 1,
    saved: int | None = None,
):
    """A rep's ranked list with risk, predicted satisfaction, reasons, the action and outcome forms."""
    if principal is None:
        return login_redirect(f"/reps/{rep_id}")
    if not principal.may_see(rep_id):
        return templates.TemplateResponse(
            request,
            "error.html",
            {"message": "This list belongs to another rep."},
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return _render_list(request, services, principal, rep_id, page, saved)


@router.post("/reps/{rep_id}/outcomes", response_class=HTMLResponse)
async def rep_outcome(request: Request, rep_id: str, principal: OptionalPrincipalDep, services: ServicesDep):
    """Record an outcome from the page, then show the list again with the row marked saved
    (or with the error, naming the field, and the status code the API would give)."""
    if principal is None:
        return login_redirect(f"/reps/{rep_id}")
    form = await read_form(request)
    page = int(form.get("page") or 1) if (form.get("page") or "1").isdigit() else 1
    error, code = await save_form_outcome(services, principal, form)
    if error is None:
        position = form.get("position") or ""
        anchor = f"#item-{position}" if position.isdigit() else ""
        return RedirectResponse(
            f"/reps/{rep_id}?page={page}&saved={position or 0}{anchor}", status_code=status.HTTP_303_SEE_OTHER
        )
    render = partial(_render_list, request, services, principal, rep_id, page, error=error, code=code)
    return await run_in_threadpool(render)
