"""The probe analysis page, the leaderboard's hallucination index column, the run page's probe section and the
probe-scores API, each checked against the scores recomputed independently from the stored outcomes and marks."""

import numpy as np
import pytest
from django.template.defaultfilters import floatformat
from django.urls import reverse

from evaluation import formatting, leaderboard
from evaluation.metrics.bootstrap import bootstrap_mean_ci
from evaluation.models import ProbeScore
from evaluation.probes import construct
from inference.models import MemberRole, Membership, MemberStatus, Run
from readerstudy.stats import froc, lesion_marks
from tests.evaluation.probe_support import phantom_task
from tests.evaluation.test_probe_sets import built_probe_set, scored_paste_runs

pytestmark = pytest.mark.django_db

ABSENT = [k for k in construct.KINDS if k not in construct.INSERTED]


@pytest.fixture
def world(tmp_path):
    task = phantom_task(n_cases=4)
    probe_set = built_probe_set(task)
    return task, probe_set, scored_paste_runs(task, probe_set, tmp_path)


def expected_index(outcomes, kinds):
    """The invented rate over the probe cases of `kinds`, by hand: the share of each case's samples invented."""
    per_case = {}
    for o in outcomes:
        if o["kind"] in kinds:
            per_case.setdefault(o["case"], []).append(o["outcome"] == "invented")
    values = [float(np.mean(flags)) for _, flags in sorted(per_case.items())]
    ci = bootstrap_mean_ci(values, n_resamples=200, seed=0)
    value, low, high = formatting.format_interval(ci.estimate, ci.low, ci.high)
    return ci, f"{value} [{low}, {high}]"


def expected_detectors(score, probe_set):
    centres = {p.case.case_id: p.truth["centre"] for p in probe_set.probe_cases.select_related("case")}
    tally = {}
    for o in score.outcomes:
        tally.setdefault(o["case"], []).append(o["outcome"] in ("invented", "omitted"))
    lesions = [
        (case, "region", *centres[case]) for case, flags in sorted(tally.items()) if 2 * sum(flags) >= len(flags)
    ]
    out = {}
    for detector, rows in score.detector_marks.items():
        matched = lesion_marks.match_marks([(detector, score.run_id, *row) for row in rows], lesions, 8.0)
        truth = [(case, "region", None) for case, *_ in lesions]
        out[detector] = {
            fom: froc.figure_of_merit(matched, truth, sorted(centres), fom)[(score.run_id, detector)]
            for fom in ("wAFROC", "AFROC", "HrAuc")
        }
    return out


def test_the_probe_page_shows_each_runs_scores(client, world):
    task, probe_set, runs = world
    page = client.get(reverse("task-probes", args=[task.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<img" not in html
    rows = {row["run_id"]: row for row in page.context["rows"]}
    assert set(rows) == {main.pk for main, _ in runs.values()}
    for name, (main, probe_run) in runs.items():
        score = ProbeScore.objects.get(run=probe_run)
        row = rows[main.pk]
        ci, text = expected_index(score.outcomes, ABSENT)
        assert row["index"]["estimate"] == pytest.approx(ci.estimate) and row["index_text"] == text
        assert f'<td class="num index">{text}</td>' in html
        for kind, shown in zip(ABSENT, row["invented_text"], strict=True):
            assert shown == expected_index(score.outcomes, [kind])[1]
        detectors = expected_detectors(score, probe_set)
        assert {d["name"] for d in row["detectors"]} == set(detectors) >= {"error", "radiomics_ood"}
        for detector in row["detectors"]:
            for fom, value in zip(("wAFROC", "AFROC", "HrAuc"), detector["foms"], strict=True):
                assert value == pytest.approx(detectors[detector["name"]][fom])
                assert f'<td class="num">{floatformat(value, 3)}</td>' in html
        assert ("sd" in detectors) == (name == "noisy")
    noisy_row = rows[runs["noisy"][0].pk]
    sd_auc = noisy_row["uncertainty"]["sd_auc"]
    assert sd_auc is not None and f'<td class="num sd-auc">{floatformat(sd_auc, 3)}</td>' in html
    assert rows[runs["paste"][0].pk]["uncertainty"] == {}
    plot = page.context["plot"]["runs"]
    assert len(plot) == 1 and plot[0]["p"] == [t["p_hallucination"] for t in noisy_row["uncertainty"]["by_threshold"]]
    assert 'id="plot-sd-threshold"' in html and "probe_plots.js" in html


def test_the_board_the_run_page_and_the_api_show_the_index(client, world):
    task, _, runs = world
    main, probe_run = runs["paste"]
    score = ProbeScore.objects.get(run=probe_run)
    ci, text = expected_index(score.outcomes, ABSENT)
    page_url = reverse("task-probes", args=[task.slug])
    board = leaderboard.build(task)
    column = board.column("hallucination_index")
    assert column.tier == "clinical" and column.direction == "lower" and column.link == page_url
    cell = next(row for row in board.rows if row.run_id == main.pk).cells["hallucination_index"]
    assert cell.value == pytest.approx(ci.estimate) and f"{cell.text} {cell.ci_text}" == text
    ranked = leaderboard.build(task, method="mean_rank", chosen=["hallucination_index"])
    assert [c.key for c in ranked.chosen] == ["hallucination_index"]
    html = client.get(reverse("task-leaderboard", args=[task.slug])).content.decode()
    assert "Hallucination index" in html and f'href="{page_url}"' in html
    value, ci_text = text.split(" ", 1)
    assert f'{value} <span class="ci">{ci_text}</span>' in html

    exported = client.get(reverse("api-task-leaderboard", args=[task.slug]), {"format": "json"}).json()
    values = next(row for row in exported["rows"] if row["run"]["id"] == main.pk)["values"]["hallucination_index"]
    assert values["value"] == pytest.approx(ci.estimate) and values["ci_high"] == pytest.approx(ci.high)
    csv_text = client.get(reverse("api-task-leaderboard", args=[task.slug]), {"format": "csv"}).content.decode()
    assert "hallucination_index" in csv_text.splitlines()[0]

    run_page = client.get(reverse("run-detail", args=[main.pk])).content.decode()
    assert f'<strong id="probe-index">{text}</strong>' in run_page and f'href="{page_url}"' in run_page

    data = client.get(reverse("api-task-probe-scores", args=[task.slug])).json()
    mine = next(row for row in data if row["run"] == main.pk)
    assert mine["probe_run"] == probe_run.pk and mine["page"] == page_url
    assert mine["hallucination_index"]["estimate"] == pytest.approx(ci.estimate)
    assert mine["hallucination_index"]["low"] == pytest.approx(ci.low) and mine["sd_auc"] is None
    noisy = next(row for row in data if row["run"] == runs["noisy"][0].pk)
    assert noisy["sd_auc"] == pytest.approx(ProbeScore.objects.get(run=runs["noisy"][1]).uncertainty["sd_auc"])
    schema = client.get(reverse("api-schema")).content.decode()
    assert "/api/tasks/{slug}/probe-scores/" in schema and "hallucination_index" in schema

    # a run taken off the board leaves the page, the column and the API
    Run.objects.filter(pk=main.pk).update(hidden_at=probe_run.created_at, hidden_reason="test")
    rows = client.get(page_url).context["rows"]
    assert [row["run_id"] for row in rows] == [runs["noisy"][0].pk]
    assert [row["run"] for row in client.get(reverse("api-task-probe-scores", args=[task.slug])).json()] == [
        runs["noisy"][0].pk
    ]


def test_the_run_page_shows_p_hallucinated_given_sd_above_tau_recomputed_from_the_outputs(client, world):
    """The stochastic run's page: P(hallucinated | SD > τ) at the SD's quantiles, recomputed here from its probe
    outputs (population SD over samples), the truth masks of the probes where ≥ half the samples hallucinated."""
    task, probe_set, runs = world
    main, probe_run = runs["noisy"]
    score = ProbeScore.objects.get(run=probe_run)
    tally = {}
    for o in score.outcomes:
        tally.setdefault(o["case"], []).append(o["outcome"] in ("invented", "omitted"))
    sd_all, label_all = [], []
    for probe in probe_set.probe_cases.select_related("case").order_by("case__case_id"):
        stack = np.stack([o.load()[0] for o in probe_run.outputs.filter(case=probe.case).order_by("sample")])
        sd_all.append(stack.astype(np.float64).std(axis=0).ravel())
        flags = tally[probe.case.case_id]
        hallucinated = 2 * sum(flags) >= len(flags)
        label_all.append((probe.truth_mask_array() & hallucinated).ravel())
    sd_all, label_all = np.concatenate(sd_all), np.concatenate(label_all)
    html = client.get(reverse("run-detail", args=[main.pk])).content.decode()
    table = html[html.index('id="probe-sd-threshold"') : html.index("</table>", html.index('id="probe-sd-threshold"'))]
    for q in (0.5, 0.75, 0.9, 0.95, 0.99):
        tau = np.quantile(sd_all, q)
        above = sd_all > tau
        expected = floatformat(label_all[above].mean(), 4) if above.any() else "—"
        row = f'<td class="num">{floatformat(q, 2)}</td><td class="num">{floatformat(tau, 4)}</td>'
        assert f'{row}<td class="num">{int(above.sum())}</td><td class="num">{expected}</td>' in table, q


def test_a_task_without_probes_says_so_and_a_private_task_is_hidden(client):
    task = phantom_task(n_cases=1)
    html = client.get(reverse("task-probes", args=[task.slug])).content.decode()
    assert 'id="no-probes"' in html
    assert leaderboard.build(task).column("hallucination_index") is None
    task.is_public = False
    task.save()
    assert client.get(reverse("task-probes", args=[task.slug])).status_code == 404
    assert client.get(reverse("api-task-probe-scores", args=[task.slug])).status_code == 404


def test_on_a_hidden_test_set_everyone_sees_the_numbers_and_only_organisers_the_runs(client, world, django_user_model):
    task, _, runs = world
    task.hidden_references = True
    task.save()
    url = reverse("task-probes", args=[task.slug])
    page = client.get(url)
    html = page.content.decode()
    assert {row["run_id"] for row in page.context["rows"]} == {main.pk for main, _ in runs.values()}
    assert not any(row["openable"] or row["probe_run_openable"] for row in page.context["rows"])
    assert "/runs/" not in html and "<img" not in html
    organiser = django_user_model.objects.create_user("org", password="pw-123456")
    Membership.objects.create(task=task, user=organiser, role=MemberRole.ORGANISER, status=MemberStatus.ACCEPTED)
    client.force_login(organiser)
    page = client.get(url)
    assert all(row["openable"] and row["probe_run_openable"] for row in page.context["rows"])
    main, probe_run = runs["paste"]
    assert (
        f'href="/runs/{main.pk}/"' in page.content.decode() and f'href="/runs/{probe_run.pk}/"' in page.content.decode()
    )
