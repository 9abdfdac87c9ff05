"""Any two runs of a board compared with the board's own paired test (Wilcoxon signed-rank, a paired bootstrap
CI of the mean difference, Holm over the metrics), in the JSON API (`?compare=A,B`) and on the page; the mean
rank over any metrics, clinical and efficiency ones included; hidden runs listed for organisers only."""

import csv
import io

import numpy as np
import pytest
from django.urls import reverse
from scipy import stats

from evaluation import leaderboard
from evaluation.formatting import format_value
from evaluation.metrics import catalog
from evaluation.models import MetricResult
from inference.models import MemberRole, Membership, MemberStatus
from inference.services import participation
from tests.support.factories import make_task
from tests.support.leaderboard_data import add_scored_run

pytestmark = pytest.mark.django_db

N = 12


def board_of_three():
    task = make_task(n_cases=N, primary_metric="ssim", metrics=["psnr", "ssim"])
    rng = np.random.default_rng(7)
    values = {}
    for name, quality in (("alpha", 0.80), ("bravo", 0.77), ("charlie", 0.60)):
        ssim = quality + 0.03 * rng.standard_normal(N)
        psnr = 25 + 5 * rng.standard_normal(N)
        # bravo has case 3 excluded (NaN output): it drops out of bravo's pairs.
        run = add_scored_run(task, name, {"ssim": ssim, "psnr": psnr}, excluded=(3,) if name == "bravo" else ())
        values[name] = (run, {"ssim": ssim, "psnr": psnr})
    return task, values


def holm(p):
    order = np.argsort(p)
    adjusted = np.empty(len(p))
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - position) * p[index]))
        adjusted[index] = running
    return adjusted


def test_two_runs_compared_per_metric_match_scipy_wilcoxon_on_the_stored_per_case_values(client):
    task, values = board_of_three()
    (alpha, a), (bravo, b) = values["alpha"], values["bravo"]
    url = reverse("api-task-leaderboard", args=[task.slug])
    response = client.get(url, {"compare": f"{bravo.pk},{alpha.pk}"})
    assert response.status_code == 200, response.content
    comparison = response.json()["comparison"]
    assert comparison["run_a"]["name"] == "bravo" and comparison["run_b"]["name"] == "alpha"
    metrics = {m["key"]: m for m in comparison["metrics"]}
    assert set(metrics) == {"psnr", "ssim"}
    keep = [i for i in range(N) if i != 3]
    expected_p = []
    for key in ("psnr", "ssim"):
        x, y = np.asarray(b[key])[keep], np.asarray(a[key])[keep]
        m = metrics[key]
        assert m["n_pairs"] == N - 1
        assert m["mean_difference"] == pytest.approx(float(np.mean(x - y)), rel=1e-12)
        p = float(stats.wilcoxon(x, y).pvalue)
        assert m["p_value"] == pytest.approx(p, rel=1e-9)
        expected_p.append(p)
        assert m["ci_low"] < m["mean_difference"] < m["ci_high"]
        assert m["n_a_better"] == int((x > y).sum()) and m["n_b_better"] == int((x < y).sum())  # both higher-better
    for key, p_adj in zip(("psnr", "ssim"), holm(np.array(expected_p)), strict=True):
        assert metrics[key]["p_adjusted"] == pytest.approx(p_adj, rel=1e-9)
        assert metrics[key]["significant"] == (p_adj < 0.05)

    # The same test as the board's against its leader (alpha ranks first on SSIM): same p, same CI.
    board = client.get(url, {"format": "json"}).json()
    row = next(r for r in board["rows"] if r["run"]["name"] == "bravo")
    assert board["rows"][0]["run"]["name"] == "alpha"
    assert row["versus_leader"]["p_value"] == pytest.approx(metrics["ssim"]["p_value"], rel=1e-12)
    assert row["versus_leader"]["ci_low"] == pytest.approx(metrics["ssim"]["ci_low"], rel=1e-12)
    assert row["versus_leader"]["mean_difference"] == pytest.approx(metrics["ssim"]["mean_difference"], rel=1e-12)

    # The CSV carries the same numbers, one row per metric.
    table = list(
        csv.DictReader(
            io.StringIO(client.get(url, {"compare": f"{bravo.pk},{alpha.pk}", "format": "csv"}).content.decode())
        )
    )
    assert [(r["run_a"], r["run_b"], r["key"]) for r in table] == [
        ("bravo", "alpha", "psnr"),
        ("bravo", "alpha", "ssim"),
    ]
    assert float(table[1]["p_value"]) == pytest.approx(metrics["ssim"]["p_value"], rel=1e-12)
    assert float(table[0]["mean_difference"]) == pytest.approx(metrics["psnr"]["mean_difference"], rel=1e-12)

    # Swapping the runs flips the sign and keeps the p value.
    swapped = client.get(url, {"compare": f"{alpha.pk},{bravo.pk}"}).json()["comparison"]["metrics"]
    swapped = {m["key"]: m for m in swapped}
    assert swapped["ssim"]["mean_difference"] == pytest.approx(-metrics["ssim"]["mean_difference"], rel=1e-12)
    assert swapped["ssim"]["p_value"] == pytest.approx(metrics["ssim"]["p_value"], rel=1e-12)


def test_the_page_compares_two_runs_picked_from_the_board(client):
    task, values = board_of_three()
    alpha, charlie = values["alpha"][0], values["charlie"][0]
    page = client.get(reverse("task-leaderboard", args=[task.slug]), {"compare": [charlie.pk, alpha.pk]})
    html = page.content.decode()
    assert 'id="compare-table"' in html and "charlie (A) − alpha (B)" in html
    a, c = values["alpha"][1]["ssim"], values["charlie"][1]["ssim"]
    p = stats.wilcoxon(c, a).pvalue
    comparison = page.context["comparison"]
    ssim = next(m for m in comparison["metrics"] if m["key"] == "ssim")
    assert ssim["p_value"] == pytest.approx(p, rel=1e-9)
    assert f'<td class="num p-value">{format_value(ssim["p_value"], 3)}</td>' in html
    # The plots and exports keep reading the board, not the comparison.
    assert "compare=" not in page.context["query"]


def test_a_bad_pair_is_a_clear_error(client):
    task, values = board_of_three()
    alpha = values["alpha"][0]
    url = reverse("api-task-leaderboard", args=[task.slug])
    for query, message in (
        (f"{alpha.pk}", "compare takes two run ids"),
        (f"{alpha.pk},x", "compare takes two run ids"),
        (f"{alpha.pk},{alpha.pk}", "two different runs"),
        (f"{alpha.pk},999999", "Run 999999 is not on this leaderboard"),
    ):
        response = client.get(url, {"compare": query})
        assert response.status_code == 400 and message in response.content.decode(), query
    page = client.get(reverse("task-leaderboard", args=[task.slug]), {"compare": f"{alpha.pk},999999"})
    assert page.status_code == 200 and "Run 999999 is not on this leaderboard" in page.content.decode()


def test_a_hidden_run_cannot_be_compared_and_is_listed_for_organisers_only(client, django_user_model):
    task, values = board_of_three()
    organiser = django_user_model.objects.create_user("org", password="x")
    Membership.objects.create(task=task, user=organiser, role=MemberRole.ORGANISER, status=MemberStatus.ACCEPTED)
    alpha, charlie = values["alpha"][0], values["charlie"][0]
    participation.hide_run(charlie, reason="duplicate of bravo", by=organiser)
    url = reverse("api-task-leaderboard", args=[task.slug])
    assert client.get(url, {"compare": f"{alpha.pk},{charlie.pk}"}).status_code == 400
    page = reverse("task-leaderboard", args=[task.slug])
    anonymous = client.get(page).content.decode()
    assert "duplicate of bravo" not in anonymous and 'id="hidden-runs"' not in anonymous
    assert "data-hide-run" not in anonymous
    client.force_login(organiser)
    html = client.get(page).content.decode()
    assert 'id="hidden-runs"' in html and "Hidden runs (1)" in html and "duplicate of bravo" in html
    assert html.count("data-hide-run=") == 2  # alpha and bravo, still on the board
    assert reverse("api-run-unhide", args=[charlie.pk]) in html


def test_the_mean_rank_takes_clinical_and_efficiency_metrics_offered_on_the_page(client):
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    dice = {"a": 0.40, "b": 0.70, "c": 0.55}
    for name, ssim, latency in (("a", 0.9, 50.0), ("b", 0.8, 5.0), ("c", 0.7, 1.0)):
        run = add_scored_run(task, name, {"ssim": [ssim] * 3}, latency_ms=latency)
        MetricResult.objects.create(run=run, metric="downstream_dice", tier=catalog.CLINICAL, value=dice[name],
                                    ci_low=dice[name] - 0.05, ci_high=dice[name] + 0.05,
                                    version=catalog.metric_version("downstream_dice"))  # fmt: skip
    url = reverse("task-leaderboard", args=[task.slug])
    html = client.get(url, {"ranking": "mean_rank"}).content.decode()
    for key in ("ssim", "downstream_dice", "latency_p50"):
        assert f'name="metrics" value="{key}"' in html, key
    # No values anywhere: a placeholder column is not offered.
    assert 'name="metrics" value="utility_ratio"' not in html
    board = leaderboard.build(task, method="mean_rank", chosen=["ssim", "downstream_dice"])
    # ssim ranks a1 b2 c3, dice b1 c2 a3: mean ranks a 2, b 1.5, c 2.5.
    assert {row.run_name: row.rank for row in board.rows} == {"b": 1, "a": 2, "c": 3}
    board = leaderboard.build(task, method="mean_rank", chosen=["ssim", "downstream_dice", "latency_p50"])
    # latency ranks c1 b2 a3: mean ranks a 7/3, b 5/3, c 2.
    assert {row.run_name: row.rank for row in board.rows} == {"b": 1, "c": 2, "a": 3}
    assert [row.score for row in board.rows] == pytest.approx([5 / 3, 2.0, 7 / 3])
    page = client.get(url, {"ranking": "mean_rank", "metrics": ["ssim", "downstream_dice"]})
    assert [row.run_name for row in page.context["board"].rows] == ["b", "a", "c"]
    labels = f"{catalog.get('ssim').label}, {board.column('downstream_dice').label}"
    assert f"Mean rank over {labels}:" in page.content.decode()
