"""The Cornerstone3D viewer in headless Chromium: rendering, window/level, slices, synchronisation, CPU fallback.

Chromium runs with SwiftShader (software WebGL), as on a machine without a GPU. What a
viewport shows is read from a screenshot of its element; the viewer's own state from the
data-* attributes it keeps on each viewport (data-slice, data-voi, data-zoom).
"""

import io
import json

import numpy as np
import pytest
from PIL import Image

from core.models import JobStatus
from evaluation.models import CaseResult
from inference.models import Case, CaseOutput, ImageRole, Run
from inference.storage import save_array
from tests.support.browser import chromium_page
from tests.support.factories import TaskFactory, add_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def phantom(shape, seed):
    """A smooth disc whose radius and brightness change along D (so every slice differs), plus noise."""
    rng = np.random.default_rng(seed)
    depth, height, width = shape if len(shape) == 3 else (1, *shape)
    z, y, x = np.meshgrid(np.arange(depth), np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    radius = 0.35 + 0.5 * (z + 1) / (depth + 1)
    disc = 1.0 / (1.0 + np.exp((np.hypot(x, y) - radius) * 25))
    image = disc * (0.5 + 0.5 * (x + 1) / 2) * (0.6 + 0.4 * z / max(depth - 1, 1))
    image = image + 0.02 * rng.standard_normal(image.shape)
    return image.astype(np.float32)[None] if len(shape) == 3 else image[0].astype(np.float32)[None]


def make_viewer_case(shape, stochastic=False):
    """A public task with one case (input, reference) and a run with its output(s) written directly."""
    task = TaskFactory()
    case = Case.objects.create(dataset=task.dataset, case_id="case000")
    add_image(case, ImageRole.INPUT, phantom(shape, 1) * 0.8)
    reference = phantom(shape, 2)
    add_image(case, ImageRole.REFERENCE, reference)
    run = Run.objects.create(task=task, name="viewer-run", status=JobStatus.SUCCEEDED)
    samples = [reference + 0.1 * phantom(shape, 10 + s) for s in range(2 if stochastic else 1)]
    for s, array in enumerate(samples):
        output = CaseOutput(run=run, case=case, sample=s, shape=list(array.shape))
        save_array(output.array, f"out_{s}.npy", array)
        output.save()
    if stochastic:
        result = CaseResult.objects.create(run=run, case=case, samples=2, values={"psnr": 20.0})
        save_array(result.uncertainty_map, "sd.npy", np.std(np.stack(samples), axis=0, ddof=1))
        result.save()
    return run, case


def open_viewer(page, url):
    page.goto(url)
    page.wait_for_selector('.cs-viewer[data-ready="1"]', timeout=60_000)
    return page.locator(".cs-viewport")


def shown(viewports, index):
    """The grey levels the viewport shows (a screenshot of its element), float64."""
    png = viewports.nth(index).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


def states(page):
    return page.evaluate(
        """() => [...document.querySelectorAll('.cs-viewport')].map(e => ({
            label: e.dataset.label, group: e.dataset.voiGroup, slice: Number(e.dataset.slice),
            slices: Number(e.dataset.slices), voi: e.dataset.voi, zoom: e.dataset.zoom}))"""
    )


VIEWPORTS = "[...document.querySelectorAll('.cs-viewport')]"


def wait_until(page, condition):
    """Wait for a JS condition over `vps`, the list of viewport elements."""
    page.wait_for_function(f"() => {{ const vps = {VIEWPORTS}; return {condition}; }}")


def assert_not_blank(pixels):
    assert pixels.std() > 10, pixels.std()  # structure, not a flat fill
    assert (pixels > 20).mean() > 0.05


def drag(page, viewport, dx, dy, button="left"):
    box = viewport.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button=button)
    page.mouse.move(x + dx, y + dy, steps=10)
    page.mouse.up(button=button)


def test_case_view_renders_every_array_and_window_level_drag_changes_the_synchronised_group(site):
    run, case = make_viewer_case((64, 64), stochastic=True)

    with chromium_page(webgl=True, viewport={"width": 1280, "height": 900}) as page:
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{case.pk}/")
        assert page.locator(".cs-viewer").get_attribute("data-renderer") == "gpu"
        assert page.locator(".cs-renderer").inner_text() == "GPU (WebGL)"
        labels = [s["label"] for s in states(page)]
        assert labels == ["Input", "Output (sample 0)", "Reference", "|Output − reference|", "SD over 2 samples"]
        for i in range(len(labels)):
            assert_not_blank(shown(viewports, i))
        before = states(page)
        output_pixels = shown(viewports, 1)

        drag(page, viewports.nth(1), 60, 40)  # left drag on the output: window/level
        wait_until(page, f"vps[1].dataset.voi !== {json.dumps(before[1]['voi'])}")
        after = states(page)

        assert after[1]["voi"] != before[1]["voi"]
        assert after[2]["voi"] == after[1]["voi"]  # the reference shares the output's window
        assert after[0]["voi"] == before[0]["voi"] and after[3]["voi"] == before[3]["voi"]  # other groups keep theirs
        assert np.abs(shown(viewports, 1) - output_pixels).mean() > 2  # what is shown changed

        page.locator(".cs-reset").click()
        wait_until(page, f"vps[1].dataset.voi === {json.dumps(before[1]['voi'])}")


def test_volume_scrolls_by_wheel_and_keys_with_slice_and_zoom_synchronised(site):
    run, case = make_viewer_case((24, 64, 64))

    with chromium_page(webgl=True, viewport={"width": 1280, "height": 900}) as page:
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{case.pk}/")
        start = states(page)
        assert [s["slices"] for s in start] == [24] * 4 and {s["slice"] for s in start} == {12}
        first = shown(viewports, 0)

        box = viewports.nth(0).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 120)
        wait_until(page, "vps[0].dataset.slice !== '12'")
        wait_until(page, "new Set(vps.map(e => e.dataset.slice)).size === 1")
        scrolled = states(page)[0]["slice"]
        assert scrolled != 12
        assert np.abs(shown(viewports, 0) - first).mean() > 1  # a different slice is shown

        viewports.nth(2).focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("PageDown")  # 24 slices: a page is 2
        expected = scrolled + 4
        wait_until(page, f"vps.every(e => e.dataset.slice === '{expected}')")

        drag(page, viewports.nth(3), 0, -50, button="right")  # right drag: zoom
        wait_until(page, "vps[3].dataset.zoom !== '1.0000'")
        wait_until(page, "new Set(vps.map(e => e.dataset.zoom)).size === 1")

        page.keyboard.press("r")
        wait_until(page, "vps.every(e => e.dataset.slice === '12' && e.dataset.zoom === '1.0000')")


def test_cpu_fallback_renders_and_keeps_window_level_and_sync(site):
    run, case = make_viewer_case((8, 48, 48))

    with chromium_page(webgl=True) as page:
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{case.pk}/?renderer=cpu")
        assert page.locator(".cs-viewer").get_attribute("data-renderer") == "cpu"
        assert page.locator(".cs-renderer").inner_text().startswith("CPU rendering")
        for i in range(4):
            assert_not_blank(shown(viewports, i))
        before = states(page)

        drag(page, viewports.nth(2), 40, 20)
        wait_until(page, f"vps[2].dataset.voi !== {json.dumps(before[2]['voi'])}")
        after = states(page)
        assert after[1]["voi"] == after[2]["voi"] != before[2]["voi"]
        lower, upper = map(float, after[2]["voi"].split(","))
        assert 0 < upper - lower < 3  # moved within the data's range, not by thousands

        viewports.nth(0).focus()
        page.keyboard.press("ArrowUp")
        wait_until(page, "vps.every(e => e.dataset.slice === '3')")
        assert states(page)[2]["voi"] == after[2]["voi"]  # the window survives the new slice


def test_compare_view_shows_two_runs_side_by_side(site):
    run_a, case = make_viewer_case((48, 48))
    output = run_a.outputs.get()
    run_b = Run.objects.create(task=run_a.task, name="other-run", status=JobStatus.SUCCEEDED)
    other = CaseOutput(run=run_b, case=case, sample=0, shape=output.shape)
    save_array(other.array, "other.npy", output.load() * 0.5)
    other.save()

    with chromium_page(webgl=True, viewport={"width": 1280, "height": 900}) as page:
        viewports = open_viewer(page, f"{site.url}/cases/{case.pk}/compare/?a={run_a.pk}&b={run_b.pk}")
        labels = [s["label"] for s in states(page)]
        assert labels == ["Reference", "A: viewer-run", "B: other-run", "|A − reference|", "|B − reference|"]
        pixels = [shown(viewports, i) for i in range(5)]
        for p in pixels:
            assert_not_blank(p)
        # B is half of A, both windowed like the reference: B looks darker.
        assert pixels[2].mean() < pixels[1].mean() - 5


# Sets data-max-whole-bytes on the viewer's host once the page is parsed, before the viewer
# module (deferred, then imported dynamically) reads it.
FORCE_SLICES = """document.addEventListener("readystatechange", () => {
    const host = document.getElementById("viewer");
    if (host) host.dataset.maxWholeBytes = "1024";
});"""


@pytest.mark.parametrize("renderer", ["gpu", "cpu"])
def test_volume_over_the_whole_array_threshold_loads_only_the_slices_it_shows(site, renderer):
    run, case = make_viewer_case((24, 64, 64))  # 24 × 64 × 64 float32: 384 KiB per array, over 1 KiB

    with chromium_page(webgl=True, viewport={"width": 1280, "height": 900}) as page:
        data_requests = []
        page.on("request", lambda request: "/data/" in request.url and data_requests.append(request.url))
        page.add_init_script(FORCE_SLICES)
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{case.pk}/?renderer={renderer}")
        assert page.locator(".cs-viewer").get_attribute("data-renderer") == renderer
        assert page.evaluate(f"{VIEWPORTS}.map(e => e.dataset.loading)") == ["slices"] * 4
        start = states(page)
        assert [s["slices"] for s in start] == [24] * 4 and {s["slice"] for s in start} == {12}
        for i in range(4):
            assert_not_blank(shown(viewports, i))
        first = shown(viewports, 0)

        box = viewports.nth(0).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 120)
        wait_until(page, "vps[0].dataset.slice !== '12'")
        wait_until(page, "new Set(vps.map(e => e.dataset.slice)).size === 1")
        scrolled = states(page)[0]["slice"]
        page.wait_for_timeout(300)  # the new slice's frame
        assert np.abs(shown(viewports, 0) - first).mean() > 1  # a different slice is shown

        viewports.nth(2).focus()
        page.keyboard.press("End")  # far from anything prefetched: fetched on demand
        wait_until(page, "vps.every(e => e.dataset.slice === '23')")
        page.wait_for_timeout(300)
        last = shown(viewports, 2)
        assert_not_blank(last)
        assert np.abs(shown(viewports, 0) - first).mean() > 1

        page.keyboard.press("r")
        zooms = json.dumps([s["zoom"] for s in start])  # 1 on the GPU; the CPU path's own scale
        wait_until(page, f"vps.every((e, i) => e.dataset.slice === '12' && e.dataset.zoom === {zooms}[i])")
        assert not page.evaluate(f"{VIEWPORTS}.some(e => e.dataset.error)")

    assert data_requests, "no array data was requested"
    whole = [url for url in data_requests if "slice=" not in url]
    assert not whole, whole  # never the whole array
    urls = {url.split("?")[0] for url in data_requests}
    assert len(urls) == 4  # input, output, reference, difference
    for url in urls:
        fetched = {int(u.split("slice=")[1]) for u in data_requests if u.startswith(url + "?")}
        assert {12, scrolled, 23} <= fetched  # what was shown
        assert len(fetched) < 24  # and its neighbours, not every slice
        assert len([u for u in data_requests if u.startswith(url + "?")]) == len(fetched)  # each fetched once


def test_viewer_falls_back_to_slices_when_the_server_refuses_the_whole_array(site, settings):
    run, case = make_viewer_case((6, 32, 32))
    settings.MEDGEN_VIEWER_MAX_ARRAY_BYTES = 1024  # below the viewer's own threshold

    with chromium_page(webgl=True) as page:
        statuses = {}
        page.on(
            "response", lambda response: "/data/" in response.url and statuses.update({response.url: response.status})
        )
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{case.pk}/")
        assert page.evaluate(f"{VIEWPORTS}.map(e => e.dataset.loading)") == ["slices"] * 4
        assert {s["slice"] for s in states(page)} == {3}
        for i in range(4):
            assert_not_blank(shown(viewports, i))

    assert {status for url, status in statuses.items() if "slice=" not in url} == {413}
    assert {status for url, status in statuses.items() if "slice=" in url} == {200}
