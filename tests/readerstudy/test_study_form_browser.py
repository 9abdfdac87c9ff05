"""The study form in Chromium: the runs list shows the chosen task's runs only (a run ticked and then hidden
is unticked, so it is never sent), runs and readers are checkbox lists, the Likert scales box shows for
the Likert design only, and the probe-mode fields for hallucination marking only."""

import json

import pytest

from readerstudy.models import ReaderStudy
from tests.support.browser import chromium_page
from tests.support.study_data import make_reader, make_study_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_runs_follow_the_chosen_task_and_the_likert_box_follows_the_design(site, django_user_model):
    first, first_runs = make_study_task(n_cases=4, shape=(1, 8, 8), n_runs=2)
    second, second_runs = make_study_task(n_cases=4, shape=(1, 8, 8), n_runs=1)
    make_reader("rita")
    django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True)
    visible_runs = "#id_runs input[name=runs]:visible"

    with chromium_page(viewport={"width": 1280, "height": 720}) as page:
        page.goto(f"{site.url}/accounts/login/?next=/studies/new/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "boss-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url("**/studies/new/")
        # No task chosen: no runs listed, and the page says why.
        assert page.locator(visible_runs).count() == 0
        assert page.locator("#runs-note").inner_text() == "Choose a task to list its runs."
        assert page.locator("select[name=runs], select[name=readers]").count() == 0  # no Ctrl-click listboxes
        assert page.locator("#id_readers input[type=checkbox]").count() == 1

        page.select_option("#id_task", str(first.pk))
        shown = page.locator(visible_runs).evaluate_all("nodes => nodes.map(n => Number(n.value))")
        assert sorted(shown) == sorted(run.pk for run in first_runs)
        assert page.locator("#runs-note").is_hidden()
        page.check(f"#id_runs input[value='{first_runs[0].pk}']")

        page.select_option("#id_task", str(second.pk))
        shown = page.locator(visible_runs).evaluate_all("nodes => nodes.map(n => Number(n.value))")
        assert shown == [second_runs[0].pk]
        assert page.locator("#id_runs input:checked").count() == 0  # the first task's run was unticked

        # The Likert scales box: hidden before a design is chosen and for the Turing test, shown for Likert only.
        scales = page.locator(".field-scales")
        assert page.locator("#id_design").input_value() == "" and scales.is_hidden()
        page.select_option("#id_design", "turing")
        assert scales.is_hidden()
        page.select_option("#id_design", "likert")
        assert scales.is_visible() and page.locator(".scale-editor").is_visible()
        page.select_option("#id_design", "pairwise")
        assert scales.is_hidden()
        # Probe mode: for hallucination marking only; its acceptance fields once it is on, the radius for
        # radius acceptance only.
        probe, acceptance, radius = (page.locator(f".field-{n}") for n in ("probe_mode", "acceptance",
                                                                           "acceptance_radius_px"))  # fmt: skip
        assert probe.is_hidden() and acceptance.is_hidden() and radius.is_hidden()
        page.select_option("#id_design", "hallucination")
        assert probe.is_visible() and acceptance.is_hidden() and radius.is_hidden()
        page.check("#id_probe_mode")
        assert acceptance.is_visible() and radius.is_visible()
        assert page.locator(".field-items_per_model").is_hidden() and page.locator(".field-real_ratio").is_hidden()
        page.select_option("#id_acceptance", "overlap")
        assert acceptance.is_visible() and radius.is_hidden()
        page.uncheck("#id_probe_mode")
        assert page.locator(".field-items_per_model").is_visible()
        page.select_option("#id_design", "pairwise")
        assert probe.is_hidden() and acceptance.is_hidden()
        # Labels in their own column, fields beside them: the task's label sits left of its select.
        label = page.locator("label[for=id_task]").bounding_box()
        select = page.locator("#id_task").bounding_box()
        assert label["x"] + label["width"] <= select["x"] and abs(label["y"] - select["y"]) < 20
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # The scales editor: the default three scales as rows; a fourth added by typing, written to the JSON.
        page.select_option("#id_design", "likert")
        rows = page.locator(".scale-row")
        assert rows.count() == 3 and rows.nth(0).locator("input").nth(0).input_value() == "realism"
        assert page.locator("#id_scales").is_hidden()  # folded under "Edit as JSON"
        page.click("#add-scale")
        new = rows.nth(3).locator("input")
        for index, text in enumerate(["contrast", "Contrast", "none", "poor", "fair", "good", "excellent"]):
            new.nth(index).fill(text)
        rows.nth(1).get_by_role("button", name="Remove this scale").click()
        written = json.loads(page.locator("#id_scales").input_value())
        assert [scale["key"] for scale in written] == ["realism", "anatomy", "contrast"]
        assert written[2] == {
            "key": "contrast",
            "label": "Contrast",
            "anchors": ["none", "poor", "fair", "good", "excellent"],
        }
        page.fill("#id_title", "Contrast study")
        page.check(f"#id_runs input[value='{second_runs[0].pk}']")
        page.fill("#id_items_per_model", "2")
        page.click("button[type=submit]")
        page.wait_for_url("**/studies/*/")

    study = ReaderStudy.objects.get(title="Contrast study")
    assert [scale["key"] for scale in study.scales] == ["realism", "anatomy", "contrast"]
    assert study.scales[2]["anchors"] == ["none", "poor", "fair", "good", "excellent"]
    assert list(study.runs.values_list("pk", flat=True)) == [second_runs[0].pk]
