"""Browser protections on every response, the body limit ahead of authentication, offline docs."""

from __future__ import annotations

import asyncio
import re

import pytest

from serving.security import BodyLimit
from tests.serving.conftest import auth

FORM = {"content-type": "application/x-www-form-urlencoded"}


# ------------------------------------------------------------------ headers


def _assert_protected(r, no_store: bool = True):
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    script = csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in script
    if no_store:
        assert r.headers["cache-control"] == "no-store"


def test_every_kind_of_response_carries_the_headers(client, tokens):
    head = auth(tokens["manager"])
    client.post("/login", content=f"token={tokens['R001']}", headers=FORM)
    responses = [
        client.get("/v1/customers/C0000001", headers=head),            # fast path
        client.get("/v1/customers/C0000001?fresh=true&x=1", headers=head),  # FastAPI's route
        client.get("/v1/customers/NOPE", headers=head),                 # an error
        client.get("/v1/reps/R001/actions", headers=head),
        client.get("/reps/R001"),                                       # the page
        client.get("/login"),
        client.get("/healthz"),
        client.get("/docs"),
    ]
    for r in responses:
        _assert_protected(r)


def test_the_page_has_no_inline_script_or_style(client, tokens):
    client.post("/login", content=f"token={tokens['R001']}", headers=FORM)
    page = client.get("/reps/R001")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self';" in csp
    assert "<script" not in page.text and "<style" not in page.text and " style=" not in page.text
    css = client.get("/static/cem.css")
    assert css.status_code == 200 and "cache-control" not in css.headers    # no customer data: cacheable
    _assert_protected(css, no_store=False)


# ------------------------------------------------------------------ body limit


def test_a_body_over_the_limit_is_413_before_authentication(client, settings):
    limit = settings.serving.max_body_bytes
    big = b"x" * (limit + 1)
    for path in ("/v1/score", "/v1/outcomes", "/login", "/reps/R001/outcomes"):
        r = client.post(path, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413, path
        assert "serving.max_body_bytes" in r.json()["detail"]
        _assert_protected(r)
    assert client.post("/v1/outcomes", content=b"{}", headers={"content-type": "application/json"}
                       ).status_code == 401                               # under the limit: auth as usual
    chunked = client.post("/v1/outcomes", content=(b"x" * 65536 for _ in range(limit // 65536 + 2)),
                          headers={"content-type": "application/json"})    # no Content-Length: counted
    assert chunked.status_code == 413 and "max_body_bytes" in chunked.json()["detail"]


def _call(app, headers, chunks):
    """Run an ASGI app on one request whose body arrives in ``chunks``; (status, chunks read)."""
    sent, pulled = [], []
    last = len(chunks) - 1
    queue = [{"type": "http.request", "body": c, "more_body": i < last} for i, c in enumerate(chunks)]

    async def receive():
        pulled.append(1)
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], len(pulled)


async def _reads_everything(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("length", [None, b"40"])
def test_a_streamed_body_is_counted_and_cut_at_the_limit(length):
    app = BodyLimit(_reads_everything, limit=2048)
    headers = [] if length is None else [(b"content-length", length)]  # no length, or a lying one
    status, pulled = _call(app, headers, [b"x" * 1024] * 100)
    assert status == 413 and pulled == 3                # stopped at the chunk that crossed the limit
    assert _call(app, [], [b"x" * 1024, b"x" * 1024]) == (200, 2)


def test_a_declared_length_over_the_limit_is_refused_unread():
    app = BodyLimit(_reads_everything, limit=2048)
    assert _call(app, [(b"content-length", b"42000000")], [b"x"]) == (413, 0)
    assert _call(app, [(b"content-length", b"many")], [b"x"]) == (400, 0)


# ------------------------------------------------------------------ offline docs


def test_docs_and_redoc_use_only_local_assets(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "http" not in html, page                                 # no CDN, no absolute URL
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, page
        for url in assets:
            r = client.get(url)
            assert r.status_code == 200 and len(r.content) > 100, url
    assert "SwaggerUIBundle" in client.get("/docs-assets/swagger-ui-bundle.js").text
    assert client.get("/openapi.json").status_code == 200
