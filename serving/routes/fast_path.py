"""The customer view's hot path: ``GET /v1/customers/{id}`` answered ahead of FastAPI's router.

Profiled in the running server under 200 requests/s (cProfile on the event loop),
FastAPI's and Starlette's routing, parameter parsing and middleware took about two
thirds of the CPU of this request, and the view itself (bytes from memory) a tenth.
This ASGI layer answers the request's plain forms (no query string, ``?fresh=true``,
``?fresh=false``) with the route's own function, ``api.customer_body``: the same access
rules, bodies and errors (rendered as FastAPI renders an ``HTTPException``). Any other
form (another query string, another method, a longer path) goes on to FastAPI, whose
route also documents the request in OpenAPI. It sits inside ``MetricsMiddleware``, and
sets the route and path parameters as the router would, so metrics and log masking see
the request the same way.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from serving.routes.api import customer_body, json_bytes

PREFIX = "/v1/customers/"
ROUTE = PREFIX + "{customer_id}"
FRESH = {b"": False, b"fresh=false": False, b"fresh=true": True}  # query strings answered here


def customer_of(scope) -> tuple[str, bool] | None:
    """(customer id, fresh) when the request is one this layer answers, else None."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    customer_id = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
    fresh = FRESH.get(scope["query_string"])
    if not customer_id or "/" in customer_id or fresh is None:
        return None
    return customer_id, fresh


class CustomerViewFastPath:
    """Pure ASGI: ``route`` is the FastAPI route of the same request (for the metrics label)."""

    def __init__(self, app, route):
        self.app, self.route = app, route

    async def __call__(self, scope, receive, send):
        found = customer_of(scope)
        if found is None:
            return await self.app(scope, receive, send)
        customer_id, fresh = found
        scope["route"], scope["path_params"] = self.route, {"customer_id": customer_id}
        try:
            response = json_bytes(await customer_body(Request(scope, receive), customer_id, fresh))
        except HTTPException as err:
            response = JSONResponse({"detail": err.detail}, status_code=err.status_code, headers=err.headers)
        await response(scope, receive, send)
