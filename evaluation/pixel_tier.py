"""The pixel tier of an evaluation: per case, every output sample against the case's reference image.

Cases are loaded a batch at a time and computed in groups of one shape; a case whose output is
missing, of the wrong shape or has NaN/Inf voxels is stored with the reason instead of values.
A case's value is the mean over its samples; a stochastic model's per-voxel SD over samples is
stored as an array. Per-run means get a bootstrap CI over cases. The numbers come from each
metric's entry in `metrics.catalog`.

The task's profile and region decide how a case is scored (`task_settings`): the "medgen" profile on the
whole image goes through the batched catalogue functions; inside a region it is `metrics.regions`'
masked form of the same metrics; "fastmri" and "synthrad2025" are `metrics.profiles.evaluate` per case
(keys stored as "<profile>:<metric>"). The region is a mask image of the case or one computed from the
reference (`metrics.regions.mask_from_reference`); a case the profile or region cannot score (no mask,
an empty region, a 2-D image under SynthRAD2025) is stored as refused, with the reason.
"""

import numpy as np
from django.conf import settings

from inference.models import CaseOutput, EvaluationRegion, ImageRole
from inference.storage import save_array

from .formatting import decode_value, encode_value
from .metrics import bootstrap, catalog, pixel, profiles, regions
from .models import CaseResult, CaseStatus
from .selectors import case_images
from .services import store_metric
from .task_settings import region_name


def pixel_tier(context, run, cases, outputs_by_case, metric_keys, data_range, unavailable):
    """Per-case pixel metrics, batched by shape; a metric that cannot be computed is named in `unavailable`.

    Returns {case_pk: (first output, spacing, shape)} for the cases the feature tier may use; the
    arrays themselves are dropped after each batch, so memory does not grow with the dataset.
    """
    usable = {}
    task = run.task
    scored_whole = task.profile == profiles.DEFAULT_PROFILE and task.region == EvaluationRegion.WHOLE
    batch_size = settings.MEDGEN_EVALUATION_BATCH_SIZE
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        loaded = []
        for case in chunk:
            reference, spacing = reference_array(case)
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
            if not scored_whole:
                try:
                    values, fraction = _case_in_region(
                        task, case, reference, samples, metric_keys, data_range, unavailable
                    )
                except RegionError as exc:
                    _store_case(run, case, CaseStatus.REFUSED, str(exc), samples=len(outputs))
                    continue
                result = _store_case(
                    run, case, CaseStatus.OK, "", samples=len(samples), values=values, region_fraction=fraction
                )
                if len(samples) > 1:
                    _store_uncertainty(result, samples)
                usable[case.pk] = (outputs[0], spacing, samples.shape[1:])
                continue
            loaded.append((case, reference, samples, spacing))
        for group in _group_by_shape(loaded).values():
            values = _pixel_values(group, metric_keys, data_range, unavailable)
            for (case, _, samples, spacing), case_values in zip(group, values, strict=True):
                result = _store_case(
                    run, case, CaseStatus.OK, "", samples=len(samples), values=case_values, region_fraction=1.0
                )
                if len(samples) > 1:
                    _store_uncertainty(result, samples)
                usable[case.pk] = (outputs_by_case[case.pk][0], spacing, samples.shape[1:])
        context.progress(done=min(start + batch_size, len(cases)))
    return usable


class RegionError(ValueError):
    """The case cannot be scored under the task's profile and region; the message says why."""


def region_mask(task, case, reference):
    """The case's region as a boolean ``(*spatial)`` array, None for the whole image; RegionError when it has none."""
    if task.region == EvaluationRegion.CASE_MASK:
        masks = case_images(case, ImageRole.MASK)
        if not masks:
            raise RegionError("The case has no ROI/body mask image, and the task scores inside each case's mask.")
        mask = masks[0].load()
        if mask.shape[1:] != reference.shape[1:]:
            raise RegionError(f"The case's mask has shape {mask.shape[1:]}; its reference {reference.shape[1:]}.")
        try:
            return regions.inside_of(mask[0], reference.shape[1:])
        except ValueError as exc:
            raise RegionError(f"The case's mask cannot be used: {exc}.") from None
    if task.region == EvaluationRegion.REFERENCE_THRESHOLD:
        try:
            return regions.mask_from_reference(reference[0], task.region_threshold)
        except ValueError as exc:
            raise RegionError(f"No region from the reference: {exc}.") from None
    return None


def _case_in_region(task, case, reference, samples, metric_keys, data_range, unavailable):
    """({key: encoded mean over samples}, share of voxels inside) of one case under the task's profile and region."""
    mask = region_mask(task, case, reference)
    fraction = 1.0 if mask is None else float(mask.mean())
    per_sample = []
    for sample in samples:
        if task.profile == profiles.DEFAULT_PROFILE:
            per_sample.append(_masked_medgen(sample, reference, mask, metric_keys, data_range, unavailable))
            continue
        if reference.shape[0] != 1:
            raise RegionError(
                f"The {task.profile} profile scores single-channel images; this case has {reference.shape[0]}."
            )
        try:
            values = profiles.evaluate(task.profile, sample[0], reference[0], mask)
        except ValueError as exc:
            raise RegionError(f"The {catalog.PROFILE_LABELS[task.profile]} profile refuses this case: {exc}.") from None
        per_sample.append({f"{task.profile}:{key}": value for key, value in values.items()})
    keys = [key for key in metric_keys if all(key in values for values in per_sample)]
    return {key: encode_value(float(np.mean([values[key] for values in per_sample]))) for key in keys}, fraction


def _masked_medgen(sample, reference, mask, metric_keys, data_range, unavailable):
    mask = np.ones(reference.shape[1:], dtype=bool) if mask is None else mask
    windowed = {"ssim", "ms_ssim"} & set(metric_keys)
    if windowed and not regions.reaches_ssim_area(mask):
        raise RegionError(
            f"The region has no voxel farther than 5 voxels from the image border, where {', '.join(sorted(windowed))} "
            "(an 11-voxel window) can be computed."
        )
    values = {}
    for key in metric_keys:
        if key in unavailable:
            continue
        try:
            values.update(regions.masked_pixel_metrics(sample, reference, mask, data_range=data_range, keys=[key]))
        except ValueError as exc:
            unavailable[key] = str(exc)
    return values


def reference_array(case):
    """The case's reference image(s), channels concatenated in index order, and its spacing; (None, None) if none."""
    references = case_images(case, ImageRole.REFERENCE)
    if not references:
        return None, None
    array = np.concatenate([im.load() for im in references], axis=0)
    return array, references[0].spacing


#: An output whose largest |value| exceeds this many times the reference's scale is not an image of the
#: same thing; squared, such values overflow the metrics' float32 steps (1e30² is inf) and poison the
#: feature tier. The case is excluded with the reason, and the evaluation goes on.
EXTREME_FACTOR = 1e6


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
    scale = max(float(np.abs(reference).max()), 1.0)
    largest = float(np.abs(samples).max())
    if largest > EXTREME_FACTOR * scale:
        return (
            CaseStatus.EXTREME,
            f"Output values up to {largest:.3g}, over {EXTREME_FACTOR:.0e} × the reference's largest value "
            f"({scale:.3g}): not scored.",
        )
    return None


def _group_by_shape(loaded):
    groups = {}
    for item in loaded:
        groups.setdefault(item[2].shape, []).append(item)
    return groups


def _pixel_values(group, metric_keys, data_range, unavailable):
    """Metric values per case of a same-shape group: the mean over each case's samples."""
    generated = np.concatenate([samples for _, _, samples, _ in group])  # (sum S, C, *spatial)
    references = np.concatenate([np.broadcast_to(ref, samples.shape) for _, ref, samples, _ in group])
    owners = np.concatenate([[i] * len(samples) for i, (_, _, samples, _) in enumerate(group)])
    per_case = [{} for _ in group]
    for key in metric_keys:
        compute = catalog.get(key).compute
        try:
            values = np.asarray(compute(generated, references, data_range=data_range), dtype=np.float64)
        except ValueError as exc:
            # e.g. MS-SSIM on images too small for its scales: say so on the page, keep the rest.
            unavailable[key] = str(exc)
            continue
        for i in range(len(group)):
            per_case[i][key] = encode_value(float(np.mean(values[owners == i])))
    return per_case


def _store_case(run, case, status, problem, *, samples, values=None, region_fraction=None):
    result, _ = CaseResult.objects.update_or_create(
        run=run,
        case=case,
        defaults={
            "status": status,
            "problem": problem,
            "samples": samples,
            "values": values or {},
            "region_fraction": region_fraction,
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


def pixel_summaries(run, metric_keys, data_range, unavailable):
    """Per-run means with bootstrap CIs over the cases that were evaluated; the set of MetricResults written."""
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
            store_metric(
                run,
                key,
                value=ci.estimate,
                ci_low=ci.low,
                ci_high=ci.high,
                n_resamples=ci.n_resamples,
                confidence=ci.confidence,
                n_cases=len(values),
                n_excluded=excluded,
                # The published profiles fix their own intensity range (fastMRI: reference.max(); SynthRAD: 4095 HU).
                data_range=data_range if run.task.profile == profiles.DEFAULT_PROFILE else None,
                region=region_name(run.task),
                extra=_pixel_extra(run, key, values),
            )
        )
    return written


def _pixel_extra(run, key, values):
    if key == "psnr":
        return {"infinite_cases": int(np.isinf(values).sum())}
    if key == "ms_ssim" and run.task.profile == profiles.DEFAULT_PROFILE:
        # Images smaller than 176 px use the finest scales that fit, weights renormalised (see pixel.ms_ssim).
        shapes = {
            tuple(shape) for shape in CaseOutput.objects.filter(run=run, sample=0).values_list("shape", flat=True)
        }
        scales = min(pixel.ms_ssim_max_scales(shape[1:]) for shape in shapes)
        return {"scales": scales, "full_definition": scales == len(pixel.MS_SSIM_WEIGHTS)}
    return {}
