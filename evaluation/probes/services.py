"""Probe sets, probe runs and their scores (writes).

- ``request_probe_set``: a probe set of a task, built by a job (``build.build``) on the metrics queue.
- ``start_probe_run``: the main run's model on a probe set's dataset, linked by ``Run.probe_of``; a stochastic
  model (or a noise predictor) draws ``samples_per_case`` samples per probe, as its main run.
- ``score_probe_run``: the run's outcomes per probe (``scoring``), its hallucination index and its detectors'
  marks (error, SD and radiomics OOD maps) and, for a stochastic run, its uncertainty checks (``uncertainty``),
  stored as its ``ProbeScore``; called when a probe run succeeds (``on_run_finished``), idempotent.
"""

from __future__ import annotations

import logging

import numpy as np
from django.db import transaction

from core import jobs
from core.errors import Conflict, InvalidInput
from core.models import JobStatus
from inference.models import Run, Task
from inference.services.runs import create_run

from ..models import ProbeCase, ProbeScore, ProbeSet
from . import construct, ood, scoring, uncertainty

log = logging.getLogger(__name__)


class ProbeError(InvalidInput):
    """A probe set or probe run cannot be made as asked (400); the message says why."""


class ProbeConflict(Conflict, ProbeError):
    """The probe set's or run's state does not allow it (409)."""


def request_probe_set(
    task: Task, *, seed: int = 0, kinds: list[str] | None = None, config: dict | None = None, user=None
) -> ProbeSet:
    """A new probe set of `task`, queued for its build job."""
    kinds = list(kinds or construct.KINDS)
    unknown = sorted(set(kinds) - set(construct.KINDS))
    if unknown:
        raise ProbeError(f"Unknown probe kind(s) {', '.join(unknown)}; known: {', '.join(construct.KINDS)}.")
    max_cases = (config or {}).get("max_cases")
    if max_cases is not None and (not isinstance(max_cases, int) or isinstance(max_cases, bool) or max_cases < 1):
        raise ProbeError(f"max_cases is a number of test cases (a positive integer), got {max_cases!r}.")
    if not task.dataset.cases.exists():
        raise ProbeError(f"Task '{task.slug}' has no test cases to probe.")
    with transaction.atomic():
        probe_set = ProbeSet.objects.create(
            task=task, seed=int(seed), kinds=kinds, config=dict(config or {}), requested_by=user
        )
        probe_set.append_log(f"requested: kinds {', '.join(kinds)}, seed {seed}")
        jobs.queue(probe_set)
    return probe_set


def start_probe_run(main_run: Run, probe_set: ProbeSet, *, user=None) -> Run:
    """A run of `main_run`'s model on `probe_set` (same seed, sampling settings and samples per case)."""
    if main_run.probe_of_id is not None:
        raise ProbeError("A probe run has no probe runs of its own: start one from its main run.")
    if main_run.model is None:
        raise ProbeError("Only a run of a model on the platform can be probed (a submission has no model to run).")
    if probe_set.task_id != main_run.task_id:
        raise ProbeError(f"The probe set is of task '{probe_set.task.slug}', the run of '{main_run.task.slug}'.")
    if probe_set.status != JobStatus.SUCCEEDED or probe_set.dataset_id is None:
        raise ProbeConflict(f"The probe set is {probe_set.status}: it can be run on once it has been built.")
    existing = Run.objects.filter(probe_of=main_run, dataset=probe_set.dataset).exclude(
        status__in=(JobStatus.FAILED, JobStatus.CANCELLED)
    )
    if existing.exists():
        return existing.first()
    noise = main_run.model.is_noise_predictor
    return create_run(
        main_run.model,
        user=user,
        name=f"{main_run.name or main_run.model.name} · probes {probe_set.pk}",
        seed=main_run.seed,
        sampling_steps=main_run.sampling_steps if noise else None,
        scheduler=main_run.scheduler if noise else "",
        samples_per_case=main_run.samples_per_case if noise else None,
        dataset=probe_set.dataset,
        probe_of=main_run,
    )


def score_probe_run(run: Run, *, n_resamples: int = 2000, seed: int = 0) -> ProbeScore:
    """Score a succeeded probe run against its probe set's truth (see ``scoring``) and store it."""
    probe_set = ProbeSet.objects.filter(dataset_id=run.dataset_id).first() if run.dataset_id else None
    if run.probe_of_id is None or probe_set is None:
        raise ProbeError(f"Run {run.pk} is not a probe run.")
    if run.status != JobStatus.SUCCEEDED:
        raise ProbeConflict(f"Run {run.pk} is {run.status}: only a succeeded probe run is scored.")
    outputs: dict[int, list] = {}
    for output in run.outputs.order_by("case_id", "sample"):
        outputs.setdefault(output.case_id, []).append(output.load())
    outcomes, marks = [], {"error": [], "sd": [], "radiomics_ood": []}
    probes = list(
        ProbeCase.objects.filter(probe_set=probe_set)
        .select_related("case", "source")
        .prefetch_related("case__images", "source__images")
    )
    reference = _ood_reference(probes)
    regions, sd_maps = {}, {}
    for probe in probes:
        samples = outputs.get(probe.case_id)
        if not samples:
            raise ProbeError(f"Probe run {run.pk} has no output for probe case '{probe.case.case_id}'.")
        region = probe.truth_mask_array()
        regions[probe.case.case_id] = region
        outcomes.extend(scoring.score_probe(probe.case.case_id, probe.truth, region, samples))
        truth_image = probe.case.image("reference").load()
        detector_maps = {"error": scoring.error_map(samples, truth_image), "sd": scoring.sd_map(samples)}
        if detector_maps["sd"] is not None:
            sd_maps[probe.case.case_id] = detector_maps["sd"]
        for name, detector_map in detector_maps.items():
            if detector_map is None:
                continue
            for row, col, rating in scoring.marks_from_map(detector_map):
                marks[name].append([probe.case.case_id, row, col, rating])
        if reference is not None:
            for row, col, rating in ood.ood_marks(samples, reference):
                marks["radiomics_ood"].append([probe.case.case_id, row, col, rating])
    index = scoring.hallucination_index(outcomes, n_resamples=n_resamples, seed=seed)
    checks = {}
    if sd_maps:
        hallucinated = scoring.hallucinated_cases(outcomes)
        checks = uncertainty.uncertainty_checks(sd_maps, {case: regions[case] for case in hallucinated})
    config = {
        "present_fraction": scoring.PRESENT_FRACTION,
        "ring_px": [construct.RING_INNER, construct.RING_OUTER],
        "mark_sigma": scoring.MARK_SIGMA,
        "mark_separation": scoring.MARK_SEPARATION,
        "marks_per_case": scoring.MARKS_PER_CASE,
        "n_resamples": n_resamples,
        "seed": seed,
        "ood": {
            "patch_px": ood.PATCH_PX,
            "stride_px": ood.STRIDE_PX,
            "features": list(ood.FEATURES),
            "reference": "the real references of the probe set's source test cases",
            "reference_patches": reference.n_patches if reference is not None else 0,
            "max_samples": ood.MAX_SAMPLES,
        },
    }
    score, _ = ProbeScore.objects.update_or_create(
        run=run,
        defaults={
            "probe_set": probe_set,
            "outcomes": [o.to_dict() for o in outcomes],
            "index": _json_safe(index),
            "detector_marks": {name: rows for name, rows in marks.items() if rows},
            "config": config,
            "uncertainty": _json_safe(checks),
        },
    )
    return score


def _ood_reference(probes) -> ood.Reference | None:
    """The OOD detector's reference: the patch features of the real references of the probes' source cases
    (None where they are too small for a patch)."""
    sources = {probe.source_id: probe.source for probe in probes}
    images = [sources[pk].image("reference").load() for pk in sorted(sources)]
    try:
        return ood.reference_from_images(images)
    except ValueError as exc:
        log.info("no radiomics OOD reference: %s", exc)
        return None


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def on_run_finished(sender, job_id, status, **kwargs):
    """`job_finished` receiver: a probe run that succeeds is scored (again, harmlessly, on a repeated signal).

    A probe run that cannot be scored (a missing output, a zero-contrast truth) is logged on the run, once: it is
    not raised, or the run's follow-ups would be re-sent forever (`core.jobs.rechain`)."""
    if status != JobStatus.SUCCEEDED:
        return
    run = Run.objects.filter(pk=job_id, probe_of__isnull=False).first()
    if run is None:
        return
    try:
        score_probe_run(run)
    except (ProbeError, ValueError) as exc:
        log.warning("probe run %s could not be scored: %s", run.pk, exc)
        message = f"not scored against its probes: {exc}"
        if message not in run.log:
            run.append_log(message)
