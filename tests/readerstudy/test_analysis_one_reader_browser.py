"""The one-reader analysis page at 1440 × 900: the note that a between-reader analysis needs two
readers is followed at once by the per-run table (no empty plot box under it)."""

import numpy as np
import pytest

from tests.readerstudy.test_analysis import answer_all
from tests.support.browser import chromium_page
from tests.support.study_data import answer_for, make_reader, make_study, make_study_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_one_reader_analysis_has_no_empty_space_under_the_note(site, django_user_model):
    reader = make_reader("solo")
    task, runs = make_study_task(n_cases=12, n_runs=2)
    study = make_study(task, runs, readers=[reader], items_per_model=4, repeated_items=1)
    rng = np.random.default_rng(3)
    answer_all(study, reader, lambda assignment: answer_for("turing", rng))
    django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True)

    with chromium_page(viewport={"width": 1440, "height": 900}) as page:
        page.goto(f"{site.url}/accounts/login/?next=/studies/{study.pk}/analysis/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "boss-pass-123")
        page.click("button[type=submit]")
        page.wait_for_selector("#turing-per-run")
        note = page.locator("#mrmc-unavailable").bounding_box()
        heading = page.locator("#mrmc-unavailable + h3").bounding_box()
        gap = heading["y"] - (note["y"] + note["height"])
        assert 0 <= gap < 60, gap  # a heading's margin, not a 380 px plot box
        assert page.locator("#turing-per-run tbody tr").count() == 2  # one row per run for the one reader
        assert "not available" in page.locator("#repeat-kappa-note").inner_text()
