"""The reps' page: server-rendered HTML (Jinja2, autoescaped) over the same readers as the API.

``/login`` takes a token and opens a session: the cookie holds a random session id (stored
hashed, with its expiry), never the token; HttpOnly, SameSite=Lax, Secure under
``serving.https``;
``/reps/{rep_id}`` lists the rep's actions (alerts first) with forms that record the
outcome. Forms are parsed from ``application/x-www-form-urlencoded`` bodies directly
(no multipart dependency) and validated with the API's own ``OutcomeIn``.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from serving import views
from serving.auth import SESSION_COOKIE, close_session, open_session, principal_for
from serving.db import read as db_read
from serving.db.action_pages import rep_actions
from serving.db.events import FOLLOW_UP
from serving.deps import EngineDep, OptionalPrincipalDep, Services, ServicesDep
from serving.routes.api import save_outcome
from serving.schemas import OutcomeIn

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
STATUS_LABELS = {"done": "Done", "declined": "Declined", "no_answer": "No answer"}


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path)}", status_code=status.HTTP_303_SEE_OTHER)


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
    form = await _form(request)
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
def reps_index(request: Request, principal: OptionalPrincipalDep, engine: EngineDep):
    """Managers: every rep of the latest run."""
    if principal is None:
        return _login_redirect("/reps")
    if not principal.is_manager:
        return RedirectResponse(f"/reps/{principal.rep_id}", status_code=status.HTTP_303_SEE_OTHER)
    return templates.TemplateResponse(
        request, "reps.html", {"reps": db_read.rep_ids(engine), "principal": principal}
    )


def _field(loc) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "form"


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
    size = services.settings.serving.page_size
    result = views.action_page(rep_id, rep_actions(services.engine, rep_id, page, size), page, size)
    context = {
        "data": result,
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
    """A rep's ranked list with risk, predicted NPS, reasons, the action and outcome forms."""
    if principal is None:
        return _login_redirect(f"/reps/{rep_id}")
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
        return _login_redirect(f"/reps/{rep_id}")
    form = await _form(request)
    page = int(form.get("page") or 1) if (form.get("page") or "1").isdigit() else 1
    fields = {
        k: (form.get(k) or None)
        for k in ("customer_id", "action_id", "status", "decline_reason", "customer_response")
    }
    try:
        body = OutcomeIn(**fields)
        await run_in_threadpool(save_outcome, services, principal, body)
    except (ValidationError, RequestValidationError) as err:
        error = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in err.errors())
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
    except HTTPException as err:
        error, code = str(err.detail), err.status_code
    else:
        position = form.get("position") or ""
        anchor = f"#item-{position}" if position.isdigit() else ""
        return RedirectResponse(
            f"/reps/{rep_id}?page={page}&saved={position or 0}{anchor}", status_code=status.HTTP_303_SEE_OTHER
        )
    render = partial(_render_list, request, services, principal, rep_id, page, error=error, code=code)
    return await run_in_threadpool(render)
