"""The probe viewer in headless Chromium at 1440 × 900: the truth region is drawn as an outline over the probe's
images and over its error and SD maps (not over them as a fill), the samples' SD map shows, and the page does not
scroll sideways."""

import io

import numpy as np
import pytest
from PIL import Image

from core.models import JobStatus
from evaluation.models import ProbeCase, ProbeSet
from inference.models import Case, Dataset, ImageRole, Run
from inference.services import participation
from inference.services.runs import store_output
from inference.storage import save_array
from tests.evaluation.test_leaderboard_table_browser import log_in
from tests.inference.test_viewer_browser import open_viewer, phantom, states, wait_until
from tests.support.browser import chromium_page
from tests.support.factories import TaskFactory, add_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1440, "height": 900}
SHAPE = (64, 64)
SQUARE = (slice(20, 36), slice(24, 40))  # the truth region: 16 × 16 px; its outline is 60 px


def probe_world(organiser):
    """A public task's probe set with one removed-lesion probe, and a two-sample probe run that differs only inside
    the truth region (so the SD map is bright exactly there)."""
    task = TaskFactory()
    participation.add_organiser(task, user=organiser)
    source = Case.objects.create(dataset=task.dataset, case_id="case000")
    add_image(source, ImageRole.INPUT, phantom(SHAPE, 1))
    add_image(source, ImageRole.REFERENCE, phantom(SHAPE, 2))
    dataset = Dataset.objects.create(name=f"Probe set of {task.slug}", private_to=task)
    probe_set = ProbeSet.objects.create(task=task, status=JobStatus.SUCCEEDED, dataset=dataset)
    case = Case.objects.create(dataset=dataset, case_id="case000--removed")
    add_image(case, ImageRole.INPUT, phantom(SHAPE, 1) * 0.9)
    add_image(case, ImageRole.REFERENCE, phantom(SHAPE, 2) * 0.9)
    mask = np.zeros((1, *SHAPE), np.float32)
    mask[(0, *SQUARE)] = 1
    truth = {"kind": "removed", "expected": "absent", "centre": [27.5, 31.5], "extent": [8.0, 8.0], "angle": 0.0,
             "area_px": 256, "contrast": 0.4, "site": "lesion", "region": 1}  # fmt: skip
    probe = ProbeCase(probe_set=probe_set, case=case, source=source, kind="removed", expected="absent", truth=truth)
    save_array(probe.truth_mask, "truth.npy", mask)
    probe.save()
    main = Run.objects.create(task=task, name="main", status=JobStatus.SUCCEEDED)
    probe_run = Run.objects.create(
        task=task, name="main · probes", status=JobStatus.SUCCEEDED, dataset=dataset, probe_of=main
    )
    for sample, bump in enumerate((0.0, 0.6)):
        output = phantom(SHAPE, 2) * 0.9
        output[(0, *SQUARE)] += bump
        store_output(probe_run, case, sample, output)
    return probe_run, case


def test_the_truth_region_is_outlined_over_the_images_and_the_maps(site, django_user_model):
    organiser = django_user_model.objects.create_user("organiser", password="organiser-pass-123")
    probe_run, case = probe_world(organiser)
    path = f"/runs/{probe_run.pk}/probes/{case.pk}/"
    with chromium_page(webgl=True, viewport=WIDE) as page:
        log_in(page, site, "organiser", "organiser-pass-123", path)
        viewports = open_viewer(page, f"{site.url}{path}")
        labels = [s["label"] for s in states(page)]
        assert labels == [
            "Probe input",
            "Output (sample 0)",
            "Truth image",
            "|Output − truth image|",
            "SD over 2 samples",
        ]
        assert page.locator(".cs-viewer").get_attribute("data-overlay") == "on"
        wait_until(page, "vps.every(e => e.dataset.overlayVoxels === '60')")  # every tile: the square's edge only

        png = viewports.nth(4).screenshot()
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float64)
        box = viewports.nth(4).bounding_box()
        scale = min(box["width"], box["height"]) / SHAPE[0]
        x0, y0 = (box["width"] - SHAPE[1] * scale) / 2, (box["height"] - SHAPE[0] * scale) / 2

        def at(row, col):
            return pixels[int(y0 + (row + 0.5) * scale), int(x0 + (col + 0.5) * scale)]

        edge, inside, outside = at(20, 30), at(28, 32), at(50, 10)
        assert edge[0] - edge[1] > 60, edge  # the outline's red on the map
        assert abs(inside[0] - inside[1]) < 25 and inside.mean() > outside.mean() + 60, (inside, outside)
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert page.locator("#probe-truth").is_visible() and page.locator("#probe-expected").inner_text() == (
            "no lesion at the region"
        )
