"""First visits: the leaderboard and the image viewer in headless Chromium, cold cache, on loopback.

Builds a small benchmark in a throw-away SQLite database (a task of 40 cases of 128 × 128, 6 scored runs:
the leaderboard draws its four plotly plots; the case page mounts the Cornerstone3D viewer), runs
`collectstatic` into a folder of its own and serves the site with `manage.py serve --no-worker` (waitress,
whitenoise, DEBUG off: what `make run` serves). Each visit is a new browser context (an empty cache): the
time is from navigation start to the page being usable — the leaderboard's plots drawn
(`#plots[data-ready*="cases"]`), the viewer mounted with its images (`.cs-viewer[data-ready="1"]`) — with
the bytes that crossed the wire. A second visit in the same context shows what the cache keeps.

`--before REV` serves the same database from that revision's tree too (`git archive`, this tree's venv and
viewer bundle) and prints both: the static set-up before hashed names, immutable caching and plotly's
partial bundle against now, visited in turn in each round (a busy neighbour slows both alike).
Not a timed test: figures vary with the machine; the target is < 1.5 s.

    .venv/bin/python bench/bench_first_visit.py [--before 6c9f6c6] [--visits 5] [--webgl]
Needs /usr/bin/chromium (scripts/install-chromium.sh) and Python Playwright (requirements-dev.txt).
"""

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import setup_django  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
TARGET_S = 1.5

#: Time from navigation start to now, and the bytes fetched (transferSize: 0 for what came from the cache).
MEASURE = """() => {
  const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
  return {ms: performance.now(), bytes: entries.reduce((sum, e) => sum + (e.transferSize || 0), 0),
          requests: entries.filter((e) => e.transferSize > 0).length};
}"""


def seed():
    """The benchmark's world, written straight to the database: (leaderboard path, viewer path)."""
    from tests.support.factories import make_task
    from tests.support.leaderboard_data import populate

    task = make_task(n_cases=40, shape=(1, 128, 128), slug="first-visit")
    populate(task, n_runs=6, n_cases=40)
    case = task.dataset.cases.order_by("case_id").first()
    return f"/tasks/{task.slug}/leaderboard/", f"/cases/{case.pk}/"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def before_tree(rev, workdir):
    """REV's files, with this tree's venv and built viewer bundle (the bundle's build did not change), and this
    tree's plotly bundle where REV tracks none (static/vendor/ is built, not committed: without it REV's pages
    would name a file its collectstatic never saw, and fail)."""
    tree = Path(workdir) / f"tree-{rev}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shutil.copytree(ROOT / "static" / "viewer", tree / "static" / "viewer")
    if not (tree / "static" / "vendor").exists():
        shutil.copytree(ROOT / "static" / "vendor", tree / "static" / "vendor")
    return tree


class Server:
    """`manage.py serve --no-worker` from `tree` on the benchmark's database, static files collected first."""

    def __init__(self, tree, workdir, label):
        self.tree, self.label = Path(tree), label
        self.port = free_port()
        self.env = dict(os.environ, STATIC_ROOT=str(Path(workdir) / f"static-{label}"), PYTHONDONTWRITEBYTECODE="1")
        self.env.pop("DJANGO_SETTINGS_MODULE", None)

    def __enter__(self):
        python = str(ROOT / ".venv" / "bin" / "python")
        subprocess.run([python, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=self.tree, env=self.env,
                       check=True)  # fmt: skip
        self.process = subprocess.Popen(
            [python, "manage.py", "serve", "--no-worker", "--port", str(self.port)],
            cwd=self.tree, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/", timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"the {self.label} server did not start") from None
                time.sleep(0.3)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)


def visit(browser, url, ready):
    """(first visit, second visit) of `url` in one new context: each {ms, bytes, requests}."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        results = []
        for _ in range(2):
            page.goto(url)
            page.wait_for_selector(ready, timeout=60_000, state="attached")
            results.append(page.evaluate(MEASURE))
        return results
    finally:
        context.close()


def measure(servers, pages, visits, webgl):
    """{label: {page: [visit, …]}}: the trees' servers visited in turn in each round, so a neighbour's load on
    the machine falls on all of them alike."""
    from playwright.sync_api import sync_playwright

    figures = {label: {name: [] for name in pages} for label in servers}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS + (WEBGL_ARGS if webgl else []))
        try:
            for name, (path, ready) in pages.items():
                for server in servers.values():
                    visit(browser, server.url + path, ready)  # the server's own first answers (templates, imports)
                for _ in range(visits):
                    for label, server in servers.items():
                        figures[label][name].append(visit(browser, server.url + path, ready))
        finally:
            browser.close()
    return figures


def summary(runs):
    first = [run[0] for run in runs]
    second = [run[1] for run in runs]
    return (
        statistics.median(r["ms"] for r in first) / 1000,
        min(r["ms"] for r in first) / 1000,
        statistics.median(r["bytes"] for r in first) / 1e6,
        statistics.median(r["ms"] for r in second) / 1000,
        statistics.median(r["bytes"] for r in second) / 1e6,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git revision to measure too (e.g. the one before hashed static files)")
    parser.add_argument("--visits", type=int, default=5, help="cold first visits per page (median printed)")
    parser.add_argument("--webgl", action="store_true", help="SwiftShader WebGL (else the viewer's CPU renderer)")
    parser.add_argument("--quick", action="store_true", help="2 visits per page (make bench BENCH_ARGS=--quick)")
    args = parser.parse_args()
    if args.quick:
        args.visits = 2

    setup_django("medgen-bench-first-visit-")
    leaderboard, viewer = seed()
    pages = {
        "leaderboard": (leaderboard, '#plots[data-ready*="cases"]'),
        "viewer": (viewer, '.cs-viewer[data-ready="1"]'),
    }
    with tempfile.TemporaryDirectory(prefix="medgen-first-visit-") as workdir, contextlib.ExitStack() as stack:
        trees = []
        if args.before:
            trees.append((f"before ({args.before})", before_tree(args.before, workdir)))
        trees.append(("now", ROOT))
        servers = {label: stack.enter_context(Server(tree, workdir, label.split()[0])) for label, tree in trees}
        results = measure(servers, pages, args.visits, args.webgl)

    print(f"First visit (new context, empty cache), median of {args.visits}; second visit in the same context.")
    print(f"{'':22} {'page':12} {'first s':>8} {'min s':>7} {'MB':>7} {'second s':>9} {'MB':>7}")
    for label, figures in results.items():
        for name, runs in figures.items():
            first, best, mb, second, mb2 = summary(runs)
            flag = "" if first < TARGET_S else f"  (over the {TARGET_S} s target)"
            print(f"{label:22} {name:12} {first:8.2f} {best:7.2f} {mb:7.2f} {second:9.2f} {mb2:7.2f}{flag}")


if __name__ == "__main__":
    main()
