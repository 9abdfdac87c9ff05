"""Headless Chromium for the browser tests: Debian's `chromium` driven by Python Playwright.

Never `playwright install`: the system browser is used. `chromium_page(webgl=True)` adds
SwiftShader (software WebGL), so WebGL pages render on machines without a GPU.
"""

import contextlib
import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def have_chromium():
    return bool(shutil.which("chromium"))


class PolicyViolation(AssertionError):
    """The page did something the site's Content-Security-Policy forbids."""


@contextlib.contextmanager
def chromium_page(webgl=False, viewport=None):
    """Playwright's sync API runs an event loop in this thread: open it only after the test's
    database work, so no query runs in (and no connection is left behind by) that loop's context.

    Every page is checked against the site's Content-Security-Policy: a violation Chromium reports on
    the console fails the test when the page closes."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS + (WEBGL_ARGS if webgl else []))
        violations = []
        try:
            page = browser.new_page(**({"viewport": viewport} if viewport else {}))
            page.on(
                "console",
                lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
            )
            yield page
        finally:
            browser.close()
        if violations:
            raise PolicyViolation("The page broke its Content-Security-Policy:\n" + "\n".join(violations[:5]))
