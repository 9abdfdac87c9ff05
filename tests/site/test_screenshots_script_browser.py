"""scripts/screenshots.py logs each role in with a browser context of its own (the leaderboard's run list,
the downstream curves and the study pages need a login) and refuses to go on logged out."""

import importlib.util
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import sync_playwright

from tests.support.browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def screenshots_module():
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_role_gets_a_logged_in_context_and_a_wrong_password_stops_the_script(site):
    get_user_model().objects.create_user("shooter", password="shooter-pass-123", is_staff=True)
    get_user_model().objects.create_user("reader1", password="reader-pass-123")
    shots = screenshots_module()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            staff, page = shots.logged_in(browser, site.url, "shooter", "shooter-pass-123")
            wide = shots.wide_page(staff, 2300, 1000)  # the leaderboard's page: the same login
            wide.goto(f"{site.url}/submissions/mine/")  # a page that sends a visitor to log in
            assert "/accounts/login/" not in wide.url
            assert wide.viewport_size == {"width": 2300, "height": 1000}
            assert "shooter" in wide.locator("header .user").inner_text()
            reader, reader_page = shots.logged_in(browser, site.url, "reader1", "reader-pass-123")
            reader_page.goto(f"{site.url}/submissions/mine/")
            assert "reader1" in reader_page.locator("header .user").inner_text()  # a context of its own
            page.reload()
            assert "shooter" in page.locator("header .user").inner_text()
            with pytest.raises(SystemExit, match="could not log in"):
                shots.logged_in(browser, site.url, "shooter", "wrong")
        finally:
            browser.close()
