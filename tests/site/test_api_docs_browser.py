"""The API docs pages in headless Chromium: Swagger UI and Redoc draw the schema's operations, and nothing
they ask for leaves this site (Redoc's bundle asks for Redocly's logo from cdn.redoc.ly: the page's own
policy refuses it in the browser, before any connection)."""

from urllib.parse import urlsplit

import pytest

from tests.support.browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("path", "drawn"),
    [
        ("/api/docs/", '.opblock-summary-path[data-path="/api/read/{uid}/state/"]'),
        ("/api/redoc/", '[id="tag/arrays/operation/arrays_case_images_data_retrieve"]'),
    ],
)
def test_the_docs_page_draws_the_operations_and_reaches_no_other_host(site, path, drawn):
    from playwright.sync_api import sync_playwright

    site_host = urlsplit(site.url).netloc
    outside, refused, errors = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "request", lambda r: outside.append(r.url) if urlsplit(r.url).netloc not in ("", site_host) else None
            )
            page.on("requestfailed", lambda r: refused.append((r.url, r.failure)))
            page.on("response", lambda r: errors.append(f"{r.url} answered") if r.url in outside else None)
            page.goto(site.url + path)
            page.wait_for_selector(drawn, state="attached", timeout=60_000)
            assert page.get_by_text("MedGen Eval API").count() >= 1
            page.wait_for_timeout(500)  # late requests (images) after the first paint
        finally:
            browser.close()
    assert errors == []
    # Chromium reports a request its Content-Security-Policy refused as failed with "csp": it never left.
    blocked = {url for url, failure in refused if failure == "csp"}
    assert sorted(set(outside) - blocked) == [], "a docs page reached another host"
