"""The probe-set build job (`core.jobs` handler): probe cases made from a task's test cases, stored as a dataset.

Seeded per test case (``numpy.random.default_rng([seed, position])``), so a resumed job makes the same probes; a
test case whose probes are already stored is skipped. Regions: when the probe set's config names tissue label
codes (``plausible_labels`` …) and a case has a mask image, that image is read as a tissue map
(``construct.regions_from_tissue``); otherwise the regions come from the reference (``regions_from_images``, the
mask image, if any, as the body). Lesion levels: the config's ``levels`` ([input per channel], reference), else
the mean of the real lesion voxels over the test cases (``construct.lesion_levels``). The config's ``max_cases``
probes a seeded sample of that many test cases (a cheaper probe set).
"""

from __future__ import annotations

import numpy as np
from django.db import transaction

from core.models import JobStatus
from inference.models import Case, CaseImage, Dataset, ImageRole, TaskKind
from inference.storage import content_hash, save_array

from ..models import ProbeCase
from . import construct


class ProbeSetError(ValueError):
    """The probe set cannot be built; the message says why (the job's error)."""


def _images(case):
    images = {}
    for image in case.images.all():
        images.setdefault(image.role, []).append(image)
    for role in images:
        images[role].sort(key=lambda im: im.index)
    return images


def _load(case):
    images = _images(case)
    if ImageRole.INPUT not in images or ImageRole.REFERENCE not in images:
        raise ProbeSetError(f"case '{case.case_id}' needs an input and a reference to be probed")
    array_in = np.concatenate([im.load() for im in images[ImageRole.INPUT]], axis=0)
    reference = images[ImageRole.REFERENCE][0].load()
    label = images[ImageRole.LABEL][0].load()[0] if ImageRole.LABEL in images else None
    mask = images[ImageRole.MASK][0].load()[0] if ImageRole.MASK in images else None
    if reference.ndim != 3:
        raise ProbeSetError(f"case '{case.case_id}': probes are 2D; the reference has shape {reference.shape}")
    return images, array_in, reference, label, mask


def _regions(config, reference, label, mask):
    if mask is not None and config.get("plausible_labels"):
        return construct.regions_from_tissue(
            mask,
            plausible_labels=tuple(config["plausible_labels"]),
            csf_labels=tuple(config.get("csf_labels", ())),
            background_labels=tuple(config.get("background_labels", (0,))),
            lesion_labels=tuple(config.get("lesion_labels", ())),
        )
    return construct.regions_from_images(reference, label=label, body_mask=mask)


def _store_image(case, role, index, array, like):
    array = np.asarray(array, dtype=np.float32)
    image = CaseImage(
        case=case,
        role=role,
        index=index,
        source_format="npy",
        shape=list(array.shape),
        spacing=list(like.spacing),
        direction=list(like.direction),
        origin=list(like.origin),
        intensity_min=float(array.min()),
        intensity_max=float(array.max()),
        content_sha256=content_hash(array),
    )
    save_array(image.array, f"{role}_{index}.npy", array)
    image.save()


def _store_probe(probe_set, source, images, probe):
    like_ref = images[ImageRole.REFERENCE][0]
    with transaction.atomic():
        case = Case.objects.create(
            dataset=probe_set.dataset,
            case_id=f"{source.case_id}--{probe.kind}",
            metadata={"probe_of_case": source.case_id, "kind": probe.kind, "expected": probe.truth.expected},
        )
        start = 0
        for index, like in enumerate(images[ImageRole.INPUT]):
            channels = like.shape[0]
            _store_image(case, ImageRole.INPUT, index, probe.input[start : start + channels], like)
            start += channels
        _store_image(case, ImageRole.REFERENCE, 0, probe.reference, like_ref)
        _store_image(case, ImageRole.LABEL, 0, probe.label[None], like_ref)
        row = ProbeCase(
            probe_set=probe_set,
            case=case,
            source=source,
            kind=probe.kind,
            expected=probe.truth.expected,
            truth=probe.truth.to_dict(),
        )
        save_array(row.truth_mask, f"{case.pk}_truth.npy", probe.truth_mask[None].astype(np.float32))
        row.save()


def probed_positions(n_cases: int, max_cases: int | None, seed: int) -> set[int]:
    """Positions (in case-id order) of the test cases probed: all, or a seeded sample of ``max_cases`` of them
    (the lesion levels still come from every test case)."""
    if not max_cases or max_cases >= n_cases:
        return set(range(n_cases))
    rng = np.random.default_rng([int(seed), 7919])
    return {int(i) for i in rng.choice(n_cases, size=int(max_cases), replace=False)}


def build(probe_set, context):
    task = probe_set.task
    reconstruction = task.kind == TaskKind.RECONSTRUCTION
    kinds = tuple(probe_set.kinds or construct.KINDS)
    config = dict(probe_set.config or {})
    cases = list(task.dataset.cases.order_by("case_id").prefetch_related("images"))
    if not cases:
        raise ProbeSetError(f"task '{task.slug}' has no test cases to probe")
    context.progress(total=len(cases), done=0)
    loaded = [_load(case) for case in cases]
    if config.get("levels"):
        levels = (config["levels"][0], float(config["levels"][1]))
    else:
        try:
            levels = construct.lesion_levels(
                [None if reconstruction else item[1] for item in loaded],
                [item[2] for item in loaded],
                [item[3] if item[3] is not None else np.zeros(item[2].shape[1:]) for item in loaded],
            )
        except construct.ProbeError as exc:
            raise ProbeSetError(str(exc)) from None
    radius = tuple(config.get("radius_px", construct.DEFAULT_RADIUS_PX))
    if probe_set.dataset_id is None:
        dataset = Dataset.objects.create(
            name=f"Probe set {probe_set.pk} of {task.slug}",
            description=f"Hallucination probes ({', '.join(kinds)}) of the test cases of '{task.name}', "
            f"seed {probe_set.seed}.",
            source=f"evaluation.probes (probe set {probe_set.pk})",
            is_public=False,
            private_to=task,  # its organisers' (and staff's) only: `inference.permissions`
        )
        context.progress(dataset=dataset, config={**config, "levels_used": [levels[0], levels[1]]})
        probe_set.dataset = dataset
    done_sources = set(probe_set.probe_cases.values_list("source_id", flat=True))
    skipped = dict(probe_set.skipped or {})
    made = 0
    chosen = probed_positions(len(cases), config.get("max_cases"), probe_set.seed)
    for position, (case, (images, array_in, reference, label, mask)) in enumerate(zip(cases, loaded, strict=True)):
        context.check()
        if position not in chosen or case.pk in done_sources:
            continue
        rng = np.random.default_rng([int(probe_set.seed), position])
        try:
            regions = _regions(config, reference, label, mask)
            probes, why = construct.build_probes(
                input=array_in,
                reference=reference,
                label=label,
                regions=regions,
                rng=rng,
                levels=levels,
                kinds=kinds,
                reconstruction=reconstruction,
                radius_px=radius,
            )
        except construct.ProbeError as exc:
            raise ProbeSetError(f"case '{case.case_id}': {exc}") from None
        for probe in probes:
            _store_probe(probe_set, case, images, probe)
        made += len(probes)
        if why:
            skipped[case.case_id] = why
        context.progress(done=position + 1, skipped=skipped)
    total = probe_set.probe_cases.count()
    if total == 0:
        raise ProbeSetError("no probe could be made from the task's test cases: " + repr(skipped)[:500])
    context.log(f"{total} probe cases stored ({made} in this attempt)")
    context.finish(JobStatus.SUCCEEDED, progress_done=len(cases))
