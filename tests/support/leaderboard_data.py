"""Succeeded runs with stored results, written straight to the database (no inference, no
evaluation job): for the leaderboard tests and its benchmark."""

import numpy as np
from django.utils import timezone

from core.models import JobStatus
from evaluation.formatting import encode_value
from evaluation.metrics import catalog
from evaluation.models import CaseResult, CaseStatus, MetricResult
from inference.models import Case, Run, RunKind

FEATURE_COLUMNS = [
    ("frd", "radiomics"),
    ("kid", "radiomics"),
    ("precision", "radiomics"),
    ("recall", "radiomics"),
    ("fid", "inception_v3"),
    ("kid", "inception_v3"),
    ("precision", "inception_v3"),
    ("recall", "inception_v3"),
]


def add_scored_run(task, name, per_case, *, feature=None, latency_ms=None, excluded=(), status=JobStatus.SUCCEEDED):
    """A run of `task` whose per-case pixel values are `per_case` {metric: (n_cases,) values};
    the run-level value of each pixel metric is the mean over the non-excluded cases (CI ±0.01).
    `feature` = {(metric, extractor): value}. Cases are the task dataset's, by case_id order."""
    now = timezone.now()
    run = Run.objects.create(
        task=task,
        name=name,
        kind=RunKind.SUBMISSION,
        status=status,
        finished_at=now,
        device="cpu",
        latency_ms_p50=latency_ms,
        latency_ms_p95=None if latency_ms is None else 1.5 * latency_ms,
        throughput_cases_per_s=1000.0 / latency_ms if latency_ms else None,
    )
    cases = list(Case.objects.filter(dataset=task.dataset).order_by("case_id"))
    results = []
    for index, case in enumerate(cases):
        if index in excluded:
            results.append(CaseResult(run=run, case=case, status=CaseStatus.NONFINITE, problem="NaN output"))
            continue
        values = {key: encode_value(float(values[index])) for key, values in per_case.items()}
        results.append(CaseResult(run=run, case=case, values=values))
    CaseResult.objects.bulk_create(results)
    metric_rows = []
    keep = [i for i in range(len(cases)) if i not in excluded]
    for key, values in per_case.items():
        mean = float(np.mean(np.asarray(values, dtype=float)[keep]))
        metric_rows.append(
            MetricResult(
                run=run,
                metric=key,
                tier=catalog.PIXEL,
                value=mean,
                ci_low=mean - 0.01 if np.isfinite(mean) else None,
                ci_high=mean + 0.01 if np.isfinite(mean) else None,
                n_cases=len(keep),
                n_excluded=len(excluded),
                version=catalog.metric_version(key),
            )
        )
    for (metric, extractor), value in (feature or {}).items():
        metric_rows.append(
            MetricResult(
                run=run,
                metric=metric,
                extractor=extractor,
                tier=catalog.FEATURE,
                value=value,
                ci_low=value * 0.9,
                ci_high=value * 1.1,
                n_cases=len(keep),
                version=catalog.metric_version(metric, extractor),
            )
        )
    MetricResult.objects.bulk_create(metric_rows)
    return run


def populate(task, n_runs, n_cases, *, seed=0, features=True):
    """`n_runs` runs with all six pixel metrics per case and eight feature columns: 14 metric columns."""
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(n_runs):
        quality = rng.uniform(0.5, 0.95)
        ssim = np.clip(quality + 0.05 * rng.standard_normal(n_cases), 0, 1)
        mse = np.exp(rng.normal(np.log(0.02 * (1.1 - quality)), 0.2, n_cases))
        per_case = {
            "ssim": ssim,
            "ms_ssim": np.clip(ssim + 0.02, 0, 1),
            "psnr": 10 * np.log10(1.0 / mse),
            "mse": mse,
            "mae": np.sqrt(mse) * 0.8,
            "nmse": mse * 3,
        }
        feature = {pair: float(rng.uniform(0.1, 10.0)) for pair in FEATURE_COLUMNS} if features else None
        latency = float(rng.uniform(1, 50))
        runs.append(add_scored_run(task, f"run-{r:03d}", per_case, feature=feature, latency_ms=latency))
    return runs
