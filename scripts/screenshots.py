"""Screenshots of the real pages for the README: `python scripts/screenshots.py BASE_URL OUT_DIR`.

Drives Debian's Chromium through Playwright (never `playwright install`)."""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def main(base, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "admin")
        page.click("button[type=submit]")
        shots = {
            "tasks.png": "/",
            "task.png": "/tasks/t1-to-t2/",
            "dataset.png": "/datasets/1/",
            "case.png": None,
            "model.png": None,
            "run.png": None,
            "run_stochastic.png": None,
        }
        page.goto(f"{base}/tasks/t1-to-t2/")
        shots["model.png"] = page.locator("table.grid a").nth(0).get_attribute("href")
        shots["run.png"] = page.locator("#runs a", has_text="U-Net (L1)").first.get_attribute("href")
        shots["run_stochastic.png"] = page.locator("#runs a", has_text="Stochastic").first.get_attribute("href")
        page.goto(f"{base}/datasets/1/")
        shots["case.png"] = page.locator("table.grid a").nth(0).get_attribute("href")
        for name, path in shots.items():
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            height = min(page.evaluate("document.body.scrollHeight"), 2200)  # long tables: the top is enough
            page.screenshot(
                path=str(out / name), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height}
            )
            print("wrote", out / name)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), sys.argv[2])
