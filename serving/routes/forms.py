"""What the reps' HTML pages share: the templates, form bodies, the sign-in redirect and the
outcome form (validated with the API's own ``OutcomeIn`` and saved by the API's own function)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from serving.deps import Services
from serving.routes.api import save_outcome
from serving.schemas import OutcomeIn

templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
STATUS_LABELS = {"done": "Done", "declined": "Declined", "no_answer": "No answer"}
NO_STATUS = "status: choose the outcome (Done, Declined or No answer) before saving"
OUTCOME_FIELDS = ("customer_id", "action_id", "status", "decline_reason", "customer_response")


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (no multipart dependency)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path)}", status_code=status.HTTP_303_SEE_OTHER)


def _field(loc) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "form"


async def save_form_outcome(services: Services, principal, form: dict[str, str]) -> tuple[str | None, int]:
    """Save the form's outcome: (None, 303) when saved, else the error naming the field and the
    status code the API would give. An outcome left unchosen is refused with its own message."""
    fields = {k: (form.get(k) or None) for k in OUTCOME_FIELDS}
    if not fields["status"]:
        return NO_STATUS, status.HTTP_422_UNPROCESSABLE_CONTENT
    try:
        body = OutcomeIn(**fields)
        await run_in_threadpool(save_outcome, services, principal, body)
    except (ValidationError, RequestValidationError) as err:
        error = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in err.errors())
        return error, status.HTTP_422_UNPROCESSABLE_CONTENT
    except HTTPException as err:
        return str(err.detail), err.status_code
    return None, status.HTTP_303_SEE_OTHER
