"""The reading room of a probe-mode study in headless Chromium: keys 1–5 rate the last mark placed, a mark
without a rating cannot be submitted, and the window presets stay on Shift+digits."""

import pytest

from readerstudy.models import ReaderStudy
from tests.readerstudy.test_workspace_browser import (
    VIEWPORT,
    answers_of,
    log_in,
    open_workspace,
    wait_draft_saved,
    wait_ready,
    watch_errors,
)
from tests.support.browser import chromium_page
from tests.support.study_data import make_reader, make_study, make_study_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_keys_rate_the_current_mark_and_an_unrated_mark_is_not_submitted(site):
    task, runs = make_study_task(n_cases=4, n_runs=1)
    reader = make_reader()
    study = make_study(task, runs, design="hallucination", readers=[reader], items_per_model=1)
    # The rating UI follows the study's probe mode alone (probe items need probe runs, not this test's point).
    ReaderStudy.objects.filter(pk=study.pk).update(probe_mode=True)

    with chromium_page(webgl=True, viewport=VIEWPORT) as page:
        errors = watch_errors(page)
        log_in(page, site, reader.username)
        first = open_workspace(page, site, study)
        assert page.locator("#rw-mark-rating").is_visible()
        page.keyboard.press("p")
        box = page.locator(".cs-viewport").bounding_box()
        scale = min(box["width"], box["height"]) / 24
        for dx in (-4, 4):
            page.mouse.click(box["x"] + box["width"] / 2 + dx * scale, box["y"] + box["height"] / 2)
            page.wait_for_function(f"() => document.querySelector('.cs-viewer').dataset.marks === '{(dx > 0) + 1}'")
            page.keyboard.press("2" if dx < 0 else "5")  # rates the mark just placed
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 5 * scale)
        page.wait_for_function("() => document.querySelector('.cs-viewer').dataset.marks === '3'")
        assert "1 not rated" in page.locator("#rw-mark-count").inner_text()
        page.keyboard.press("Enter")  # refused: the last mark has no rating
        page.wait_for_function("() => /rate each mark/.test(document.getElementById('rw-message')?.textContent)")
        assert page.evaluate("() => document.body.dataset.readerState") == "ready"
        page.keyboard.press("Shift+Digit2")  # a window preset, never a rating
        assert "1 not rated" in page.locator("#rw-mark-count").inner_text()
        # The draft keeps the ratings: after a reload the marks come back rated as they were.
        wait_draft_saved(page)
        page.reload()
        assert wait_ready(page) == first
        assert page.locator(".cs-viewer").get_attribute("data-marks") == "3"
        assert "1 not rated" in page.locator("#rw-mark-count").inner_text()
        page.keyboard.press("3")
        assert page.locator("#rw-mark-rating [data-value='3']").get_attribute("aria-checked") == "true"
        page.keyboard.press("Enter")
        wait_ready(page, previous=first["item"])
        assert not errors, errors

    values, _ = answers_of(study, reader)
    marks = values[first["item"]]["marks"]
    assert [m["rating"] for m in marks] == [2, 5, 3]
    xs = [m["points"][0][0] for m in marks]
    assert abs(xs[0] - 8) < 1 and abs(xs[1] - 16) < 1, xs  # the centre 12 ∓ 4 image pixels, pixel corners
