"""End to end in a real headless Chromium: sign in, see the list, record an outcome, see it saved.

Debian's `chromium` driven by Playwright for Python through ``executable_path``, against
`cem serve` running in a child process. Skips locally without chromium; fails in CI.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pandas as pd
import pytest

from serving.auth import issue_tokens
from serving.db.schema import engine_for
from serving.db.write import write_scoring_run
from serving.routes.forms import NO_STATUS
from tests.servers import require_binary
from tests.serving.conftest import DAY2, owner
from tests.serving.factory import make_run
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


# ------------------------------------------------------------ the customer's page and the manager's view

FOLLOW = "C0000004"  # an R001 customer given an alert and no planned action in ``paged_run``


@pytest.fixture
def paged_run(settings):
    """A run whose customers carry a dated comment and their channels, and an alert on ``FOLLOW``;
    tokens for R001 and the manager."""
    run = make_run(DAY2, seed=2)
    c = run.customers
    c["latest_comment"] = "still waiting for the engineer"
    c["latest_comment_at"] = pd.Timestamp("2025-01-02 09:30")
    c["contact_channels"] = json.dumps({"call": "ok", "email": "opted_out"})
    run.actions = run.actions[run.actions["customer_id"] != FOLLOW].reset_index(drop=True)
    c.loc[c["customer_id"] == FOLLOW, ["recommended_action", "expected_value"]] = [None, float("nan")]
    c["alert"] = None
    c.loc[c["customer_id"] == FOLLOW, "alert"] = "usage fell 60 % last month"
    run.alerts = pd.DataFrame({"customer_id": [FOLLOW], "rep_id": ["R001"], "kind": ["usage_drop"],
                               "reason": ["usage fell 60 % last month"]})
    engine = engine_for(settings)
    write_scoring_run(engine, run)
    return SimpleNamespace(run=run, tokens=issue_tokens(engine, ["R001"]))


def _sign_in(page, base: str, token: str, path: str) -> None:
    page.goto(f"{base}{path}")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")


def checked_screenshot(page, path) -> None:
    """A full-page screenshot of the page as the rep sees it (kept in the test's folder), checked:
    a real PNG of a laid-out page, not blank: a page that fails to render or style shows up
    as one flat colour or a sliver."""
    from PIL import Image

    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 200, image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 20, f"{path.name}: {len(colours)} colours: blank page?"


def _csp_watch(page) -> list[str]:
    refused = []
    page.on("console", lambda m: refused.append(f"{page.url}: {m.text}")
            if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    return refused


def test_a_rep_opens_a_customer_records_an_outcome_and_follows_up_an_alert(browser, settings, paged_run,
                                                                             tmp_path):
    env = {"CEM_SERVING__MODEL_REFRESH_SECONDS": "3600"}
    with live_service(settings.data_dir, tmp_path / "serve.log", env) as base:
        page = browser.new_page()
        refused = _csp_watch(page)
        _sign_in(page, base, paged_run.tokens["R001"], "/reps/R001")

        first = page.locator("section.item").nth(1)           # the alert is first, a planned action next
        cid = first.get_attribute("data-customer")
        first.locator(f'a[href="/customers/{cid}"]').click()
        page.wait_for_url(f"{base}/customers/{cid}")
        assert page.locator('time[datetime="2025-01-02"]').count() == 1            # the comment's date
        assert "still waiting for the engineer" in page.inner_text("blockquote.comment")
        assert page.locator("ul.channels li.ok").count() == 1 == page.locator("ul.channels li.no").count()
        checked_screenshot(page, tmp_path / "customer.png")

        form = page.locator("form.outcome")
        assert form.locator("select[name=status]").input_value() == ""            # nothing chosen for the rep
        form.locator("button[type=submit]").click()                                # saved without a choice
        page.wait_for_selector("p.notice.error")
        assert NO_STATUS in page.inner_text("p.notice.error")
        page.locator("form.outcome select[name=status]").select_option("done")
        page.locator("form.outcome input[name=customer_response]").fill("booked a visit")
        page.locator("form.outcome button[type=submit]").click()
        page.wait_for_url(f"{base}/customers/{cid}?saved=true")
        assert "Outcome saved." in page.inner_text("p.notice.ok")
        assert "booked a visit" in page.inner_text("table.summary")                # in the recent outcomes

        page.goto(f"{base}/reps/R001")
        checked_screenshot(page, tmp_path / "rep_list.png")
        alerted = page.locator(f'section.item[data-customer="{FOLLOW}"]')
        assert alerted.get_attribute("id") == "item-1" and "Alert: " in alerted.inner_text()
        button = alerted.locator("button[type=submit]")
        assert button.inner_text() == "Follow up"
        alerted.locator("select[name=status]").select_option("no_answer")
        button.click()
        page.wait_for_selector("p.notice.ok")
        followed = page.locator(f'section.item[data-customer="{FOLLOW}"]')
        text = followed.inner_text()
        assert "Alert (resolved): " in text and "Recorded: No answer" in text

        page.goto(f"{base}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
        checked_screenshot(page, tmp_path / "docs.png")
        assert refused == []


def test_the_manager_sorts_the_reps_by_a_column(browser, settings, runs, tokens, tmp_path):
    with live_service(settings.data_dir, tmp_path / "serve.log") as base:
        page = browser.new_page()
        refused = _csp_watch(page)
        _sign_in(page, base, tokens["manager"], "/reps")

        def column(n: int) -> list[float]:
            cells = page.locator(f"tbody tr td:nth-child({n})").all_inner_texts()
            return [float(t.replace(",", "")) for t in cells]

        page.click('th a[href*="sort=expected_value"]')
        page.wait_for_url("**sort=expected_value&desc=true")
        shown = column(5)
        assert len(shown) == 3 and shown == sorted(shown, reverse=True)
        assert page.get_attribute('th a[href*="sort=expected_value"]', "aria-sort") == "descending"
        page.click('th a[href*="sort=expected_value"]')                          # again: the other way
        page.wait_for_url("**sort=expected_value&desc=false")
        assert column(5) == sorted(shown)
        checked_screenshot(page, tmp_path / "manager.png")
        assert refused == []
