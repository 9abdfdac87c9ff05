"""LPIPS in the evaluation job: per case beside the pixel metrics, a per-run mean with a bootstrap CI, and
"unavailable" with the setting to set when its weights are not configured.

The weights are generated (a torchvision-layout trunk from the test-only stand-in, random heads in the
lpips wheel's format) and pinned for the test by their own sha256 and size; the expected values are the
lpips package's on the same files and the same stored images, converted here.
"""

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from evaluation import services
from evaluation.formatting import format_value
from evaluation.leaderboard import queries
from evaluation.metrics import bootstrap
from evaluation.metrics import lpips as lp
from evaluation.models import CaseResult, CaseStatus, Evaluation, MetricResult
from inference.models import ImageRole
from tests.support.evaluation import noisy, phantom_task, succeeded_run
from tests.support.generated_weights import random_lpips_backbone, random_lpips_heads
from tests.support.jobs import run_job
from tests.support.reference_libs import load_lpips_trunk, lpips_package


def evaluate(run):
    evaluation = services.request_evaluation(run)
    assert run_job(evaluation) == "succeeded", Evaluation.objects.get(pk=evaluation.pk).error
    return Evaluation.objects.get(pk=evaluation.pk)


def lpips_task(n_cases):
    task = phantom_task(n_cases=n_cases, data_range=1.5)
    task.metrics = ["psnr", "lpips"]
    task.save(update_fields=["metrics"])
    return task


@pytest.fixture
def pinned_weights(tmp_path, monkeypatch, settings):
    """Generated AlexNet-trunk and heads files, configured and pinned by their own sha256 and size."""
    backbone, heads = tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "alex.pth"
    state = random_lpips_backbone("alex", seed=4)
    torch.save(state, backbone)
    torch.save(random_lpips_heads("alex", seed=4), heads)

    def pinned(spec, path):
        return dataclasses.replace(
            spec, weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), weights_bytes=path.stat().st_size
        )

    spec = lp.NETS["alex"]
    spec = dataclasses.replace(spec, backbone=pinned(spec.backbone, backbone), heads=pinned(spec.heads, heads))
    monkeypatch.setitem(lp.NETS, "alex", spec)
    settings.MEDGEN_LPIPS_NET = "alex"
    settings.MEDGEN_LPIPS_WEIGHTS = str(backbone)
    settings.MEDGEN_LPIPS_HEADS = str(heads)
    settings.MEDGEN_FEATURE_EXTRACTORS = []
    settings.MEDGEN_BOOTSTRAP_RESAMPLES = 200
    return state, heads


@pytest.mark.django_db
def test_without_weights_lpips_is_unavailable_and_says_which_setting_to_set(client, settings):
    settings.MEDGEN_LPIPS_WEIGHTS = ""
    settings.MEDGEN_FEATURE_EXTRACTORS = []
    task = lpips_task(2)
    run = succeeded_run(task, noisy(0.05))
    evaluation = evaluate(run)
    assert "set MEDGEN_LPIPS_WEIGHTS to the path of alexnet-owt-7be5be79.pth" in evaluation.unavailable["lpips"]
    assert not MetricResult.objects.filter(run=run, metric="lpips").exists()
    assert MetricResult.objects.filter(run=run, metric="psnr").exists()
    assert all("lpips" not in r.values for r in CaseResult.objects.filter(run=run))
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="evaluation-unavailable"' in page and "MEDGEN_LPIPS_WEIGHTS" in page


@pytest.mark.django_db
def test_a_task_without_lpips_does_not_compute_or_mention_it(settings):
    settings.MEDGEN_FEATURE_EXTRACTORS = []
    run = succeeded_run(phantom_task(n_cases=2, data_range=1.5), noisy(0.05))
    evaluation = evaluate(run)
    assert evaluation.unavailable == {} and evaluation.config["deep_metrics"] == []


@pytest.mark.django_db
def test_lpips_per_case_equals_the_lpips_package_with_a_per_run_bootstrap_ci(pinned_weights, settings, client):
    state, heads = pinned_weights
    task = lpips_task(5)
    run = succeeded_run(task, noisy(0.1), samples=2)
    evaluation = evaluate(run)
    assert evaluation.unavailable == {}

    reference = lpips_package().LPIPS(net="alex", pnet_rand=True, model_path=str(heads), verbose=False).eval()
    load_lpips_trunk(reference, state)
    lo = min(case.images.get(role=ImageRole.REFERENCE).intensity_min for case in task.dataset.cases.all())

    def tensor(x):  # (1, H, W) stored image → (1, 3, H, W) in [−1, 1] from the window (lo, lo + 1.5)
        grey = np.clip((x.astype(np.float64) - lo) / 1.5, 0, 1) * 2 - 1
        return torch.from_numpy(grey.astype(np.float32))[:, None].repeat(1, 3, 1, 1)

    values = []
    for result in CaseResult.objects.filter(run=run).select_related("case").order_by("case__case_id"):
        assert result.status == CaseStatus.OK
        truth = result.case.images.get(role=ImageRole.REFERENCE).load()
        with torch.no_grad():
            expected = np.mean(
                [float(reference(tensor(o.load()), tensor(truth))) for o in run.outputs.filter(case=result.case)]
            )
        assert result.value("lpips") == pytest.approx(expected, rel=1e-6)
        values.append(result.value("lpips"))
    assert len(set(values)) == 5 and min(values) > 0

    stored = MetricResult.objects.get(run=run, metric="lpips", extractor="")
    ci = bootstrap.bootstrap_mean_ci(np.asarray(values), n_resamples=200, seed=settings.MEDGEN_BOOTSTRAP_SEED)
    assert stored.tier == "feature" and stored.n_cases == 5 and stored.n_excluded == 0
    assert stored.value == pytest.approx(np.mean(values), rel=1e-12)
    assert (stored.ci_low, stored.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert stored.ci_low < stored.value < stored.ci_high
    assert stored.extra["net"] == "alex" and stored.extra["heads_from"] == "MEDGEN_LPIPS_HEADS"
    assert stored.version == "1"

    # The run page's per-case table has an LPIPS column (sortable like the pixel metrics').
    page = client.get(run.get_absolute_url()).content.decode()
    assert '<th data-metric="lpips">' in page
    assert all(f'<td class="num">{format_value(v, 4)}</td>' in page for v in values)

    # The per-case export carries it too.
    exported = client.get(f"/api/tasks/{task.slug}/case-results/").json()
    assert "lpips" in exported["metrics"]
    assert sorted(row["values"]["lpips"] for row in exported["results"]) == pytest.approx(sorted(values), rel=1e-12)

    # The leaderboard's LPIPS column is per case, so the paired test and the rank bootstrap can use it.
    column = next(c for c in queries.columns(task, [stored]) if c.metric == "lpips")
    assert column.per_case and column.tier == "feature"


@pytest.mark.django_db
def test_images_too_small_for_the_trunk_are_named_not_scored(pinned_weights):
    task = phantom_task(n_cases=2, size=24, data_range=1.5)
    task.metrics = ["lpips"]
    task.save(update_fields=["metrics"])
    evaluation = evaluate(succeeded_run(task, noisy(0.05)))
    assert "at least 31 × 31 px, got 24 × 24" in evaluation.unavailable["lpips"]
    assert not MetricResult.objects.filter(metric="lpips").exists()


@pytest.mark.django_db
def test_a_task_ranked_by_lpips_ranks_lower_first_and_tests_against_the_leader_per_case(pinned_weights, client):
    task = lpips_task(6)
    task.primary_metric = "lpips"
    task.save(update_fields=["primary_metric"])
    close = succeeded_run(task, noisy(0.02), name="close")
    far = succeeded_run(task, noisy(0.3), name="far")
    evaluate(close)
    evaluate(far)
    board = client.get(f"/api/tasks/{task.slug}/leaderboard/?format=json").json()
    assert board["ranking"]["primary_metric"] == "lpips" and board["significance_metric"] == "lpips"
    column = next(c for c in board["columns"] if c["key"] == "lpips")
    assert column["tier"] == "feature" and column["direction"] == "lower"
    rows = {row["run"]["name"]: row for row in board["rows"]}
    assert rows["close"]["rank"] == 1 and rows["far"]["rank"] == 2
    assert rows["close"]["values"]["lpips"]["value"] < rows["far"]["values"]["lpips"]["value"]
    versus = rows["far"]["versus_leader"]
    assert versus["n_pairs"] == 6 and versus["mean_difference"] > 0
