"""End to end in a real headless Chromium: sign in, see the list, record an outcome, see it saved.

Debian's `chromium` driven by Playwright for Python through ``executable_path``, against
`cem serve` running in a child process. Skips locally without chromium; fails in CI.
"""

from __future__ import annotations

import httpx
import pytest

from tests.servers import require_binary
from tests.serving.conftest import owner
from tests.serving.live import live_service

pytestmark = pytest.mark.slow
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MARKUP = "<script>alert('pwned')</script><b>not bold</b>"


@pytest.fixture
def browser():
    chromium = require_binary("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_sign_in_see_the_list_record_an_outcome_and_see_it_saved(browser, settings, runs, tokens, tmp_path):
    rep = owner(runs.latest, "C0000001")
    env = {"CEM_SERVING__MODEL_REFRESH_SECONDS": "3600"}
    with live_service(settings.data_dir, tmp_path / "serve.log", env) as base:
        # a detractor's answer with markup in the comment puts C0000001 on top of the rep's list
        event = {"type": "survey", "customer_id": "C0000001", "nps": 1, "comment": MARKUP}
        manager = {"Authorization": f"Bearer {tokens['manager']}"}
        r = httpx.post(f"{base}/v1/events", json=event, headers=manager)
        assert r.status_code == 200 and r.json()["alert_raised"]
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        page.goto(f"{base}/reps/{rep}")                      # not signed in: sent to the sign-in form
        assert "/login" in page.url
        page.fill("#token", tokens[rep])
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/reps/{rep}")
        assert page.inner_text("h1") == f"Actions for {rep}"

        top = page.locator("section.item").first
        assert top.get_attribute("data-customer") == "C0000001"
        assert "Alert: Detractor" in top.inner_text()
        assert top.locator("blockquote.comment").first.inner_text() == MARKUP   # shown as text ...
        assert top.locator("b").count() == 0 and dialogs == []                  # ... never run as markup
        assert page.locator("section.item").count() > 1

        top.locator("select[name=status]").select_option("declined")
        top.locator("input[name=decline_reason]").fill("switching provider")
        top.locator("input[name=customer_response]").fill("call me next year")
        top.locator("button[type=submit]").click()
        page.wait_for_selector("p.notice.ok")
        assert "Outcome saved." in page.inner_text("p.notice.ok")
        saved = page.locator('section.item[data-customer="C0000001"]')
        assert "Recorded: Declined" in saved.inner_text() and "switching provider" in saved.inner_text()
        assert "Alert (resolved): Detractor" in saved.inner_text()              # the outcome resolved it

        page.reload()                                                             # stored, not just shown
        assert "Recorded: Declined" in page.locator('section.item[data-customer="C0000001"]').inner_text()


def test_swagger_ui_and_redoc_render_offline_under_the_csp(browser, settings, runs, tmp_path):
    """Every request the pages make goes to the service itself; none is refused by the CSP."""
    with live_service(settings.data_dir, tmp_path / "serve.log") as base:
        page = browser.new_page()
        outside, refused = [], []
        page.on("request", lambda r: None if r.url.startswith(base) or r.url.startswith(("data:", "blob:"))
                else outside.append(r.url))
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{base}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "CEM scoring service" in page.inner_text(".swagger-ui .info .title")
        assert page.locator(".opblock").count() > 5                    # the routes are listed
        page.goto(f"{base}/redoc")
        page.wait_for_selector("h1", timeout=20_000)
        assert "CEM scoring service" in page.inner_text("h1")
        # ReDoc's bundle links its maker's logo from a CDN: the CSP (img-src 'self') blocks it
        assert [u for u in outside if not u.endswith("/logo-mini.svg")] == []
        assert [m for m in refused if "logo-mini.svg" not in m] == []
