"""The viewer for review (issue 18) in headless Chromium at 1440 × 900: large tiles, calm zoom (drag and
wheel), the preset menu saying "custom", the value under the cursor, the label overlay, the length tool in
mm and previous / next in the run page's worst-first order.

What a viewport shows is read from a screenshot; the viewer's state from its data-* attributes."""

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from core.models import JobStatus
from evaluation.models import CaseResult, MetricResult
from inference.models import Case, CaseOutput, ImageRole, Run
from inference.storage import save_array
from tests.inference.test_viewer_browser import drag, open_viewer, phantom, states, wait_until
from tests.support.browser import chromium_page
from tests.support.factories import TaskFactory, add_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1440, "height": 900}
SPACING = 0.5  # mm per pixel, both axes


def review_run(n_cases=1, psnr=(20.0,), shape=(64, 64), label=False):
    """A public task whose cases (input, reference, label optionally, 0.5 mm pixels) a run has outputs and
    PSNR results for; the primary metric is PSNR. Returns (run, cases, outputs' arrays)."""
    task = TaskFactory(primary_metric="psnr")
    run = Run.objects.create(task=task, name="review-run", status=JobStatus.SUCCEEDED)
    MetricResult.objects.create(run=run, metric="psnr", tier="pixel", value=float(np.mean(psnr)), version="1")
    cases, arrays = [], []
    for i in range(n_cases):
        case = Case.objects.create(dataset=task.dataset, case_id=f"case{i:03d}")
        add_image(case, ImageRole.INPUT, phantom(shape, 1) * 0.8)
        reference = add_image(case, ImageRole.REFERENCE, phantom(shape, 2))
        reference.spacing = [SPACING] * len(shape)
        reference.save()
        if label:
            mask = np.zeros((1, *shape), dtype=np.float32)
            mask[0, 16:32, 16:32] = 1
            add_image(case, ImageRole.LABEL, mask)
        array = phantom(shape, 2) + 0.1 * phantom(shape, 10 + i)
        output = CaseOutput(run=run, case=case, sample=0, shape=list(array.shape))
        save_array(output.array, f"out_{i}.npy", array)
        output.save()
        CaseResult.objects.create(run=run, case=case, values={"psnr": psnr[i]})
        cases.append(case)
        arrays.append(array)
    return run, cases, arrays


def image_box(page, index):
    """The viewport's box and where the (fitted, centred) image lies in it: (box, scale px/pixel, x0, y0)."""
    box = page.locator(".cs-viewport").nth(index).bounding_box()
    scale = min(box["width"], box["height"]) / 64
    return box, scale, (box["width"] - 64 * scale) / 2, (box["height"] - 64 * scale) / 2


def zooms(page):
    return [float(s["zoom"]) for s in states(page)]


def test_tiles_fill_the_width_and_zoom_is_calm_by_drag_and_by_wheel_on_a_2d_image(site):
    run, cases, _ = review_run()

    with chromium_page(webgl=True, viewport=WIDE) as page:
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{cases[0].pk}/")
        widths = [viewports.nth(i).bounding_box()["width"] for i in range(viewports.count())]
        assert min(widths) >= 0.4 * WIDE["width"], widths  # two tiles a row, not 266 px
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert zooms(page) == [1.0] * 4

        box = viewports.nth(1).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -100)  # one notch away from the user: zoom in, on every synchronised tile
        wait_until(page, "vps.every(e => e.dataset.zoom === '1.1500')")

        drag(page, viewports.nth(1), 0, 20, button="right")
        wait_until(page, "new Set(vps.map(e => e.dataset.zoom)).size === 1 && vps[0].dataset.zoom !== '1.1500'")
        after_20 = zooms(page)[1]
        assert after_20 / 1.15 == pytest.approx(math.exp(20 / 200), rel=0.02)  # 1.105×, not 1.47×

        drag(page, viewports.nth(1), 0, -100, button="right")  # up: zoom out, proportionally
        page.wait_for_timeout(200)
        assert zooms(page)[1] / after_20 == pytest.approx(math.exp(-100 / 200), rel=0.02)  # 1/1.65, not 1/8
        assert len(set(zooms(page))) == 1


def world_under(page, index, x, y):
    """The world point (mm) the viewport's readout reports under page point (x, y), read fresh: the
    cursor first leaves the image (the readout clears), then comes to (x, y)."""
    box = page.locator(".cs-viewport").nth(index).bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] + 40)
    wait_until(page, f"vps[{index}].dataset.readoutWorld === undefined")
    page.mouse.move(x, y)
    wait_until(page, f"vps[{index}].dataset.readoutWorld !== undefined")
    value = page.locator(".cs-viewport").nth(index).get_attribute("data-readout-world")
    return np.array([float(v) for v in value.split(",")])


@pytest.mark.parametrize("renderer", ["gpu", "cpu"])
def test_wheel_and_drag_zoom_keep_the_image_point_under_the_pointer(site, renderer):
    run, cases, _ = review_run()

    with chromium_page(webgl=True, viewport=WIDE) as page:
        open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{cases[0].pk}/?renderer={renderer}")
        page.locator(".cs-viewport").nth(1).evaluate("e => window.scrollBy(0, e.getBoundingClientRect().top - 8)")
        box, scale, x0, y0 = image_box(page, 1)
        # Near the image's top-left corner, far (~25 image pixels) from the centre the old zoom kept fixed.
        x, y = box["x"] + x0 + 6.3 * scale, box["y"] + y0 + 7.6 * scale
        before = world_under(page, 1, x, y)
        start = states(page)[1]["zoom"]  # 1 on the GPU; the CPU path's own scale

        page.mouse.wheel(0, -100)  # zoom in, 1.15×
        wait_until(page, f"vps[1].dataset.zoom !== '{start}'")
        wheeled = states(page)[1]["zoom"]
        assert float(wheeled) / float(start) == pytest.approx(1.15, rel=1e-3)
        after_wheel = world_under(page, 1, x, y)
        mm_per_px = SPACING / (scale * 1.15)  # one screen pixel, in mm, at this zoom
        assert np.abs(after_wheel - before).max() <= mm_per_px, (before, after_wheel, mm_per_px)

        page.mouse.move(x, y)
        page.mouse.down(button="right")
        page.mouse.move(x, y + 60, steps=10)  # down: zoom in by exp(60 / 200), about where the drag began
        page.mouse.up(button="right")
        wait_until(page, f"vps[1].dataset.zoom !== '{wheeled}'")
        zoom = float(states(page)[1]["zoom"]) / float(start)
        assert zoom > 1.5
        after_drag = world_under(page, 1, x, y)
        assert np.abs(after_drag - before).max() <= SPACING / (scale * zoom), (before, after_drag)
        assert len({s["zoom"] for s in states(page)}) == 1  # the other tiles follow


def test_preset_menu_says_custom_after_a_drag_and_the_preset_again_when_chosen(site):
    run, cases, _ = review_run()

    with chromium_page(webgl=True, viewport=WIDE) as page:
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{cases[0].pk}/")
        presets = page.locator(".cs-preset")
        assert page.evaluate("[...document.querySelectorAll('.cs-viewport')].map(e => e.dataset.preset)") == ["0"] * 4
        before = states(page)[1]["voi"]
        drag(page, viewports.nth(1), 50, 30)
        wait_until(page, f"vps[1].dataset.voi !== {json.dumps(before)}")
        assert viewports.nth(1).get_attribute("data-preset") == "custom"
        assert viewports.nth(2).get_attribute("data-preset") == "custom"  # the reference shares the window
        assert presets.nth(1).evaluate("s => s.options[s.selectedIndex].text") == "custom"
        assert viewports.nth(0).get_attribute("data-preset") == "0"  # the input keeps its own

        presets.nth(1).select_option("1")
        wait_until(page, "vps[1].dataset.preset === '1' && vps[2].dataset.preset === '1'")
        assert presets.nth(2).evaluate("s => s.options[s.selectedIndex].text").split(":")[0] != "custom"

        # A window carried over (the reading room's initialView) is "custom" from the first frame; a kept
        # preset is that preset.
        for view, expected in [({"voi": {"lower": 0.1, "upper": 0.3}}, "custom"), ({"preset": 2}, "2")]:
            page.evaluate(
                """async (view) => {
                    const host = document.getElementById("viewer");
                    const config = JSON.parse(document.getElementById("viewer-config").textContent);
                    host.medgenViewer.destroy();
                    const { mountViewers } = await import(host.dataset.viewerSrc);
                    await mountViewers(host, { ...config, initialView: view });
                }""",
                view,
            )
            page.wait_for_selector('.cs-viewer[data-ready="1"]')
            assert viewports.nth(1).get_attribute("data-preset") == expected
            shown = presets.nth(1).evaluate("s => s.options[s.selectedIndex].text")
            assert (shown == "custom") == (expected == "custom"), shown


@pytest.mark.parametrize("renderer", ["gpu", "cpu"])
def test_readout_shows_the_array_value_at_the_voxel_under_the_cursor(site, renderer):
    run, cases, arrays = review_run()
    output = arrays[0][0]  # (64, 64)

    with chromium_page(webgl=True, viewport=WIDE) as page:
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{cases[0].pk}/?renderer={renderer}")
        # The whole tile in the window (the mouse cannot point below it).
        viewports.nth(1).evaluate("e => window.scrollBy(0, e.getBoundingClientRect().top - 8)")
        box, scale, x0, y0 = image_box(page, 1)
        assert box["y"] + box["height"] <= WIDE["height"]
        for column, row in [(10, 40), (33, 5), (63, 63), (0, 0)]:
            page.mouse.move(box["x"] + x0 + (column + 0.5) * scale, box["y"] + y0 + (row + 0.5) * scale)
            wait_until(page, f"vps[1].dataset.readoutIndex === '{column},{row}'")
            value = float(page.locator(".cs-viewport").nth(1).get_attribute("data-readout-value"))
            assert value == pytest.approx(float(output[row, column]), rel=1e-6, abs=1e-7)
            caption = page.locator(".cs-readout").nth(1).inner_text()
            assert caption.startswith(f"(x {column}, y {row}) = ")
        page.mouse.move(box["x"] + 2, box["y"] + box["height"] + 40)  # off the image: no readout
        wait_until(page, "vps[1].dataset.readoutIndex === undefined")


def colour(pixels, rows, columns):
    """Mean (R − G) over a region of an RGB screenshot: ~0 where grey, large where the label's red is."""
    region = pixels[rows[0] : rows[1], columns[0] : columns[1]].astype(np.float64)
    return float((region[..., 0] - region[..., 1]).mean())


def test_label_is_a_coloured_translucent_overlay_with_a_toggle(site):
    run, cases, _ = review_run(label=True)

    with chromium_page(webgl=True, viewport=WIDE) as page:
        viewports = open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{cases[0].pk}/")
        labels = [s["label"] for s in states(page)]
        assert labels == ["Input", "Output", "Reference", "|Output − reference|"]  # no grey label tile
        root = page.locator(".cs-viewer")
        assert root.get_attribute("data-overlay") == "on"
        wait_until(page, "vps[2].dataset.overlayVoxels === '256'")  # the 16 × 16 square
        assert viewports.nth(1).get_attribute("data-overlay-voxels") == "256"  # the output too
        assert viewports.nth(3).get_attribute("data-overlay-voxels") is None  # not the error map

        def shot():
            png = viewports.nth(2).screenshot()
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            _, scale, x0, y0 = image_box(page, 2)
            inside = (int(y0 + 18 * scale), int(y0 + 30 * scale)), (int(x0 + 18 * scale), int(x0 + 30 * scale))
            outside = (int(y0 + 40 * scale), int(y0 + 50 * scale)), (int(x0 + 40 * scale), int(x0 + 50 * scale))
            return colour(pixels, *inside), colour(pixels, *outside), pixels

        inside, outside, on_pixels = shot()
        assert inside > 40, inside  # red over the grey image, still translucent (below)
        assert abs(outside) < 3, outside
        page.locator(".cs-overlay-toggle").uncheck()
        wait_until(page, "document.querySelector('.cs-viewer').dataset.overlay === 'off'")
        page.wait_for_timeout(200)
        inside_off, _, off_pixels = shot()
        assert abs(inside_off) < 3, inside_off
        # Translucent: the image's structure shows through the label (the overlay is not a flat fill).
        _, scale, x0, y0 = image_box(page, 2)
        rows = slice(int(y0 + 17 * scale), int(y0 + 31 * scale))
        cols = slice(int(x0 + 17 * scale), int(x0 + 31 * scale))
        grey_on = on_pixels[rows, cols, 1].astype(float)
        grey_off = off_pixels[rows, cols, 1].astype(float)
        assert np.corrcoef(grey_on.ravel(), grey_off.ravel())[0, 1] > 0.9


def test_length_tool_measures_in_mm_with_the_image_spacing(site):
    run, cases, _ = review_run()

    with chromium_page(webgl=True, viewport=WIDE) as page:
        open_viewer(page, f"{site.url}/runs/{run.pk}/cases/{cases[0].pk}/")
        page.locator(".cs-measure").click()
        assert page.locator(".cs-viewer").get_attribute("data-measure") == "on"
        before = states(page)[1]["voi"]
        box, scale, x0, y0 = image_box(page, 1)  # the output: the reference's 0.5 mm pixels
        start = (box["x"] + x0 + 10 * scale, box["y"] + y0 + 20 * scale)
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(start[0] + 40 * scale, start[1] + 30 * scale, steps=8)
        page.mouse.up()
        page.wait_for_function("() => document.querySelector('.cs-viewer').dataset.length")
        measured = float(page.locator(".cs-viewer").get_attribute("data-length"))
        assert measured == pytest.approx(50 * SPACING, rel=0.01)  # a 30-40-50 triangle of 0.5 mm pixels: 25 mm
        assert page.locator(".cs-length").inner_text() == f"Length: {measured:.2f} mm"
        assert states(page)[1]["voi"] == before  # measuring does not window
        page.locator(".cs-measure").click()  # off: the left drag windows again
        drag(page, page.locator(".cs-viewport").nth(1), 40, 20)
        wait_until(page, f"vps[1].dataset.voi !== {json.dumps(before)}")
        page.locator(".cs-measure-clear").click()
        assert page.locator(".cs-viewer").get_attribute("data-length") is None


def test_next_case_follows_the_run_pages_worst_first_order(site):
    # PSNR (higher is better) 30, 10, 20: worst first is case001, case002, case000.
    run, cases, _ = review_run(n_cases=3, psnr=(30.0, 10.0, 20.0))

    with chromium_page(webgl=True, viewport=WIDE) as page:
        page.goto(f"{site.url}/runs/{run.pk}/")
        order = page.locator("#case-results tbody tr td:first-child a").all_inner_texts()
        assert order == ["case001", "case002", "case000"]
        page.locator("#case-results tbody tr td:first-child a").first.click()
        page.wait_for_selector('.cs-viewer[data-ready="1"]', timeout=60_000)
        seen = [page.locator("h1").inner_text().split(" ")[1]]
        assert "case 1 of 3, worst first by psnr" in page.locator("#case-position").inner_text()
        assert page.locator("#previous-case").count() == 0
        for _ in range(2):
            page.locator("#next-case").click()
            page.wait_for_selector('.cs-viewer[data-ready="1"]', timeout=60_000)
            seen.append(page.locator("h1").inner_text().split(" ")[1])
        assert seen == order
        assert page.locator("#next-case").count() == 0
        page.locator("#previous-case").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text().split(" ")[1] == "case002"
