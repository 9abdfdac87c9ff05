"""The downstream tier's results: a succeeded job's summary as the run's clinical-tier MetricResults
(`downstream_dice`, `downstream_hd95` and, once a comparable real→real reference exists, `utility_ratio`),
each with a CI over test cases and seeds. Written inside the job's finishing transaction (`training`).
"""

import logging

import numpy as np
from django.conf import settings

from core.models import JobStatus

from .. import segmentation
from ..models import DownstreamJob, MetricResult
from ..services import store_metric
from .selectors import curves_url, reference_job

log = logging.getLogger(__name__)


def bootstrap_settings():
    """The platform's bootstrap settings, for the CIs over test cases and seeds."""
    return {"n_resamples": settings.MEDGEN_BOOTSTRAP_RESAMPLES, "seed": settings.MEDGEN_BOOTSTRAP_SEED}


def write_results(job: DownstreamJob, *, reference: DownstreamJob | None = None) -> None:
    """The run's clinical-tier MetricResults from a succeeded job (utility ratio once the reference exists)."""
    setup = job.setup
    reference = reference or reference_job(setup)
    summary = job.results.get("summary", {})
    base_extra = {
        "seeds": job.results.get("seeds", []),
        "config": job.results.get("config", setup.name),
        "curves_url": curves_url(job.run),
        "test_cases": len(job.results.get("test_case_ids", [])),
        "train_cases": len(job.results.get("train_case_ids", [])),
    }
    for key, metric in (("dice", "downstream_dice"), ("hd95", "downstream_hd95")):
        part = summary.get(key)
        if part:
            per_seed = dict(zip(map(str, base_extra["seeds"]), part["per_seed"], strict=True))
            _store(job.run, metric, part, {**base_extra, "per_seed": per_seed})
    comparable = (
        reference is not None
        and reference.status == JobStatus.SUCCEEDED
        and reference.results.get("test_case_ids") == job.results.get("test_case_ids")
        and reference.results.get("config") == job.results.get("config")
        and reference.results.get("seeds") == job.results.get("seeds")
    )
    if not comparable:
        MetricResult.objects.filter(run=job.run, metric="utility_ratio").delete()
        return
    run_dice = np.asarray(job.results["dice"], dtype=np.float64)
    ref_dice = np.asarray(reference.results["dice"], dtype=np.float64)
    keep = ~(np.isnan(run_dice).any(axis=0) | np.isnan(ref_dice).any(axis=0))
    try:
        ci = segmentation.utility_ratio(run_dice[:, keep], ref_dice[:, keep], **bootstrap_settings())
    except ValueError as exc:
        log.info("run %s: no utility ratio: %s", job.run_id, exc)
        MetricResult.objects.filter(run=job.run, metric="utility_ratio").delete()
        return
    per_seed = run_dice[:, keep].mean(axis=1) / ref_dice[:, keep].mean()
    part = {
        "value": ci.estimate,
        "ci": [ci.low, ci.high],
        "n_cases": int(keep.sum()),
        "n_excluded": int((~keep).sum()),
        "n_resamples": ci.n_resamples,
        "confidence": ci.confidence,
    }
    extra = {
        **base_extra,
        "per_seed": dict(zip(map(str, base_extra["seeds"]), per_seed.tolist(), strict=True)),
        "reference_dice": float(ref_dice[:, keep].mean()),
    }
    _store(job.run, "utility_ratio", part, extra)


def _store(run, metric, part, extra):
    store_metric(
        run,
        metric,
        value=part["value"],
        ci_low=part["ci"][0],
        ci_high=part["ci"][1],
        confidence=part["confidence"],
        n_resamples=part["n_resamples"],
        n_cases=part["n_cases"],
        n_excluded=part["n_excluded"],
        data_range=None,
        extra=extra,
    )
