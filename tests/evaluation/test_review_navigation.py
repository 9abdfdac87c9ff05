"""Previous / next through a run's cases in the run page's order, the compare view's navigation and its
per-case metric difference, the label overlay in the viewer's config (issue 18, viewer for review)."""

import html
import re

import numpy as np
import pytest

from evaluation import selectors
from evaluation.models import CaseResult, CaseStatus, MetricResult
from inference.models import ImageRole
from tests.inference.test_arrays import make_run, viewer_config
from tests.support.factories import add_image, make_task

pytestmark = pytest.mark.django_db


def scored_run(task, psnr, ssim=None, name="run"):
    """A run with an output and a result per case: PSNR (and SSIM) per case id, the run's PSNR result."""
    cases = list(task.dataset.cases.order_by("case_id"))
    run, _ = make_run(task, {case: [np.zeros((1, 16, 16), np.float32)] for case in cases}, name=name)
    MetricResult.objects.create(run=run, metric="psnr", tier="pixel", value=20.0, version="1")
    MetricResult.objects.create(run=run, metric="ssim", tier="pixel", value=0.5, version="1")
    for i, case in enumerate(cases):
        values = {"psnr": psnr[i]} if psnr[i] is not None else {}
        if ssim is not None:
            values["ssim"] = ssim[i]
        status = CaseStatus.OK if psnr[i] is not None else CaseStatus.NONFINITE
        CaseResult.objects.create(run=run, case=case, values=values, status=status)
    return run, cases


def nav(response):
    """(previous href, next href, the position text) of a viewer page; None for what it lacks."""
    content = response.content.decode()

    def link(name):
        match = re.search(rf'<a id="{name}" href="([^"]*)"', content)
        return html.unescape(match.group(1)) if match else None

    position = re.search(r'<span id="case-position">([^<]*)</span>', content)
    return link("previous-case"), link("next-case"), position.group(1) if position else None


def difference_rows(response):
    """{metric: [cell texts]} of the compare view's metric difference table, and {metric: data-difference}."""
    content = response.content.decode()
    table = content[content.index('id="case-metric-difference"') :]
    table = table[: table.index("</table>")]
    rows, raw = {}, {}
    for key, row in re.findall(r'<tr data-metric="([^"]+)">(.*?)</tr>', table, re.S):
        cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows[key] = [html.unescape(cell) for cell in cells]
        raw[key] = re.search(r'data-difference="([^"]*)"', row).group(1)
    return rows, raw


def test_case_sequence_is_the_run_pages_order_worst_first_then_cases_without_a_result():
    task = make_task(n_cases=5, primary_metric="psnr")
    run, cases = scored_run(task, psnr=[30.0, 10.0, None, 20.0, 25.0])
    CaseResult.objects.filter(run=run, case=cases[4]).delete()  # an output, no result yet

    sequence = selectors.case_sequence(run)
    # Excluded first (the worst), then PSNR ascending (higher is better); the unscored case last.
    assert sequence == [cases[2].pk, cases[1].pk, cases[3].pk, cases[0].pk, cases[4].pk]
    assert selectors.case_sequence(run, case_sort="-psnr") == [cases[i].pk for i in (0, 3, 1, 2, 4)]
    assert selectors.case_sequence(run, case_sort="case") == [c.pk for c in cases]
    assert selectors.neighbours_in(sequence, cases[1].pk) == {
        "position": 2,
        "count": 5,
        "previous": cases[2].pk,
        "next": cases[3].pk,
    }
    assert selectors.neighbours_in(sequence, cases[2].pk) == {"position": 1, "count": 5, "next": cases[1].pk}
    assert selectors.neighbours_in(sequence, -1) == {}


def test_run_case_page_walks_worst_first_and_keeps_the_run_pages_sort(client):
    task = make_task(n_cases=3, primary_metric="psnr")
    run, cases = scored_run(task, psnr=[30.0, 10.0, 20.0])

    previous, following, position = nav(client.get(f"/runs/{run.pk}/cases/{cases[2].pk}/"))
    assert previous == f"/runs/{run.pk}/cases/{cases[1].pk}/"  # by id it would be case001 too: check the next
    assert following == f"/runs/{run.pk}/cases/{cases[0].pk}/"  # by id there would be no next case
    assert position == "case 2 of 3, worst first by psnr"

    previous, following, position = nav(client.get(f"/runs/{run.pk}/cases/{cases[2].pk}/?csort=-psnr"))
    assert previous == f"/runs/{run.pk}/cases/{cases[0].pk}/?csort=-psnr"
    assert following == f"/runs/{run.pk}/cases/{cases[1].pk}/?csort=-psnr"
    assert position == "case 2 of 3, best first by psnr"

    # The run page's case links carry its sort into the viewer.
    page = client.get(f"/runs/{run.pk}/?csort=-psnr").content.decode()
    assert f'href="/runs/{run.pk}/cases/{cases[0].pk}/?csort=-psnr"' in page


def test_compare_view_walks_the_cases_both_runs_have_and_shows_the_metric_difference(client):
    task = make_task(n_cases=3, primary_metric="psnr")
    run_a, cases = scored_run(task, psnr=[30.0, 10.0, 20.0], ssim=[0.9, 0.5, 0.7], name="A")
    run_b, _ = scored_run(task, psnr=[31.5, 12.0, 19.0], ssim=[0.8, 0.5, 0.75], name="B")
    run_b.outputs.filter(case=cases[0]).delete()  # B lacks case000: the walk skips it

    response = client.get(f"/cases/{cases[1].pk}/compare/?a={run_a.pk}&b={run_b.pk}")
    previous, following, position = nav(response)
    assert previous is None
    assert following == f"/cases/{cases[2].pk}/compare/?a={run_a.pk}&b={run_b.pk}"
    assert position == "case 1 of 2, worst first by psnr of run A"

    rows, raw = difference_rows(response)
    assert set(rows) == {"psnr", "ssim"}
    assert rows["psnr"][1:] == ["10.00", "12.00", "+2.000", "B"]
    assert rows["ssim"][1:3] == ["0.5000", "0.5000"] and rows["ssim"][4] == "—"  # equal: neither is better
    assert float(raw["psnr"]) == pytest.approx(2.0) and float(raw["ssim"]) == 0.0

    rows, raw = difference_rows(client.get(f"/cases/{cases[2].pk}/compare/?a={run_a.pk}&b={run_b.pk}"))
    assert rows["psnr"][3:] == ["-1.000", "A"]  # 19 − 20; higher PSNR is better
    assert float(raw["ssim"]) == pytest.approx(0.05) and rows["ssim"][4] == "B"


def test_label_is_the_viewers_overlay_not_a_tile(client):
    task = make_task(n_cases=1, shape=(1, 16, 16), primary_metric="psnr")
    case = task.dataset.cases.get()
    label = add_image(case, ImageRole.LABEL, np.ones((1, 16, 16), np.float32))
    run, _ = scored_run(task, psnr=[20.0])

    config = viewer_config(client.get(f"/runs/{run.pk}/cases/{case.pk}/"))
    assert config["overlay"] == {"headerUrl": f"/api/arrays/case-images/{label.pk}/", "label": "Label mask"}
    assert all("Label" not in v["label"] for v in config["viewports"])
    assert config["columns"] == 2
    other, _ = scored_run(task, psnr=[21.0], name="other")
    config = viewer_config(client.get(f"/cases/{case.pk}/compare/?a={run.pk}&b={other.pk}"))
    assert config["overlay"]["headerUrl"] == f"/api/arrays/case-images/{label.pk}/" and config["columns"] == 3
    # The case page marks the label as the overlay (case_viewer.js reads it so).
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert re.search(rf'data-header-url="/api/arrays/case-images/{label.pk}/"[^>]*data-overlay="1"', page)
