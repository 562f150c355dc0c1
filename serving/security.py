"""HTTP hardening of every response and request, as pure ASGI layers (no per-request task).

``SecurityHeaders`` adds the browser protections to every response: a Content-Security-Policy
with no inline script (the reps' page has none; its CSS and the docs' start-up script are
files under ``/static``), no framing, no MIME sniffing, no referrer, and ``Cache-Control:
no-store`` on everything but the static assets, so no customer data lands in a shared or
browser cache. ``BodyLimit`` refuses a request body over ``serving.max_body_bytes`` with
413 before any route (and so before authentication) reads it: at once from its
Content-Length, else by counting the bytes as they stream in.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from starlette.responses import JSONResponse

from serving.routes.docs import ASSETS_URL, STATIC_URL

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI and ReDoc set inline styles, and ReDoc searches in a worker made from a blob.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
CACHEABLE = (ASSETS_URL + "/", STATIC_URL + "/")  # files that hold no customer data


def _headers(csp: str, https: bool) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": csp,
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }
    if https:
        headers["strict-transport-security"] = "max-age=31536000"
    return [(k.encode(), v.encode()) for k, v in headers.items()]


class SecurityHeaders:
    """Adds the headers at ``http.response.start``; the header lists are built once."""

    def __init__(self, app, https: bool = False):
        self.app = app
        self.page, self.docs = _headers(PAGE_CSP, https), _headers(DOCS_CSP, https)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        extra = self.docs if path in DOCS_PATHS else self.page
        no_store = not path.startswith(CACHEABLE)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.extend(extra)
                if no_store and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI re-raises an ``HTTPException`` met while reading a body,
    so the route answers 413 as it answers any ``HTTPException``."""

    def __init__(self, limit: int):
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"request body exceeds the limit of {limit} bytes (serving.max_body_bytes)",
        )


def _content_length(scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class BodyLimit:
    """413 for a body over ``limit`` bytes, whatever the route and before any authentication."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _content_length(scope)
        if length is not None and (length < 0 or length > self.limit):
            err = BodyTooLarge(self.limit) if length > 0 else HTTPException(400, "invalid Content-Length")
            return await JSONResponse({"detail": err.detail}, err.status_code)(scope, receive, send)
        received, started = 0, False

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as err:  # a reader other than FastAPI's let it through
            if started:
                raise
            await JSONResponse({"detail": err.detail}, err.status_code)(scope, receive, send)
