"""One customer's page (``/customers/{customer_id}``, HTML): tags, churn risk and its tier,
predicted satisfaction, value at risk, reasons, the recommended action and why (or the alert
and its reason), the latest comment with its date, the channels the customer may be reached
on, recent actions and outcomes, and the outcome form.

Access as the API's: a rep sees only their own customers, a manager all; an unknown id and
another rep's customer get the very same 404, so ids cannot be probed.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from serving import page_views, views
from serving.db import read as db_read
from serving.db.events import FOLLOW_UP
from serving.deps import OptionalPrincipalDep, Services, ServicesDep
from serving.logsafe import mark_sensitive
from serving.routes.forms import STATUS_LABELS, login_redirect, read_form, save_form_outcome, templates

router = APIRouter(include_in_schema=False)
NOT_FOUND_PAGE = "No such customer on your list."


def _not_found(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "error.html", {"message": NOT_FOUND_PAGE}, status_code=status.HTTP_404_NOT_FOUND
    )


def _page_context(services: Services, principal, customer_id: str) -> dict | None:
    """Everything the page shows, or None when the caller may not see the customer (or none exists)."""
    view = db_read.customer_view(services.engine, customer_id)
    if view is None or not principal.may_see(view.get("rep_id")):
        return None
    model = views.stored_view(view, show_plan=principal.is_manager)
    alert = model.open_alerts[0] if model.open_alerts else None
    action = model.recommended_action
    days = services.settings.serving.comment_days
    return {
        "c": model,
        "satisfaction_label": page_views.satisfaction_label(model.satisfaction_scale),
        "alert": alert,
        "form_action": action.action_id if action else (FOLLOW_UP if alert else None),
        "comment": page_views.comment_of(view, view["run"].as_of, days),
        "comment_days": days,
        "channels": page_views.channels(view),
        "history": db_read.customer_history(services.engine, customer_id, principal.is_manager),
        "principal": principal,
        "status_labels": STATUS_LABELS,
        "follow_up": FOLLOW_UP,
    }


def _render(request: Request, services: Services, principal, customer_id: str,
            saved: bool = False, error: str | None = None, code: int = 200) -> HTMLResponse:
    context = _page_context(services, principal, customer_id)
    if context is None:
        return _not_found(request)
    context.update(saved=saved, error=error)
    return templates.TemplateResponse(request, "customer.html", context, status_code=code)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_page(request: Request, customer_id: str, principal: OptionalPrincipalDep,
                        services: ServicesDep, saved: bool = False):
    """One customer: scores, reasons, action, latest comment, channels, history and the outcome form."""
    mark_sensitive(customer_id)
    if principal is None:
        return login_redirect(f"/customers/{quote(customer_id, safe='')}")
    return await run_in_threadpool(_render, request, services, principal, customer_id, saved)


@router.post("/customers/{customer_id}/outcomes", response_class=HTMLResponse)
async def customer_outcome(request: Request, customer_id: str, principal: OptionalPrincipalDep,
                           services: ServicesDep):
    """Record an outcome from the customer's page; show the page again, saved or with the error."""
    mark_sensitive(customer_id)
    if principal is None:
        return login_redirect(f"/customers/{quote(customer_id, safe='')}")
    form = await read_form(request)
    form["customer_id"] = customer_id
    error, code = await save_form_outcome(services, principal, form)
    if error is None:
        return RedirectResponse(f"/customers/{quote(customer_id, safe='')}?saved=true",
                                status_code=status.HTTP_303_SEE_OTHER)
    if code == status.HTTP_404_NOT_FOUND:
        return _not_found(request)
    return await run_in_threadpool(_render, request, services, principal, customer_id, False, error, code)
