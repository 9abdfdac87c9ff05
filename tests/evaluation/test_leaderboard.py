"""The task leaderboard: ranking, the paired test against the leader, rank stability, exports,
permissions and a query count that does not grow with the number of runs."""

import csv
import io
import json
import math

import numpy as np
import pytest
import scipy.stats
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import JobStatus
from evaluation import leaderboard
from evaluation.metrics import catalog
from evaluation.models import MetricResult
from tests.support.factories import make_task
from tests.support.leaderboard_data import add_scored_run, populate

pytestmark = pytest.mark.django_db


def _rows(task, **params):
    board = leaderboard.build(task, **params)
    return board, {row.run_name: row for row in board.rows}


def test_runs_rank_by_the_primary_metric_with_ties_sharing_a_rank():
    task = make_task(n_cases=5, primary_metric="ssim", metrics=["psnr", "ssim"])
    add_scored_run(task, "best", {"ssim": [0.9] * 5, "psnr": [30.0] * 5})
    add_scored_run(task, "tied-a", {"ssim": [0.8] * 5, "psnr": [25.0] * 5})
    add_scored_run(task, "tied-b", {"ssim": [0.8] * 5, "psnr": [26.0] * 5})
    add_scored_run(task, "worst", {"ssim": [0.5] * 5, "psnr": [20.0] * 5})
    board, rows = _rows(task)
    assert [row.run_name for row in board.rows][0] == "best"
    assert {name: row.rank for name, row in rows.items()} == {"best": 1, "tied-a": 2, "tied-b": 2, "worst": 4}
    assert "SSIM" in board.ranking_text and "ties share a rank" in board.ranking_text


def test_identical_output_with_infinite_psnr_ranks_first_and_is_served_as_inf():
    task = make_task(n_cases=4, primary_metric="psnr", metrics=["psnr", "ssim"])
    add_scored_run(task, "exact", {"psnr": [math.inf] * 4, "ssim": [1.0] * 4})
    add_scored_run(task, "good", {"psnr": [40.0, 41.0, 42.0, 43.0], "ssim": [0.99] * 4})
    board, rows = _rows(task)
    assert rows["exact"].rank == 1 and rows["good"].rank == 2
    assert rows["exact"].cells["psnr"].text == "∞"
    data = leaderboard.as_dict(board, task)
    assert data["rows"][0]["values"]["psnr"]["value"] == "inf"
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN or Infinity literals


def test_mean_rank_averages_per_metric_ranks_and_a_missing_metric_ranks_last():
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["psnr", "ssim"])
    add_scored_run(task, "a", {"ssim": [0.9] * 3, "psnr": [20.0] * 3})  # ssim 1, psnr 3, frd 1 → 5/3
    add_scored_run(task, "b", {"ssim": [0.8] * 3, "psnr": [30.0] * 3}, feature={("frd", "radiomics"): 2.0})
    add_scored_run(task, "c", {"ssim": [0.7] * 3, "psnr": [25.0] * 3}, feature={("frd", "radiomics"): 1.0})
    # Ranks: ssim a1 b2 c3; psnr b1 c2 a3; frd c1 b2 a3 (missing → last) → means a 7/3, b 5/3, c 2.
    board, rows = _rows(task, method="mean_rank", chosen=["ssim", "psnr", "frd:radiomics"])
    assert [column.key for column in board.chosen] == ["psnr", "ssim", "frd:radiomics"]
    assert rows["a"].score == pytest.approx(7 / 3) and rows["b"].score == pytest.approx(5 / 3)
    assert rows["c"].score == pytest.approx(2.0)
    assert (rows["b"].rank, rows["c"].rank, rows["a"].rank) == (1, 2, 3)
    assert "ranks last" in board.ranking_text


def test_difference_from_the_leader_is_wilcoxon_over_cases_with_holm_correction():
    rng = np.random.default_rng(3)
    task = make_task(n_cases=12, primary_metric="ssim", metrics=["ssim"])
    leader = rng.uniform(0.85, 0.95, 12)
    close = leader - rng.normal(0.0, 0.01, 12)
    far = leader - 0.2 + rng.normal(0.0, 0.01, 12)
    add_scored_run(task, "leader", {"ssim": leader + 0.01})
    add_scored_run(task, "close", {"ssim": close})
    add_scored_run(task, "far", {"ssim": far})
    board, rows = _rows(task)
    assert rows["leader"].rank == 1 and rows["leader"].comparison is None
    raw = {name: scipy.stats.wilcoxon(vals, leader + 0.01).pvalue for name, vals in (("close", close), ("far", far))}
    ordered = sorted(raw.values())
    holm = {name: min(1.0, max((2 - i) * ordered[i] for i in range(ordered.index(p) + 1))) for name, p in raw.items()}
    for name in ("close", "far"):
        assert rows[name].comparison.p_value == pytest.approx(raw[name], rel=1e-12)
        assert rows[name].comparison.p_adjusted == pytest.approx(holm[name], rel=1e-12)
    assert rows["far"].comparison.significant
    assert rows["far"].comparison.mean_difference == pytest.approx(np.mean(far - leader - 0.01))
    assert "Wilcoxon" in board.significance_text and "Holm" in board.significance_text


def test_a_run_best_on_every_case_ranks_first_in_every_resample():
    task = make_task(n_cases=10, primary_metric="ssim", metrics=["ssim"])
    base = np.linspace(0.5, 0.6, 10)
    add_scored_run(task, "dominant", {"ssim": base + 0.3})
    add_scored_run(task, "middle", {"ssim": base + 0.1})
    add_scored_run(task, "last", {"ssim": base})
    board, rows = _rows(task)
    assert rows["dominant"].stability["p_rank_1"] == 1.0
    assert rows["last"].stability["rank_frequencies"] == {"3": 1.0}
    assert board.kendall_tau == pytest.approx(1.0)
    assert "1000 times" in board.stability_text


def test_excluded_cases_are_left_out_of_the_paired_test_and_counted():
    task = make_task(n_cases=6, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, "a", {"ssim": np.full(6, 0.9)})
    add_scored_run(task, "b", {"ssim": np.full(6, 0.5)}, excluded=(0, 1))
    board, rows = _rows(task)
    assert rows["b"].comparison.n_pairs == 4
    assert rows["b"].cells["ssim"].n_excluded == 2


def test_clinical_columns_exist_before_any_study_and_say_so(client):
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, "a", {"ssim": [0.9] * 3})
    board = leaderboard.build(task)
    reader = board.column(leaderboard.READER_STUDY_COLUMN)
    assert reader.tier == leaderboard.CLINICAL
    page = client.get(reverse("task-leaderboard", args=[task.slug])).content.decode()
    assert "Clinical relevance" in page and "no study yet" in page


def test_page_shows_definitions_directions_and_confidence_intervals(client):
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["psnr", "ssim"])
    add_scored_run(task, "a", {"ssim": [0.9, 0.8, 0.85], "psnr": [30.0, 31.0, 32.0]}, latency_ms=4.0)
    response = client.get(reverse("task-leaderboard", args=[task.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    assert catalog.get("ssim").definition.split(":")[0] in page
    assert 'data-column="ssim" data-sort="num" data-dir="desc"' in page
    assert 'data-column="mae"' not in page  # only the task's metrics
    # The stored CI of the mean 0.85, rounded as the value is (four figures).
    assert '0.8500 <span class="ci">[0.8400, 0.8600]</span>' in page
    assert "Pixel fidelity" in page and "Efficiency" in page
    assert "vendor/plotly/plotly.min.js" in page


def test_leaderboard_csv_and_json_exports_hold_every_value_and_ci(client):
    task = make_task(n_cases=4, primary_metric="psnr", metrics=["psnr", "ssim"])
    add_scored_run(task, "exact", {"psnr": [math.inf] * 4, "ssim": [1.0] * 4}, latency_ms=2.0)
    add_scored_run(task, "b", {"psnr": [30.0, 31.0, 32.0, 33.0], "ssim": [0.9] * 4}, latency_ms=1.0,
                   feature={("frd", "radiomics"): 3.5})  # fmt: skip
    url = reverse("api-task-leaderboard", args=[task.slug])
    response = client.get(url, {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["run"] for row in table] == ["exact", "b"]
    assert table[0]["psnr"] == "inf" and float(table[1]["psnr"]) == pytest.approx(31.5)
    assert float(table[1]["psnr_ci_low"]) == pytest.approx(31.49)
    assert float(table[1]["frd:radiomics"]) == 3.5 and table[0]["frd:radiomics"] == ""
    assert table[1]["pareto_optimal"] == "yes"  # fastest; "exact" is best, so both are on the front
    data = client.get(url, {"format": "json"}).json()
    assert data["ranking"]["primary_metric"] == "psnr"
    assert data["rows"][1]["values"]["frd:radiomics"]["value"] == 3.5
    assert data["rows"][1]["values"]["psnr"]["ci_high"] == pytest.approx(31.51)
    assert {column["key"] for column in data["columns"]} >= {"psnr", "ssim", "frd:radiomics", "latency_p50"}


def test_case_results_export_lists_every_case_of_every_run(client):
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, "a", {"ssim": [0.9, 0.8, 0.7]})
    add_scored_run(task, "b", {"ssim": [0.6, 0.5, 0.4]}, excluded=(2,))
    url = reverse("api-task-case-results", args=[task.slug])
    table = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv"}).content.decode())))
    assert len(table) == 6
    first_two = [(row["run"], row["case_id"], row["ssim"]) for row in table[:2]]
    assert first_two == [("a", "case000", "0.9"), ("a", "case001", "0.8")]
    assert table[-1]["status"] == "nonfinite" and table[-1]["ssim"] == ""
    data = client.get(url, {"format": "json"}).json()
    assert data["metrics"] == ["ssim"] and len(data["results"]) == 6


def test_private_task_leaderboard_is_hidden_from_anonymous_users(staff_client):
    task = make_task(n_cases=2, is_public=False, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, "a", {"ssim": [0.9, 0.8]})
    anonymous = Client()
    for name in ("task-leaderboard", "api-task-leaderboard", "api-task-case-results"):
        assert anonymous.get(reverse(name, args=[task.slug])).status_code == 404
        assert staff_client.get(reverse(name, args=[task.slug])).status_code == 200


def test_unknown_ranking_method_is_a_400_with_a_message(client):
    task = make_task(n_cases=2, primary_metric="ssim", metrics=["ssim"])
    response = client.get(reverse("api-task-leaderboard", args=[task.slug]), {"ranking": "vibes"})
    assert response.status_code == 400 and "vibes" in response.json()["detail"]


def test_a_new_result_shows_at_once_despite_the_cache(client):
    task = make_task(n_cases=2, primary_metric="ssim", metrics=["ssim"])
    run = add_scored_run(task, "a", {"ssim": [0.9, 0.8]})
    assert leaderboard.build(task).rows[0].cells["ssim"].value == pytest.approx(0.85)
    MetricResult.objects.filter(run=run, metric="ssim").update(value=0.5)
    MetricResult.objects.get(run=run, metric="ssim").save()  # bumps computed_at as a real write does
    assert leaderboard.build(task).rows[0].cells["ssim"].value == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["task-leaderboard", "api-task-leaderboard"])
def test_query_count_does_not_grow_with_the_number_of_runs(client, name):
    counts = []
    for n_runs in (3, 30):
        task = make_task(n_cases=5, primary_metric="ssim", metrics=list(catalog.DEFAULT_PIXEL_METRICS))
        populate(task, n_runs, 5, seed=n_runs)
        url = reverse(name, args=[task.slug])
        with CaptureQueriesContext(connection) as cold:
            assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as warm:
            assert client.get(url).status_code == 200
        counts.append((len(cold), len(warm)))
    assert counts[0] == counts[1], counts
    assert counts[0][1] <= 4, counts  # warm: the task and the three version queries


def test_downstream_columns_and_the_real_to_real_reference_fill_the_clinical_tier(client):
    from django.utils import timezone

    from evaluation.models import DownstreamJob, DownstreamSetup

    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    run = add_scored_run(task, "a", {"ssim": [0.9, 0.8, 0.7]})
    for metric, value in (("downstream_dice", 0.5), ("utility_ratio", 0.8), ("downstream_hd95", 30.2)):
        MetricResult.objects.create(run=run, metric=metric, tier="clinical", value=value, ci_low=value * 0.9,
                                    ci_high=value * 1.1, version=catalog.metric_version(metric))  # fmt: skip
    setup = DownstreamSetup.objects.create(task=task, name="demo-unet", seeds=[0, 1, 2], test_case_ids=[1, 2])
    summary = {"dice": {"value": 0.63, "ci": [0.505, 0.736]}, "hd95": {"value": 19.8, "ci": [10.0, 34.5]}}
    job = DownstreamJob.objects.create(setup=setup, status=JobStatus.RUNNING)
    page = client.get(reverse("task-leaderboard", args=[task.slug])).content.decode()
    assert "Real→real reference" in page and "running" in page  # the reference is not done yet

    DownstreamJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, results={"summary": summary}, finished_at=timezone.now()
    )
    board = leaderboard.build(task)  # the finished reference changes the cache key
    assert board.downstream_reference["dice"] == 0.63
    row = board.rows[0]
    assert row.cells["downstream_dice"].value == 0.5 and row.cells["utility_ratio"].ci_high == pytest.approx(0.88)
    page = client.get(reverse("task-leaderboard", args=[task.slug])).content.decode()
    assert '0.630 <span class="ci">[0.505, 0.736]</span>' in page
    data = client.get(reverse("api-task-leaderboard", args=[task.slug]), {"format": "json"}).json()
    assert data["downstream_reference"]["dice_ci"] == [0.505, 0.736]
    assert data["rows"][0]["values"]["utility_ratio"]["value"] == 0.8


def test_a_run_not_evaluated_yet_or_with_one_case_shows_no_test_and_the_page_renders(client):
    from django.utils import timezone

    from inference.models import Run

    task = make_task(n_cases=1, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, "a", {"ssim": [0.9]})
    add_scored_run(task, "b", {"ssim": [0.8]})  # one case: one pair, no test
    Run.objects.create(task=task, name="waiting", status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    response = client.get(reverse("task-leaderboard", args=[task.slug]))
    assert response.status_code == 200
    board, rows = _rows(task)
    assert rows["b"].comparison is None and rows["waiting"].comparison is None
    assert rows["waiting"].rank is None and rows["waiting"].stability is None
    assert "no run has two paired cases" in board.significance_text


def test_renaming_a_run_or_failing_it_shows_at_once(client):
    from inference.models import Run

    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    run = add_scored_run(task, "old-name", {"ssim": [0.9, 0.8, 0.7]})
    add_scored_run(task, "other", {"ssim": [0.5, 0.5, 0.5]})
    url = reverse("task-leaderboard", args=[task.slug])
    assert "old-name" in client.get(url).content.decode()
    Run.objects.filter(pk=run.pk).update(name="new-name")  # as the admin's edit does, no timestamp moves
    page = client.get(url).content.decode()
    assert "new-name" in page and "old-name" not in page
    Run.objects.filter(pk=run.pk).update(status=JobStatus.FAILED)
    assert [row.run_name for row in leaderboard.build(task).rows] == ["other"]


def test_a_set_level_primary_metric_says_stability_is_unavailable_and_tests_a_named_per_case_metric():
    task = make_task(n_cases=4, primary_metric="frd", metrics=["ssim"])
    add_scored_run(task, "a", {"ssim": [0.5] * 4}, feature={("frd", "radiomics"): 1.0})
    add_scored_run(task, "b", {"ssim": [0.9, 0.8, 0.85, 0.95]}, feature={("frd", "radiomics"): 2.0})
    add_scored_run(task, "c", {"ssim": [0.7] * 4})  # no FRD: unranked, so not compared
    board, rows = _rows(task)
    assert (rows["a"].rank, rows["b"].rank, rows["c"].rank) == (1, 2, None)
    assert board.significance_column.key == "ssim" and rows["b"].comparison.n_pairs == 4
    assert rows["c"].comparison is None
    assert all(row.stability is None for row in board.rows)
    assert board.stability_text.startswith("Not available: FRD is a set-level metric")


def test_a_run_with_zero_latency_can_be_on_the_pareto_front():
    task = make_task(n_cases=2, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, "instant-and-best", {"ssim": [0.9, 0.9]}, latency_ms=0.0)
    add_scored_run(task, "slow", {"ssim": [0.5, 0.5]}, latency_ms=5.0)
    _board, rows = _rows(task)
    assert rows["instant-and-best"].pareto and not rows["slow"].pareto


def test_csv_exports_defuse_spreadsheet_formulas_in_names_but_keep_negative_numbers(client):
    task = make_task(n_cases=2, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, '=HYPERLINK("http://x")', {"ssim": [-0.25, -0.25]})
    table = list(csv.DictReader(io.StringIO(client.get(
        reverse("api-task-leaderboard", args=[task.slug]), {"format": "csv"}).content.decode())))  # fmt: skip
    assert table[0]["run"] == '\'=HYPERLINK("http://x")'
    assert table[0]["ssim"] == "-0.25"
