"""Evaluating runs: the pixel tier per case, the feature tier per extractor, bootstrap CIs.

An evaluation is a kind of `core.models.Job`; `evaluate` is its handler (`core.jobs` claims it,
beats its heartbeat and finishes it). It writes every result with update-or-create on its unique
key and reports progress between batches, which stops it once the evaluation was handed to
another attempt. The numbers come from `evaluation.metrics`, a plain library with no Django in it.
"""

import hashlib
import io
import logging
import time

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from core import jobs
from core.errors import InvalidInput
from core.models import JobStatus
from inference.models import CaseImage, CaseOutput, ImageRole, Run
from inference.storage import load_array, save_array

from .formatting import decode_value, encode_value
from .metrics import bootstrap, catalog, feature, pixel
from .metrics.extractors import ExtractorUnavailable, availability, configured_weights_path, get_extractor
from .models import CaseResult, CaseStatus, Evaluation, FeatureSet, MetricResult

log = logging.getLogger(__name__)


class EvaluationError(InvalidInput):
    """An evaluation cannot be requested or cannot finish; the message says why."""


# ---------------------------------------------------------------------------- requesting


def request_evaluation(run: Run, *, user=None) -> Evaluation:
    """Queue (or re-queue) the evaluation of a succeeded run; the job is sent on commit."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status != JobStatus.SUCCEEDED:
            raise EvaluationError(f"Only a succeeded run can be evaluated; this run is {run.status}.")
        evaluation, _ = Evaluation.objects.select_for_update().get_or_create(run=run)
        if evaluation.is_active:
            raise EvaluationError(f"The evaluation is already {evaluation.status}.")
        evaluation.requested_by = user
        evaluation.progress_done = 0
        evaluation.append_log(f"requested by {user or 'the platform'}", save=False)
        jobs.queue(evaluation)
    return evaluation


def on_run_finished(sender, job_id, status, **kwargs):
    """`job_finished` receiver: every run that succeeds is evaluated once (a repeated signal changes nothing)."""
    if status != JobStatus.SUCCEEDED:
        return
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=job_id)
        evaluation, created = Evaluation.objects.select_for_update().get_or_create(run=run)
        if created or evaluation.status == JobStatus.PENDING:
            evaluation.append_log("requested by the platform: the run succeeded", save=False)
            jobs.queue(evaluation)


# ------------------------------------------------------------------------------- the job


def evaluate(evaluation, context):
    """Job handler: the pixel tier per case, the feature tier per extractor, summaries with bootstrap CIs."""
    started = time.monotonic()
    run = evaluation.run
    task = run.task
    metric_keys = pixel_metrics_for(task)
    window, range_source = resolve_intensity_window(task)
    data_range = window[1] - window[0]
    extractors = list(settings.MEDGEN_FEATURE_EXTRACTORS)
    cases = list(task.dataset.cases.order_by("case_id").prefetch_related("images"))
    config = {
        "pixel_metrics": metric_keys,
        "extractors": extractors,
        "bootstrap": {
            "method": "percentile, case resampling",
            "n_resamples": settings.MEDGEN_BOOTSTRAP_RESAMPLES,
            "feature_resamples": settings.MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES,
            "seed": settings.MEDGEN_BOOTSTRAP_SEED,
            "confidence": 0.95,
        },
        "versions": {key: catalog.metric_version(key) for key in metric_keys},
        "samples_per_case": run.model.samples_per_case if run.model and run.model.stochastic else 1,
    }
    context.progress(
        done=0,
        total=len(cases) + len(extractors),
        phase="pixel metrics",
        data_range=data_range,
        data_range_source=range_source,
        config=config,
        unavailable={},
    )

    unavailable = {}
    outputs_by_case = {}
    for output in CaseOutput.objects.filter(run=run).order_by("case_id", "sample"):
        outputs_by_case.setdefault(output.case_id, []).append(output)

    evaluated = _pixel_tier(context, run, cases, outputs_by_case, metric_keys, data_range, unavailable)
    written = _pixel_summaries(run, metric_keys, data_range, unavailable)

    for position, name in enumerate(extractors):
        context.progress(done=len(cases) + position, phase=f"features: {name}")
        try:
            written |= _feature_tier(run, name, cases, evaluated, window)
        except ExtractorUnavailable as exc:
            unavailable[name] = str(exc)
        except ValueError as exc:  # the data do not allow the metric (e.g. a reference set with no spread)
            unavailable[name] = f"Not computed on this run: {exc}."

    # Results this evaluation did not produce (a metric dropped from the task, an extractor
    # no longer configured) would otherwise linger beside fresh ones. Only this job's tiers:
    # other tiers (the downstream task's clinical results) belong to other jobs.
    stale = MetricResult.objects.filter(run=run, tier__in=[catalog.PIXEL, catalog.FEATURE])
    stale = stale.exclude(pk__in=[result.pk for result in written])
    stale.delete()
    CaseResult.objects.filter(run=run).exclude(case__in=cases).delete()

    seconds = time.monotonic() - started
    context.finish(
        JobStatus.SUCCEEDED,
        progress_done=len(cases) + len(extractors),
        phase="",
        unavailable=unavailable,
        seconds=seconds,
        cases_per_second=len(cases) / seconds if seconds else None,
    )


def pixel_metrics_for(task):
    chosen = [key for key in (task.metrics or []) if key in catalog.PIXEL_METRICS]
    return chosen or list(catalog.DEFAULT_PIXEL_METRICS)


def resolve_intensity_window(task):
    """((lo, hi), source): hi − lo is the data_range of PSNR/SSIM; the window maps intensities for extractors.

    lo is the lowest reference intensity (0 without references); hi is lo + the task's data_range, else
    the highest reference intensity.
    """
    references = CaseImage.objects.filter(case__dataset=task.dataset, role=ImageRole.REFERENCE)
    bounds = list(references.values_list("intensity_min", "intensity_max"))
    lows = [lo for lo, _ in bounds if lo is not None]
    highs = [hi for _, hi in bounds if hi is not None]
    lo = float(min(lows)) if lows else 0.0
    if task.data_range:
        return (lo, lo + float(task.data_range)), "task setting"
    if not lows or not highs or max(highs) <= lo:
        raise EvaluationError(
            "The task has no data_range and its reference images have no usable intensity range; "
            "set the task's data_range."
        )
    return (lo, float(max(highs))), "reference images' intensity range (max − min)"


def _reference_array(case):
    references = sorted((im for im in case.images.all() if im.role == ImageRole.REFERENCE), key=lambda im: im.index)
    if not references:
        return None, None
    array = np.concatenate([im.load() for im in references], axis=0)
    return array, references[0].spacing


def _pixel_tier(context, run, cases, outputs_by_case, metric_keys, data_range, unavailable):
    """Per-case pixel metrics, batched by shape.

    Returns {case_pk: (first output, spacing, shape)} for the cases the feature tier may use; the
    arrays themselves are dropped after each batch, so memory does not grow with the dataset.
    """
    usable = {}
    batch_size = settings.MEDGEN_EVALUATION_BATCH_SIZE
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        loaded = []
        for case in chunk:
            reference, spacing = _reference_array(case)
            outputs = outputs_by_case.get(case.pk, [])
            if reference is None or not outputs:
                missing = "no reference image" if reference is None else "no output"
                _store_case(run, case, CaseStatus.MISSING, f"The case has {missing}.", samples=len(outputs))
                continue
            arrays = [output.load() for output in outputs]
            if len({array.shape for array in arrays}) > 1:
                shapes = ", ".join(f"sample {o.sample}: {a.shape}" for o, a in zip(outputs, arrays, strict=True))
                _store_case(
                    run, case, CaseStatus.WRONG_SHAPE, f"Samples differ in shape ({shapes}).", samples=len(outputs)
                )
                continue
            samples = np.stack(arrays).astype(np.float32, copy=False)
            problem = _check_output(samples, reference, outputs)
            if problem:
                status, text = problem
                _store_case(run, case, status, text, samples=len(outputs))
                continue
            loaded.append((case, reference, samples, spacing))
        for group in _group_by_shape(loaded).values():
            values = _pixel_values(group, metric_keys, data_range, unavailable)
            for (case, _, samples, spacing), case_values in zip(group, values, strict=True):
                result = _store_case(run, case, CaseStatus.OK, "", samples=len(samples), values=case_values)
                if len(samples) > 1:
                    _store_uncertainty(result, samples)
                usable[case.pk] = (outputs_by_case[case.pk][0], spacing, samples.shape[1:])
        context.progress(done=min(start + batch_size, len(cases)))
    return usable


def _check_output(samples, reference, outputs):
    if samples.shape[1:] != reference.shape:
        return (
            CaseStatus.WRONG_SHAPE,
            f"Output shape {tuple(samples.shape[1:])} does not match the reference {tuple(reference.shape)}.",
        )
    # store_output, the only writer of outputs, counts NaN/Inf voxels when it saves them.
    bad = [(output.sample, int(output.nonfinite_count)) for output in outputs if output.nonfinite_count]
    if bad:
        where = ", ".join(f"sample {sample}: {count} voxel(s)" for sample, count in bad)
        return CaseStatus.NONFINITE, f"NaN/Inf in the output ({where})."
    return None


def _group_by_shape(loaded):
    groups = {}
    for item in loaded:
        groups.setdefault(item[2].shape, []).append(item)
    return groups


def _pixel_values(group, metric_keys, data_range, unavailable):
    """Metric values per case of a same-shape group: the mean over each case's samples."""
    preds = np.concatenate([samples for _, _, samples, _ in group])  # (sum S, C, *spatial)
    targets = np.concatenate([np.broadcast_to(ref, samples.shape) for _, ref, samples, _ in group])
    owners = np.concatenate([[i] * len(samples) for i, (_, _, samples, _) in enumerate(group)])
    per_case = [{} for _ in group]
    for key in metric_keys:
        try:
            values = np.asarray(catalog.get(key).compute(preds, targets, data_range=data_range), dtype=np.float64)
        except ValueError as exc:
            # e.g. MS-SSIM on images too small for its scales: say so on the page, keep the rest.
            unavailable[key] = str(exc)
            continue
        for i in range(len(group)):
            per_case[i][key] = encode_value(float(np.mean(values[owners == i])))
    return per_case


def _store_case(run, case, status, problem, *, samples, values=None):
    result, _ = CaseResult.objects.update_or_create(
        run=run,
        case=case,
        defaults={
            "status": status,
            "problem": problem,
            "samples": samples,
            "values": values or {},
            "uncertainty_mean": None,
            "uncertainty_p95": None,
        },
    )
    if status != CaseStatus.OK and result.uncertainty_map:
        result.uncertainty_map.delete(save=True)
    return result


def _store_uncertainty(result, samples):
    """Per-voxel SD over a stochastic model's samples (ddof = 1), stored as an array."""
    sd = np.std(samples.astype(np.float64), axis=0, ddof=1).astype(np.float32)
    save_array(result.uncertainty_map, f"{result.case_id}_sd.npy", sd)
    result.uncertainty_mean = float(sd.mean())
    result.uncertainty_p95 = float(np.percentile(sd, 95))
    result.save(update_fields=["uncertainty_map", "uncertainty_mean", "uncertainty_p95"])


def _pixel_summaries(run, metric_keys, data_range, unavailable):
    """Per-run means with bootstrap CIs over the cases that were evaluated."""
    results = list(CaseResult.objects.filter(run=run))
    excluded = sum(1 for result in results if result.status != CaseStatus.OK)
    written = set()
    for key in metric_keys:
        if key in unavailable:
            continue
        values = [decode_value(r.values.get(key)) for r in results if r.status == CaseStatus.OK]
        values = [v for v in values if v is not None]
        if not values:
            continue
        ci = bootstrap.bootstrap_mean_ci(
            np.asarray(values, dtype=np.float64),
            n_resamples=settings.MEDGEN_BOOTSTRAP_RESAMPLES,
            seed=settings.MEDGEN_BOOTSTRAP_SEED,
        )
        written.add(
            _store_metric(
                run,
                key,
                "",
                ci.estimate,
                ci.low,
                ci.high,
                n_resamples=ci.n_resamples,
                confidence=ci.confidence,
                n_cases=len(values),
                n_excluded=excluded,
                data_range=data_range,
                extra=_pixel_extra(run, key, values),
            )
        )
    return written


def _pixel_extra(run, key, values):
    if key == "psnr":
        return {"infinite_cases": int(np.isinf(values).sum())}
    if key == "ms_ssim":
        # Images smaller than 176 px use the finest scales that fit, weights renormalised (see pixel.ms_ssim).
        shapes = {
            tuple(shape) for shape in CaseOutput.objects.filter(run=run, sample=0).values_list("shape", flat=True)
        }
        scales = min(pixel.ms_ssim_max_scales(shape[1:]) for shape in shapes)
        return {"scales": scales, "full_definition": scales == len(pixel.MS_SSIM_WEIGHTS)}
    return {}


def _store_metric(run, metric, extractor, value, low, high, **fields):
    result, _ = MetricResult.objects.update_or_create(
        run=run,
        metric=metric,
        extractor=extractor,
        defaults={
            "tier": catalog.get(metric).tier,
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "bootstrap_seed": settings.MEDGEN_BOOTSTRAP_SEED,
            "version": catalog.metric_version(metric, extractor),
            **fields,
        },
    )
    return result


# ------------------------------------------------------------------------- feature tier


def extractor_weights(name):
    return configured_weights_path(name, settings)


def extractor_status(name):
    """(available, reason) for the page, without loading anything."""
    return availability(name, extractor_weights(name))


def _feature_tier(run, name, cases, usable, range_pair):
    available, reason = extractor_status(name)
    if not available:
        raise ExtractorUnavailable(reason)
    extractor = get_extractor(name, weights_path=extractor_weights(name))
    ordered = [case for case in cases if case.pk in usable]
    if len(ordered) < 2:
        raise ExtractorUnavailable("Fewer than two cases have usable outputs; feature metrics need a set.")
    # One sample per case (sample 0), so each output pairs with its case's reference.
    generated = _extract(
        extractor, [(usable[c.pk][0].load, usable[c.pk][2], usable[c.pk][1]) for c in ordered], range_pair
    )
    reference_pks, reference = reference_features(run.task, extractor, range_pair)
    paired = run.task.reference_dataset_id in (None, run.task.dataset_id)
    if paired:
        index = {pk: i for i, pk in enumerate(reference_pks)}
        keep = [i for i, case in enumerate(ordered) if case.pk in index]
        generated = generated[keep]
        reference = reference[[index[ordered[i].pk] for i in keep]]
    kept_pks = [ordered[i].pk for i in keep] if paired else [case.pk for case in ordered]
    _save_run_features(run, extractor, range_pair, kept_pks, generated)
    return _feature_metrics(run, name, generated, reference, paired=paired)


def _extract(extractor, items, range_pair):
    """Features of `(load, shape, spacing)` items: loaded a batch at a time, grouped by shape and spacing."""
    batch_size = settings.MEDGEN_EVALUATION_BATCH_SIZE
    features = None
    groups = {}
    for i, (_, shape, spacing) in enumerate(items):
        groups.setdefault((tuple(shape), tuple(spacing or ())), []).append(i)
    for (_, spacing), indices in groups.items():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = np.stack([items[i][0]() for i in chunk]).astype(np.float32)
            values = extractor.extract(batch, data_range=range_pair, spacing=spacing or None)
            if features is None:
                features = np.empty((len(items), values.shape[1]), dtype=np.float64)
            features[chunk] = values
    return features


def _feature_set_version(extractor, range_pair):
    """Cached features depend on the extractor's version and on the intensity window it was given."""
    return f"{extractor.spec.version}|{range_pair[0]:.9g}:{range_pair[1]:.9g}"


def reference_features(task, extractor, range_pair):
    """(case pks, features) of the task's real images, computed once per extractor version and cached."""
    dataset = task.reference_dataset or task.dataset
    version = _feature_set_version(extractor, range_pair)
    cached = FeatureSet.objects.filter(dataset=dataset, extractor=extractor.spec.name, version=version).first()
    if cached:
        with cached.file.open("rb") as handle:
            data = np.load(handle, allow_pickle=False)
            return list(data["case_pks"]), data["features"]
    items, pks = [], []
    for case in dataset.cases.order_by("case_id").prefetch_related("images"):
        images = sorted((im for im in case.images.all() if im.role == ImageRole.REFERENCE), key=lambda im: im.index)
        if not images:  # a separate set of real images may hold them as its cases' inputs
            images = [im for im in case.images.all() if im.role == ImageRole.INPUT and im.index == 0]
        if not images:
            continue
        shape = [sum(im.shape[0] for im in images), *images[0].shape[1:]]
        items.append((lambda images=images: np.concatenate([im.load() for im in images]), shape, images[0].spacing))
        pks.append(case.pk)
    if len(items) < 2:
        raise ExtractorUnavailable("The reference set has fewer than two images.")
    features = _extract(extractor, items, range_pair)
    _save_feature_set({"dataset": dataset}, extractor, version, pks, features)
    return pks, features


def _save_feature_set(owner, extractor, version, case_pks, features):
    buffer = io.BytesIO()
    np.savez(buffer, features=features, case_pks=np.asarray(case_pks, dtype=np.int64))
    key = "-".join(f"{k}{v.pk}" for k, v in owner.items())
    tag = hashlib.sha256(version.encode()).hexdigest()[:12]
    name = f"{key}-{extractor.spec.name}-{tag}.npz"
    with transaction.atomic():
        existing = (
            FeatureSet.objects.select_for_update()
            .filter(extractor=extractor.spec.name, version=version, **owner)
            .first()
        )
        feature_set = existing or FeatureSet(extractor=extractor.spec.name, version=version, **owner)
        if feature_set.file:
            feature_set.file.delete(save=False)
        feature_set.file.save(name, ContentFile(buffer.getvalue()), save=False)
        feature_set.n, feature_set.dim = features.shape
        feature_set.save()
    return feature_set


def _save_run_features(run, extractor, range_pair, case_pks, features):
    version = _feature_set_version(extractor, range_pair)
    for old in FeatureSet.objects.filter(run=run, extractor=extractor.spec.name).exclude(version=version):
        old.file.delete(save=False)
        old.delete()
    return _save_feature_set({"run": run}, extractor, version, case_pks, features)


def _feature_metrics(run, name, generated, reference, *, paired):
    """Fréchet distance (FRD or FID) with a bootstrap CI, KID, precision and recall."""
    if name == "radiomics":
        columns = frd_columns(generated.shape[1])
        generated, reference, _ = feature.zscore_against_reference(generated[:, columns], reference[:, columns])
    frechet_key = catalog.FRECHET_BY_EXTRACTOR.get(name, "fid")
    frechet_distance = catalog.get(frechet_key).compute
    n = len(generated)
    rng = np.random.default_rng(settings.MEDGEN_BOOTSTRAP_SEED)
    reference_draws = {}

    def frechet(indices):
        if paired:
            ref = reference[indices]
        else:  # unpaired real set: resample it independently, the same way each time for a given draw
            key = indices.tobytes()
            if key not in reference_draws:
                reference_draws[key] = rng.integers(0, len(reference), len(reference))
            ref = reference[reference_draws[key]]
        value, _ = frechet_distance(generated[indices], ref)
        return value

    ci = bootstrap.bootstrap_statistic_ci(
        n,
        frechet,
        n_resamples=settings.MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES,
        seed=settings.MEDGEN_BOOTSTRAP_SEED,
    )
    written = {
        _store_metric(
            run,
            frechet_key,
            name,
            ci.estimate,
            ci.low,
            ci.high,
            n_resamples=ci.n_resamples,
            confidence=ci.confidence,
            n_cases=n,
            extra={"reference_n": int(len(reference)), "dim": int(generated.shape[1])},
        )
    }
    keys = ["kid"]
    if n > catalog.PRC_NEIGHBOURS and len(reference) > catalog.PRC_NEIGHBOURS:
        keys += ["precision", "recall"]
    for key in keys:
        value, extra = catalog.get(key).compute(generated, reference)
        written.add(_store_metric(run, key, name, value, None, None, n_cases=n, extra=extra))
    return written


def frd_columns(dim):
    """Boolean mask of the radiomics columns that enter the FRD (see catalog.FRD_EXCLUDED_FEATURES)."""
    from .metrics.radiomics import feature_names

    names = feature_names()
    if dim % len(names):
        raise EvaluationError(f"Radiomics features have {dim} columns, not a multiple of {len(names)}.")
    return np.array([not catalog.FRD_EXCLUDED_FEATURES.search(n) for n in names * (dim // len(names))])


def load_uncertainty(result):
    return load_array(result.uncertainty_map)
