"""The downstream training job: train the recipe's network on the train cases, score it on the real test cases.

A downstream job is a kind of `core.models.Job` and `train` is its handler: `core.jobs` claims it,
beats its heartbeat and finishes it. It trains on the train cases' images -- the run's outputs
(sample 0), or the real reference images for the real→real reference -- paired with their labels,
and scores every seed on the real reference images of the test cases; the numbers come from
`evaluation.segmentation`, which has no Django in it. Progress after every epoch stops it once a
cancel or the reaper took it away, and the results are written with the final state in one
transaction only while this attempt owns the job (`results`). A failure -- a NaN loss included --
fails the job with the reason and never touches the run or its evaluation.
"""

import dataclasses
import time

import numpy as np
import torch
from django.conf import settings
from django.utils import timezone

from core.models import JobStatus
from inference.models import CaseOutput, ImageRole

from .. import segmentation
from ..models import DownstreamSetup
from ..selectors import case_images
from .results import bootstrap_settings, write_results
from .services import DownstreamError


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def job_config(setup):
    """The setup's recipe, on this worker's thread count (a setting: it does not change what is trained)."""
    config = segmentation.SegmentationConfig.from_dict(setup.config)
    return dataclasses.replace(config, threads=settings.MEDGEN_DOWNSTREAM_THREADS)


def train(job, context):
    """Job handler: train and score every seed on the setup's split, store the results."""
    started = time.monotonic()
    setup = job.setup
    config = job_config(setup)
    device = _device()
    train_images, train_labels, train_ids, skipped = _training_data(job, setup)
    test_images, test_labels, spacing = _test_data(setup)
    seeds = list(setup.seeds)
    total = config.epochs * len(seeds)
    context.progress(device=device, total=total, done=0, curves={}, epoch=0, loss=None, phase="data loaded")
    context.log(
        f"{config.name} on {device}: {len(train_ids)} training cases"
        + (f" ({len(skipped)} left out: {'; '.join(skipped)})" if skipped else "")
        + f", {len(setup.test_case_ids)} test cases, seeds {seeds}"
    )
    curves = {}
    dice, hd95 = [], []
    for position, seed in enumerate(seeds):
        curves[str(seed)] = {"loss": []}

        def on_epoch(epoch, loss, seed=seed, position=position):
            curves[str(seed)]["loss"].append(loss)
            context.progress(
                done=position * config.epochs + epoch,
                epoch=epoch,
                loss=loss,
                phase=f"seed {seed} ({position + 1}/{len(seeds)}), epoch {epoch}/{config.epochs}",
                curves=curves,
            )

        trained = segmentation.train_segmenter(
            train_images, train_labels, config, seed, on_epoch=on_epoch, device=device
        )
        masks = segmentation.predict(trained.network, test_images, config, device=device)
        dice.append(segmentation.dice_per_case(masks, test_labels).tolist())
        hd95.append(segmentation.hd95_per_case(masks, test_labels, spacing).tolist())
        context.progress(  # after the (unreported) prediction and HD95 of this seed
            done=(position + 1) * config.epochs,
            epoch=config.epochs,
            phase=f"seed {seed} scored on the test cases",
        )

    results = {
        "config": setup.name,
        "seeds": seeds,
        "train_case_ids": train_ids,
        "train_left_out": skipped,
        "test_case_ids": list(setup.test_case_ids),
        "spacing": list(spacing),
        "dice": dice,
        "hd95": hd95,
        "final_loss": [curves[str(s)]["loss"][-1] for s in seeds],
    }
    results["summary"] = _summary(dice, hd95)
    _finish(context, setup, results, seconds=time.monotonic() - started, total=total)


def _load(image):
    return image.load().astype(np.float32, copy=False)


def _training_data(job, setup):
    """(images, labels, case ids used, reasons for those left out) of the train cases."""
    cases = {
        case.case_id: case
        for case in setup.task.dataset.cases.filter(case_id__in=setup.train_case_ids).prefetch_related("images")
    }
    outputs = {}
    if not job.is_reference:
        query = CaseOutput.objects.filter(run=job.run, sample=0, case__case_id__in=setup.train_case_ids)
        outputs = {output.case.case_id: output for output in query.select_related("case")}
    images, labels, used, skipped = [], [], [], []
    for case_id in setup.train_case_ids:
        case = cases.get(case_id)
        if case is None:
            skipped.append(f"{case_id}: no longer in the dataset")
            continue
        label = case_images(case, ImageRole.LABEL)
        if job.is_reference:
            image = np.concatenate([_load(im) for im in case_images(case, ImageRole.REFERENCE)])
        else:
            output = outputs.get(case_id)
            if output is None:
                skipped.append(f"{case_id}: no output")
                continue
            if output.nonfinite_count:
                skipped.append(f"{case_id}: NaN/Inf in the output")
                continue
            image = output.load().astype(np.float32, copy=False)
        label_array = _load(label[0])[:1]
        if image.shape[1:] != label_array.shape[1:]:
            skipped.append(f"{case_id}: image shape {image.shape} does not match the label {label_array.shape}")
            continue
        images.append(image)
        labels.append(label_array)
        used.append(case_id)
    if not used:
        raise DownstreamError("No training case has a usable image: " + "; ".join(skipped))
    shapes = {array.shape for array in images}
    if len(shapes) > 1:
        raise DownstreamError(f"Training images differ in shape ({sorted(shapes)}); the network needs one shape.")
    return np.stack(images), np.stack(labels), used, skipped


def _test_data(setup):
    """(real reference images, labels, spacing) of the test cases, in the setup's order."""
    cases = {
        case.case_id: case
        for case in setup.task.dataset.cases.filter(case_id__in=setup.test_case_ids).prefetch_related("images")
    }
    missing = [case_id for case_id in setup.test_case_ids if case_id not in cases]
    if missing:
        raise DownstreamError(f"Test case(s) no longer in the dataset: {', '.join(missing)}.")
    images, labels, spacing = [], [], None
    for case_id in setup.test_case_ids:
        case = cases[case_id]
        references = case_images(case, ImageRole.REFERENCE)
        images.append(np.concatenate([_load(im) for im in references]))
        labels.append(_load(case_images(case, ImageRole.LABEL)[0])[:1])
        spacing = spacing or references[0].spacing
    if len({array.shape for array in images}) > 1:
        raise DownstreamError("Test images differ in shape; the network needs one shape.")
    return np.stack(images), np.stack(labels), [float(s) for s in spacing]


def _scored(per_seed):
    """(S, n) values with the cases that have no value (NaN in any seed) dropped, and how many were."""
    values = np.asarray(per_seed, dtype=np.float64)
    keep = ~np.isnan(values).any(axis=0)
    return values[:, keep], int((~keep).sum())


def _summary(dice, hd95):
    out = {}
    for key, per_seed in (("dice", dice), ("hd95", hd95)):
        values, excluded = _scored(per_seed)
        if not values.size:
            out[key] = None
            continue
        ci = segmentation.summarise(values, **bootstrap_settings())
        out[key] = {
            "value": ci.estimate,
            "ci": [ci.low, ci.high],
            "n_cases": int(values.shape[1]),
            "n_excluded": excluded,
            "per_seed": [float(v) for v in values.mean(axis=1)],
            "n_resamples": ci.n_resamples,
            "confidence": ci.confidence,
        }
    return out


def _finish(context, setup, results, *, seconds, total):
    """running → succeeded with the results, and the run's MetricResults, in one transaction, if still ours
    (False if not, or if the setup changed while the job trained: the job then fails with the reason).

    The setup's row is locked first: a run job and the reference finishing at the same moment take
    turns, so whichever commits second sees the other's results and the utility ratio is written.
    """

    locked = {}

    def lock_setup():
        locked["setup"] = DownstreamSetup.objects.select_for_update().get(pk=setup.pk)

    def changed(job):
        difference = _setup_changed(locked["setup"], results)
        return f"The downstream setup changed while this job ran ({difference})." if difference else ""

    def write(job):
        DownstreamSetup.objects.filter(pk=job.setup_id, frozen_at__isnull=True).update(frozen_at=timezone.now())
        if job.is_reference:
            for other in job.setup.jobs.filter(run__isnull=False, status=JobStatus.SUCCEEDED):
                write_results(other, reference=job)
        else:
            write_results(job)

    return context.finish(
        JobStatus.SUCCEEDED,
        lock_first=lock_setup,
        guard=changed,
        effects=write,
        results=results,
        seconds=seconds,
        phase="",
        progress_done=total,
    )


def _setup_changed(setup, results):
    """What differs between the setup now and the one the job trained under ('' when nothing)."""
    differences = []
    if results.get("config") != setup.name:
        differences.append("recipe")
    if list(results.get("seeds", [])) != list(setup.seeds):
        differences.append("seeds")
    if list(results.get("test_case_ids", [])) != list(setup.test_case_ids):
        differences.append("test cases")
    return ", ".join(differences)
