"""Screenshots of the real pages for the README, from a local server (`make run`, or `manage.py serve` on a
seeded demo):

    python scripts/screenshots.py [BASE_URL] [OUT_DIR] [GROUP…] [--admin USER:PASSWORD] [--reader USER:PASSWORD]

BASE_URL defaults to http://127.0.0.1:8000 (`make run`), OUT_DIR to docs/screenshots. GROUPs: pages, viewer,
leaderboard, study, participant (default: all). Drives Debian's Chromium through Playwright (never `playwright
install`). Each role has a browser context of its own, logged in once: the demo's staff user `admin` (password
admin, or DEMO_ADMIN_PASSWORD) for the plain pages, the viewer, the leaderboards (their run lists and the
downstream curves need a login) and the study's editor pages; the demo's fresh reader `reader` for the reader
workspace. The participant group signs up a new account on the demo, joins `t1-to-t2` and submits the inputs
as outputs (one of the phase's 3 submissions a day for that account).
"""

import argparse
import io
import os
import time
import urllib.request
import zipfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


GROUPS = ("pages", "viewer", "leaderboard", "study", "participant")
DEFAULT_BASE = "http://127.0.0.1:8000"


def logged_in(browser, base, username, password, viewport=None):
    """A new browser context logged in as `username`, and its first page. Fails loudly on a wrong password
    (the login page again) rather than taking screenshots of what an anonymous visitor sees."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/accounts/login/" in page.url:
        raise SystemExit(f"could not log in to {base} as {username!r} (wrong password, or no demo seeded?)")
    return context, page


def wide_page(context, width, height):
    """Another page of the same (logged-in) context, at its own window size."""
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    return page


def main(base, out, groups=GROUPS, admin=("admin", "admin"), reader=("reader", "reader")):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        urllib.request.urlopen(f"{base}/", timeout=10).close()
    except OSError as exc:
        raise SystemExit(f"no server at {base} ({exc}): start one with `make run` first") from None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        staff, page = logged_in(browser, base, *admin)
        if "pages" in groups:
            page_shots(page, base, out)
        if "viewer" in groups:
            viewer_shots(page, base, out)
        if "leaderboard" in groups:
            leaderboard_shots(staff, base, out)
        if "study" in groups:
            study_shots(page, browser, base, out, reader)
        if "participant" in groups:
            participant_shots(browser, base, out)
        staff.close()
        browser.close()


def page_shots(page, base, out):
    """The plain pages as admin: tasks, a task, a dataset, a case, a model, runs."""
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
        page.screenshot(path=str(out / name), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height})
        print("wrote", out / name)


def leaderboard_shots(context, base, out):
    """The leaderboards (wide: the tiers side by side) with their plots, and the downstream curves, in the
    staff context (the task page's run list, which leads to the curves, needs a login)."""
    page = wide_page(context, 2300, 1000)
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
    page = wide_page(context, 1280, 900)
    page.goto(f"{base}/tasks/t1-to-t2/")
    run = page.locator("#runs a", has_text="U-Net (L1)").first.get_attribute("href")
    page.goto(f"{base}{run}downstream/curves/")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "downstream_curves.png"), full_page=True)
    print("wrote", out / "downstream_curves.png")
    # The hallucination probes of the translation runs (index, detectors' FROC, the SD checks).
    page.goto(f"{base}/tasks/t1-to-t2/probes/")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "probes.png"), full_page=True)
    print("wrote", out / "probes.png")
    # A stochastic probe run's most hallucinated probe in the probe viewer (output, error and SD maps, the truth
    # region outlined), reached as an organiser does: the probe page's count of probe cases, then the first row.
    rows = page.locator("#probe-index tbody tr")
    stochastic = [i for i in range(rows.count()) if int(rows.nth(i).locator("td").nth(2).inner_text() or 1) > 1]
    link = rows.nth(stochastic[0] if stochastic else 0).locator("a.probe-cases-link")
    page.goto(base + link.get_attribute("href"))
    page.goto(base + page.locator("#probe-case-table tbody tr a").first.get_attribute("href"))
    page.wait_for_selector('.cs-viewer[data-ready="1"]', timeout=60_000)
    page.wait_for_function("() => document.querySelector('.cs-viewport[data-overlay-voxels]') !== null")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "probe_case.png"), full_page=True)
    print("wrote", out / "probe_case.png")
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


def study_shots(page, browser, base, out, reader_login):
    """The demo reader study: the editor's pages (as admin), then the workspace as the fresh demo reader, in a
    context of their own."""
    page.goto(f"{base}/studies/")
    study = page.locator("#studies a").first.get_attribute("href")
    for name, path in (("study.png", study), ("study_analysis.png", f"{study}analysis/")):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        height = min(page.evaluate("document.body.scrollHeight"), 2400)
        page.screenshot(path=str(out / name), clip={"x": 0, "y": 0, "width": 1280, "height": height}, full_page=True)
        print("wrote", out / name)
    context, reader = logged_in(browser, base, *reader_login, viewport={"width": 1440, "height": 900})
    reader.goto(f"{base}/studies/")
    reader.locator("#reading a.button").first.click()
    reader.wait_for_selector("[data-ready='1']", timeout=60_000)
    reader.keyboard.press("s")
    reader.keyboard.press("4")
    reader.wait_for_timeout(300)
    reader.screenshot(path=str(out / "reader_workspace.png"))
    print("wrote", out / "reader_workspace.png")
    context.close()


def participant_shots(browser, base, out):
    """A participant's way through the demo: sign up, the token page, join `t1-to-t2`, submit outputs, and
    the participation section and "My submissions" once the submission is validated, in a context of its own
    (signing up logs the new account in)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    username = f"participant-{int(time.time())}"
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.org")
    page.fill("#id_password", "a-long-passphrase-2026")
    shoot(page, out / "signup.png", 900)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/accounts/token/")
    shoot(page, out / "token.png", 700)
    page.goto(f"{base}/tasks/t1-to-t2/")
    page.click("#join-form button")
    page.wait_for_selector("#submission-form")
    inputs = page.request.get(f"{base}/api/tasks/t1-to-t2/inputs/").body()
    outputs = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(inputs)) as source, zipfile.ZipFile(outputs, "w") as archive:
        for name in source.namelist():  # the T1 inputs as T2 "outputs": an identity baseline
            archive.writestr(name, source.read(name))
    page.fill("#submission-form input[name=name]", "identity, from home")
    page.set_input_files(
        "#submission-form input[type=file]",
        {"name": "outputs.zip", "mimeType": "application/zip", "buffer": outputs.getvalue()},
    )
    page.click("#submission-form button[type=submit]")
    page.wait_for_url(f"{base}/runs/*/")
    run_id = page.url.rstrip("/").split("/")[-1]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the worker validates the submission (after any jobs ahead of it)
        if page.request.get(f"{base}/api/runs/{run_id}/").json()["is_final"]:
            break
        time.sleep(2)
    page.goto(f"{base}/tasks/t1-to-t2/")
    page.wait_for_load_state("networkidle")
    section = page.locator("#participation")
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(out / "task_participation.png"))
    print("wrote", out / "task_participation.png")
    page.goto(f"{base}/submissions/mine/")
    shoot(page, out / "my_submissions.png", 600)
    context.close()


def shoot(page, path, max_height):
    page.wait_for_load_state("networkidle")
    height = min(page.evaluate("document.body.scrollHeight"), max_height)
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": height}, full_page=True)
    print("wrote", path)


def credentials(value):
    username, sep, password = value.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("USER:PASSWORD")
    return username, password


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Screenshots of the real pages for the README, from a local server.")
    parser.add_argument("base", nargs="?", default=DEFAULT_BASE, help=f"the server (default {DEFAULT_BASE})")
    parser.add_argument("out", nargs="?", default="docs/screenshots", help="where the PNGs go")
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"of {', '.join(GROUPS)} (default: all)")
    parser.add_argument("--admin", type=credentials, default=("admin", os.environ.get("DEMO_ADMIN_PASSWORD", "admin")))
    parser.add_argument("--reader", type=credentials, default=("reader", "reader"))
    args = parser.parse_args()
    if unknown := sorted(set(args.groups) - set(GROUPS)):
        parser.error(f"unknown group(s) {', '.join(unknown)}: choose among {', '.join(GROUPS)}")
    main(args.base.rstrip("/"), args.out, tuple(args.groups) or GROUPS, admin=args.admin, reader=args.reader)
