"""The reading room in headless Chromium: a dark page from edge to edge, the viewer's window and zoom
kept from item to item, window presets on Shift+1…3 that never answer, and the next item's image
painted at once after "submit and next".

Chromium runs with SwiftShader (software WebGL); the page's state is read from the data-* attributes
the workspace and the viewer keep (see test_workspace_browser.py).
"""

import re

import pytest

from readerstudy.models import Answer
from tests.readerstudy.test_workspace_browser import VIEWPORT, log_in, open_workspace, wait_ready, watch_errors
from tests.support.browser import chromium_page
from tests.support.study_data import make_reader, make_study, make_study_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def rgb(css):
    """'rgb(r, g, b)' or 'rgba(r, g, b, a)' → (r, g, b) in 0…255."""
    values = [float(v) for v in re.findall(r"[\d.]+", css)[:3]]
    assert len(values) == 3, css
    return tuple(values)


def luminance(colour):
    """WCAG 2 relative luminance of an sRGB colour."""

    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_matches_wcag_examples():
    """The helpers against WCAG's own figures: black on white 21:1, #777 on white about 4.48:1."""
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast((119, 119, 119), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)


def styles(page, selector):
    return page.eval_on_selector(
        selector,
        "(node) => { const s = getComputedStyle(node); return {bg: s.backgroundColor, fg: s.color}; }",
    )


def viewport_readout(page):
    return page.evaluate(
        """() => [...document.querySelectorAll('.cs-viewport')]
                 .map((v) => ({voi: v.dataset.voi, zoom: v.dataset.zoom}))"""
    )


def test_the_reading_room_is_dark_from_edge_to_edge_with_readable_text(site):
    task, runs = make_study_task(n_cases=4)
    reader = make_reader()
    study = make_study(task, runs, design="turing", readers=[reader], items_per_model=1)
    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        open_workspace(page, site, study)
        surfaces = {
            "body": "body",
            "site header": "header.top",
            "progress bar": ".rw-bar",
            "answer panel": ".rw-panel",
            "image area": ".rw-images",
            "answer button": ".rw-choice",
        }
        for name, selector in surfaces.items():
            colours = styles(page, selector)
            assert luminance(rgb(colours["bg"])) < 0.03, f"{name} is not dark: {colours['bg']}"
        texts = {  # text → the surface it is read on
            ".rw-title h1": "body",
            ".rw-count": "body",
            ".rw-q legend": ".rw-panel",
            ".rw-keys dd": ".rw-panel",
            ".rw-choice": ".rw-choice",
            "#nav-my-reading": "header.top",
        }
        for text, surface in texts.items():
            ratio = contrast(rgb(styles(page, text)["fg"]), rgb(styles(page, surface)["bg"]))
            assert ratio >= 4.5, f"{text} on {surface}: contrast {ratio:.2f}"
        # The site's menu leads only back to the reader's studies (no task list, models or API).
        assert page.locator("header.top nav a:visible").all_inner_texts() == ["Your reading"]
        # Large images: the viewport takes most of the window's width beside the panel.
        width = page.eval_on_selector(".cs-viewport", "(node) => node.getBoundingClientRect().width")
        assert width >= 0.5 * VIEWPORT["width"], width
        assert not errors


def test_window_and_zoom_are_kept_from_item_to_item_and_shift_digits_set_presets(site):
    task, runs = make_study_task(n_cases=4)
    reader = make_reader()
    study = make_study(task, runs, design="turing", readers=[reader], items_per_model=1)
    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        state = open_workspace(page, site, study)
        presets = page.evaluate(
            """async () => {
                const config = JSON.parse(document.getElementById('workspace-config').textContent);
                const state = await (await fetch(config.stateUrl)).json();
                return state.item.images[0].header.presets;
            }"""
        )
        assert len(presets) == 3
        page.locator(".cs-viewport").first.focus()

        # Shift+3: the full-range preset; no answer is chosen, nothing is sent.
        before = viewport_readout(page)[0]["voi"]
        page.keyboard.press("Shift+Digit3")
        page.wait_for_function("(v) => document.querySelector('.cs-viewport').dataset.voi !== v", arg=before)
        lower, upper = (float(v) for v in viewport_readout(page)[0]["voi"].split(","))
        assert (lower, upper) == pytest.approx((presets[2]["lower"], presets[2]["upper"]), rel=1e-4)
        page.keyboard.press("Shift+Digit2")
        page.wait_for_function(
            "(v) => document.querySelector('.cs-viewport').dataset.voi !== v", arg=f"{lower:g},{upper:g}"
        )
        lower, upper = (float(v) for v in viewport_readout(page)[0]["voi"].split(","))
        assert (lower, upper) == pytest.approx((presets[1]["lower"], presets[1]["upper"]), rel=1e-4)
        assert page.evaluate("document.getElementById('workspace').dataset.complete") == "0"
        assert not page.locator(".rw-choice[aria-checked=true]").count()
        assert page.evaluate("Number(document.getElementById('rw-progress').dataset.done)") == 0

        # A dragged window and a zoom: both come back on the next item.
        box = page.locator(".cs-viewport").first.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 30, cy - 20, steps=5)
        page.mouse.up()
        page.mouse.move(cx, cy)
        page.mouse.down(button="right")
        page.mouse.move(cx, cy - 15, steps=5)
        page.mouse.up(button="right")
        page.wait_for_timeout(200)
        kept = viewport_readout(page)[0]
        assert kept["voi"] != f"{presets[0]['lower']:g},{presets[0]['upper']:g}"
        assert float(kept["zoom"]) != pytest.approx(1.0, abs=1e-3)

        page.evaluate(WATCH_PAINT, state["item"])
        page.keyboard.press("r")
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        nxt = wait_ready(page, previous=state["item"])
        page.wait_for_function("() => window.__paint > 0")
        assert page.evaluate("window.__firstVoi") == kept["voi"]  # from the first frame on: no flash of the default
        assert nxt["done"] == 1
        page.wait_for_function("(v) => document.querySelector('.cs-viewport').dataset.voi === v", arg=kept["voi"])
        assert viewport_readout(page)[0] == kept
        assert not errors
    assert Answer.objects.count() == 1  # the preset keys sent nothing: one answer, by R, 3, Enter


WATCH_PAINT = """(previous) => {
    window.__paint = null;
    const root = document.getElementById('workspace');
    const observer = new MutationObserver(() => {
        const viewport = document.querySelector('#rw-viewer .cs-viewport');
        if (window.__paint || root.dataset.item === previous || !viewport) return;
        if (Number(viewport.dataset.rendered) < 1) return;
        window.__paint = -1;
        window.__firstVoi = viewport.dataset.voi;  // the window of the new item's first frame
        requestAnimationFrame(() => { window.__paint = performance.now(); });  // the frame it shows in
        observer.disconnect();
    });
    observer.observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-rendered', 'data-item']});
}"""

ANSWER_TIMING = """(previous) => {
    const answers = performance.getEntriesByType('resource').filter((e) => e.name.includes('/answers/'));
    const answered = answers[answers.length - 1];
    const data = performance.getEntriesByType('resource').filter((e) => e.name.includes('/data/'));
    return {responseEnd: answered.responseEnd, paint: window.__paint,
            data: data.map((e) => ({url: new URL(e.name).pathname, start: e.startTime}))};
}"""


def read_three_items(site):
    """Answer three items; returns the delays (ms) from each answer's response to the next image's first frame."""
    task, runs = make_study_task(n_cases=6, shape=(1, 128, 128))
    reader = make_reader()
    study = make_study(task, runs, design="turing", readers=[reader], items_per_model=2)
    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        state = open_workspace(page, site, study)
        shown = [state["item"]]
        delays = []
        for _ in range(3):
            previous = state["item"]
            # The next item's arrays are fetched while this one is read.
            page.wait_for_function(
                """() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/data/')).length
                         >= 2 * document.querySelectorAll('.cs-viewport').length"""
                if len(shown) == 1
                else "() => true"
            )
            page.wait_for_timeout(300)
            page.evaluate(WATCH_PAINT, previous)
            page.keyboard.press("r")
            page.keyboard.press("4")
            page.keyboard.press("Enter")
            state = wait_ready(page, previous=previous)
            page.wait_for_function("() => window.__paint > 0")
            timing = page.evaluate(ANSWER_TIMING, previous)
            delays.append(timing["paint"] - timing["responseEnd"])
            shown.append(state["item"])
            # Its image came from the prefetch: no request for it after the answer's response.
            late = [d for d in timing["data"] if state["item"] in d["url"] and d["start"] >= timing["responseEnd"]]
            assert not late, late
        # Only items the reader was shown, or the one next, were ever fetched.
        final = page.evaluate(ANSWER_TIMING, state["item"])
        fetched = {d["url"].split("/")[4] for d in final["data"]}
        next_token = page.evaluate(
            """async () => {
                const config = JSON.parse(document.getElementById('workspace-config').textContent);
                return (await (await fetch(config.stateUrl)).json()).next?.token;
            }"""
        )
        assert fetched <= set(shown) | {next_token}, fetched
        assert not errors
    print("paint after the answer's response (ms):", [round(d) for d in delays])
    return delays


def test_the_next_items_images_are_prefetched_and_only_the_next_ones(site):
    delays = read_three_items(site)
    assert len(delays) == 3 and all(d > 0 for d in delays)


@pytest.mark.serial
def test_the_next_image_is_painted_within_150_ms_of_the_answers_response(site):
    """The budget on loopback, as the median of three "submit and next" (the box running the suite is shared:
    one transition can stall on another process; the median of three cannot on a single stall)."""
    delays = sorted(read_three_items(site))
    assert delays[1] < 150, delays
