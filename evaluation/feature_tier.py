"""The feature tier of an evaluation: per extractor, the run's outputs against the task's real images.

One sample per case (sample 0), so each output pairs with its case's reference where the task's
real images are its own cases' references (paired); a separate reference set is resampled on its
own. The Fréchet distance (FRD on radiomics, FID on Inception features) gets a bootstrap CI over
cases; KID, precision and recall are stored as they are. Radiomics features are z-scored against the
reference set and clipped to ±`catalog.FRD_ZSCORE_CLIP` first (how many values were clipped is kept
with each result); FRD also keeps its authors' log(d²). The numbers come from each metric's entry
in `metrics.catalog`.
"""

import numpy as np
from django.conf import settings

from .features import extract, reference_features, save_run_features
from .metrics import bootstrap, catalog, feature
from .metrics.extractors import ExtractorUnavailable, get_extractor
from .metrics.radiomics import feature_names
from .selectors import extractor_sha256, extractor_status, extractor_weights
from .services import EvaluationError, store_metric


def feature_tier(run, name, cases, usable, range_pair):
    """The feature metrics of extractor `name` over the `usable` cases ({case pk: (output, spacing, shape)},
    from the pixel tier); the set of MetricResults written. `ExtractorUnavailable` says why there are none."""
    available, reason = extractor_status(name)
    if not available:
        raise ExtractorUnavailable(reason)
    extractor = get_extractor(name, weights_path=extractor_weights(name), weights_sha256=extractor_sha256(name))
    ordered = [case for case in cases if case.pk in usable]
    if len(ordered) < 2:
        raise ExtractorUnavailable("Fewer than two cases have usable outputs; feature metrics need a set.")
    generated = extract(
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
    # An output whose features are not finite (an extreme image the extractor overflowed on) would make
    # every distance NaN: it is left out and counted, as the pixel tier counts the cases it excludes.
    finite = np.isfinite(generated).all(axis=1) & (np.isfinite(reference).all(axis=1) if paired else True)
    if not finite.all():
        generated = generated[finite]
        reference = reference[finite] if paired else reference
        kept_pks = [pk for pk, ok in zip(kept_pks, finite, strict=True) if ok]
    if len(kept_pks) < 2:
        raise ExtractorUnavailable("Fewer than two cases have finite features; feature metrics need a set.")
    save_run_features(run, extractor, range_pair, kept_pks, generated)
    return feature_metrics(run, name, generated, reference, paired=paired, excluded=int((~finite).sum()))


def feature_metrics(run, name, generated, reference, *, paired, excluded=0):
    """Fréchet distance (FRD or FID) with a bootstrap CI, KID, precision and recall of (n, d) features."""
    standardised = {}
    if name == "radiomics":
        columns = frd_columns(generated.shape[1])
        generated, reference, kept = feature.zscore_against_reference(generated[:, columns], reference[:, columns])
        limit = catalog.FRD_ZSCORE_CLIP
        beyond = np.abs(generated) > limit
        generated, reference = np.clip(generated, -limit, limit), np.clip(reference, -limit, limit)
        standardised = {
            "zscore_clip": limit,
            "features_kept": int(kept.sum()),
            "features_clipped": int(beyond.any(axis=0).sum()),
            "values_clipped": int(beyond.sum()),
        }
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
        store_metric(
            run,
            frechet_key,
            extractor=name,
            value=ci.estimate,
            ci_low=ci.low,
            ci_high=ci.high,
            n_resamples=ci.n_resamples,
            confidence=ci.confidence,
            n_cases=n,
            n_excluded=excluded,
            extra={
                "reference_n": int(len(reference)),
                "dim": int(generated.shape[1]),
                **standardised,
                **(_frd_logs(ci) if frechet_key == "frd" else {}),
            },
        )
    }
    if name in catalog.EMBEDDING_EXTRACTOR_METRICS:
        return written | embedding_metrics(run, name, generated, reference, paired=paired, excluded=excluded)
    keys = ["kid"]
    if n > catalog.PRC_NEIGHBOURS and len(reference) > catalog.PRC_NEIGHBOURS:
        keys += ["precision", "recall"]
    for key in keys:
        value, extra = catalog.get(key).compute(generated, reference)
        extra = {**extra, **standardised}
        written.add(store_metric(run, key, extractor=name, value=value, n_cases=n, n_excluded=excluded, extra=extra))
    return written


def _frd_logs(ci):
    """FRD as its authors' v1 code reports it, log(d²), with the CI's bounds on the same scale (log is
    monotone); None where d² is 0 (log −inf)."""

    def log(value):
        return None if value is None or value <= 0 else feature.frd_log(value)

    return {"log": log(ci.estimate), "log_ci": [log(ci.low), log(ci.high)]}


def frd_columns(dim):
    """Boolean mask of the radiomics columns that enter the FRD (see catalog.FRD_EXCLUDED_FEATURES)."""
    names = feature_names()
    if dim % len(names):
        raise EvaluationError(f"Radiomics features have {dim} columns, not a multiple of {len(names)}.")
    return np.array([not catalog.FRD_EXCLUDED_FEATURES.search(n) for n in names * (dim // len(names))])


def embedding_metrics(run, name, generated, reference, *, paired, excluded):
    """The CLIP / DINOv2 extractor's metrics besides its Fréchet distance: CMMD on the sets; CLIP similarity
    per case (row i of `generated` and `reference` is case i's output and reference where `paired`), its mean
    with a bootstrap CI over cases. Without paired references CLIP similarity is not defined and not stored."""
    frechet_key = catalog.FRECHET_BY_EXTRACTOR[name]
    written = set()
    for key in catalog.EMBEDDING_EXTRACTOR_METRICS[name]:
        if key == frechet_key or (key in catalog.PAIRED_METRICS and not paired):
            continue
        compute = catalog.get(key).compute
        fields = {"n_cases": len(generated), "n_excluded": excluded}
        if key in catalog.PAIRED_METRICS:
            ci = bootstrap.bootstrap_statistic_ci(
                len(generated),
                lambda indices, compute=compute: compute(generated[indices], reference[indices])[0],
                n_resamples=settings.MEDGEN_BOOTSTRAP_RESAMPLES,
                seed=settings.MEDGEN_BOOTSTRAP_SEED,
            )
            _, extra = compute(generated, reference)
            fields.update(ci_low=ci.low, ci_high=ci.high, n_resamples=ci.n_resamples, confidence=ci.confidence)
            value = ci.estimate
        else:
            value, extra = compute(generated, reference)
        written.add(store_metric(run, key, extractor=name, value=value, extra=extra, **fields))
    return written
