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
        viewer_shots(page, base, out)
        leaderboard_shots(browser, base, out)
        study_shots(page, browser, base, out)
        browser.close()


def leaderboard_shots(browser, base, out):
    """The leaderboards (wide: the tiers side by side) with their plots, and the downstream curves."""
    page = browser.new_page(viewport={"width": 2300, "height": 1000})
    shots = {
        "leaderboard.png": "/tasks/t1-to-t2/leaderboard/",
        "leaderboard_recon.png": "/tasks/recon-4x/leaderboard/",
    }
    for name, path in shots.items():
        page.goto(base + path)
        if "leaderboard" in path:
            page.wait_for_selector('#plots[data-ready*="cases"]', timeout=60_000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(800)
        height = min(page.evaluate("document.body.scrollHeight"), 2000)
        page.screenshot(path=str(out / name), clip={"x": 0, "y": 0, "width": 2300, "height": height}, full_page=True)
        print("wrote", out / name)
    page.close()
    # A run's downstream block on its page and its training curves beside the real→real reference's.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/tasks/t1-to-t2/")
    run = page.locator("#runs a", has_text="U-Net (L1)").first.get_attribute("href")
    page.goto(f"{base}{run}downstream/curves/")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "downstream_curves.png"), full_page=True)
    print("wrote", out / "downstream_curves.png")
    page.close()


def viewer_shots(page, base, out):
    """The Cornerstone3D pages: a stochastic run's case view, a volume case (a few slices down), a comparison."""
    cases = page.request.get(f"{base}/api/cases/?dataset=1").json()["results"]
    datasets = page.request.get(f"{base}/api/datasets/").json()["results"]
    volumes = next(d for d in datasets if "volume" in d["name"].lower())
    volume_case = page.request.get(f"{base}/api/cases/?dataset={volumes['id']}").json()["results"][0]
    page.goto(f"{base}/tasks/t1-to-t2/")
    run_ids = {
        text: page.locator("#runs a", has_text=text).first.get_attribute("href").strip("/").split("/")[-1]
        for text in ("Stochastic", "U-Net (L1)", "Intensity remap")
    }
    shots = {
        "case_view.png": f"/runs/{run_ids['Stochastic']}/cases/{cases[0]['id']}/",
        "case_volume.png": f"/cases/{volume_case['id']}/",
        "case_compare.png": f"/cases/{cases[0]['id']}/compare/"
        f"?a={run_ids['U-Net (L1)']}&b={run_ids['Intensity remap']}",
    }
    for name, path in shots.items():
        page.goto(base + path)
        page.wait_for_selector('.cs-viewer[data-ready="1"]', timeout=60_000)
        if name == "case_volume.png":  # show scrolling: a few slices down
            page.locator(".cs-viewport").first.focus()
            for _ in range(3):
                page.keyboard.press("ArrowDown")
        page.wait_for_timeout(500)
        height = min(page.evaluate("document.body.scrollHeight"), 1100)
        page.screenshot(path=str(out / name), clip={"x": 0, "y": 0, "width": 1280, "height": height}, full_page=True)
        print("wrote", out / name)


def study_shots(page, browser, base, out):
    """The demo reader study: the editor's pages (as admin), then the workspace as the fresh demo reader."""
    page.goto(f"{base}/studies/")
    study = page.locator("#studies a").first.get_attribute("href")
    for name, path in (("study.png", study), ("study_analysis.png", f"{study}analysis/")):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        height = min(page.evaluate("document.body.scrollHeight"), 2400)
        page.screenshot(path=str(out / name), clip={"x": 0, "y": 0, "width": 1280, "height": height}, full_page=True)
        print("wrote", out / name)
    reader = browser.new_page(viewport={"width": 1440, "height": 900})
    reader.goto(f"{base}/accounts/login/")
    reader.fill("#id_username", "reader")
    reader.fill("#id_password", "reader")
    reader.click("button[type=submit]")
    reader.goto(f"{base}/studies/")
    reader.locator("#reading a.button").first.click()
    reader.wait_for_selector("[data-ready='1']", timeout=60_000)
    reader.keyboard.press("s")
    reader.keyboard.press("4")
    reader.wait_for_timeout(300)
    reader.screenshot(path=str(out / "reader_workspace.png"))
    print("wrote", out / "reader_workspace.png")
    reader.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), sys.argv[2])
