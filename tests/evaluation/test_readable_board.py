"""The feature tier and the leaderboard read as numbers a researcher can interpret: FRD stored with its
authors' log and bounded on a near-constant feature, a precision of 0 explained on the run page, a
metric flagged when it does not separate the runs, a Turing AUC ranked by closeness to 0.5, and each
value rounded as its CI is."""

import math

import numpy as np
import pytest
from django.urls import reverse

from evaluation import leaderboard
from evaluation.feature_tier import feature_metrics
from evaluation.formatting import format_interval
from evaluation.metrics import catalog, feature
from evaluation.metrics.radiomics import feature_names
from evaluation.models import MetricResult
from tests.support.factories import make_task
from tests.support.leaderboard_data import add_scored_run

pytestmark = pytest.mark.django_db


def test_radiomics_results_keep_the_authors_log_and_stay_bounded_with_a_near_constant_feature(client, settings):
    settings.MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES = 20
    task = make_task(n_cases=10, primary_metric="ssim", metrics=["ssim"])
    run = add_scored_run(task, "run", {"ssim": [0.8] * 10})
    names = feature_names()
    minimum = names.index("original_firstorder_min")
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((10, len(names)))
    generated = reference + 0.3 * rng.standard_normal((10, len(names)))
    reference[:, minimum] = 2e-4 + 1e-6 * rng.standard_normal(10)
    generated[:, minimum] = -0.2  # an output whose minimum is far below the references' (a U-Net's undershoot)
    feature_metrics(run, "radiomics", generated, reference, paired=True)
    results = {r.metric: r for r in MetricResult.objects.filter(run=run, extractor="radiomics")}
    frd = results["frd"]
    assert frd.extra["log"] == pytest.approx(math.log(frd.value))
    assert frd.extra["log_ci"] == pytest.approx([math.log(frd.ci_low), math.log(frd.ci_high)])
    assert frd.extra["values_clipped"] == 10 and frd.extra["features_clipped"] == 1
    assert frd.extra["zscore_clip"] == catalog.FRD_ZSCORE_CLIP
    unclipped = feature.frechet_radiomics_distance(generated, reference)  # the authors' z-score
    assert unclipped > 1e10 and frd.value < 1e3
    assert results["kid"].value < 1e3 and results["kid"].extra["values_clipped"] == 10
    assert frd.version == catalog.metric_version("frd", "radiomics")
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    log, low, high = format_interval(frd.extra["log"], *frd.extra["log_ci"], 3)
    assert f"log {log} [{low}, {high}]</span>" in page  # log(d²) beside d², with its CI
    assert page.count("10 output values in 1 radiomics features lay more than 10 reference standard deviations") == 1


def test_a_zero_precision_is_explained_on_the_run_page(client, settings):
    settings.MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES = 20
    task = make_task(n_cases=8, primary_metric="ssim", metrics=["ssim"])
    run = add_scored_run(task, "run", {"ssim": [0.8] * 8})
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((8, len(feature_names())))
    generated = rng.standard_normal((8, len(feature_names()))) * 0.2 + 3.0  # far from every reference
    feature_metrics(run, "radiomics", generated, reference, paired=True)
    precision = MetricResult.objects.get(run=run, metric="precision", extractor="radiomics")
    assert precision.value == 0.0
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "most outputs fall outside the real images" in page and "not a failure to compute" in page


def test_a_metric_is_flagged_when_every_pair_of_runs_ci_overlaps(client):
    task = make_task(n_cases=3, primary_metric="psnr", metrics=["psnr", "ssim"])
    # add_scored_run stores each mean with a CI of ±0.01: SSIMs 0.800/0.805/0.810 all overlap, PSNRs do not.
    add_scored_run(task, "a", {"ssim": [0.800] * 3, "psnr": [20.0] * 3})
    add_scored_run(task, "b", {"ssim": [0.805] * 3, "psnr": [25.0] * 3})
    add_scored_run(task, "c", {"ssim": [0.810] * 3, "psnr": [30.0] * 3})
    board = leaderboard.build(task)
    assert board.inseparable == ["ssim"] and not board.separates("ssim") and board.separates("psnr")
    assert any("SSIM: the 95 % CIs of every pair of runs overlap" in note for note in board.notes)
    page = client.get(reverse("task-leaderboard", args=[task.slug])).content.decode()
    assert page.count("does not separate these runs</span>") == 1 and 'data-inseparable="ssim"' in page
    exported = client.get(f"/api/tasks/{task.slug}/leaderboard/?format=json").json()
    flags = {column["key"]: column["separates_runs"] for column in exported["columns"]}
    assert flags["ssim"] is False and flags["psnr"] is True


def test_no_flag_when_one_pair_is_apart():
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    for name, ssim in (("a", 0.800), ("b", 0.815), ("c", 0.830)):  # a–b and b–c overlap, a–c do not
        add_scored_run(task, name, {"ssim": [ssim] * 3})
    assert leaderboard.build(task).inseparable == []


def add_reader_auc(run, value, low, high):
    MetricResult.objects.create(
        run=run,
        metric="reader_auc",
        extractor="study-1",
        tier=catalog.CLINICAL,
        value=value,
        ci_low=low,
        ci_high=high,
        n_cases=20,
        version=catalog.metric_version("reader_auc"),
        extra={"study_title": "Turing test"},
    )


def test_a_turing_auc_ranks_by_closeness_to_one_half_and_says_so(client):
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    for name, auc in (("far-low", 0.30), ("close", 0.45), ("far-high", 0.70)):
        run = add_scored_run(task, name, {"ssim": [0.8] * 3})
        add_reader_auc(run, auc, auc - 0.1, auc + 0.1)
    board = leaderboard.build(task, method="mean_rank", chosen=["reader_auc:study-1"])
    assert [column.key for column in board.chosen] == ["reader_auc:study-1"]
    ranks = {row.run_name: row.rank for row in board.rows}
    assert ranks == {"close": 1, "far-low": 2, "far-high": 2}
    assert "Reader AUC ranks by closeness to 0.5" in board.ranking_text
    column = board.column("reader_auc:study-1")
    assert column.arrow == "→0.5" and column.better_text == "closest to 0.5"
    page = client.get(reverse("task-leaderboard", args=[task.slug]) + "?ranking=mean_rank&metrics=reader_auc:study-1")
    assert "(closest to 0.5 is better)" in page.content.decode()


def test_a_value_and_its_ci_are_rounded_alike_on_the_board(client):
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    run = add_scored_run(task, "a", {"ssim": [0.8] * 3})
    MetricResult.objects.create(
        run=run,
        metric="downstream_hd95",
        tier=catalog.CLINICAL,
        value=179.6,
        ci_low=179.8,
        ci_high=180.2,
        n_cases=3,
        version=catalog.metric_version("downstream_hd95"),
    )
    cell = leaderboard.build(task).rows[0].cells["downstream_hd95"]
    assert (cell.text, cell.ci_text) == ("179.60", "[179.80, 180.20]")
    page = client.get(reverse("task-leaderboard", args=[task.slug])).content.decode()
    assert '179.60 <span class="ci">[179.80, 180.20]</span>' in page and "[180, 180]" not in page


def test_a_precision_of_0_for_every_run_is_explained_on_the_board():
    task = make_task(n_cases=3, primary_metric="ssim", metrics=["ssim"])
    add_scored_run(task, "a", {"ssim": [0.8] * 3}, feature={("precision", "radiomics"): 0.0})
    add_scored_run(task, "b", {"ssim": [0.7] * 3}, feature={("precision", "radiomics"): 0.0})
    board = leaderboard.build(task)
    assert any(note.startswith("Precision (radiomics): 0 for every run.") for note in board.notes)
    add_scored_run(task, "c", {"ssim": [0.6] * 3}, feature={("precision", "radiomics"): 0.25})
    assert not any("0 for every run" in note for note in leaderboard.build(task).notes)
