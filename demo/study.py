"""The demo's reader study: a visual Turing test of the translation runs, read by simulated readers.

Simulated readers answer through the same `reading.submit` as real ones. A reader's
evidence that an image is synthetic grows with how far the output is from its reference
(1 − SSIM of that case, from the evaluation), scaled by the reader's skill, plus the reader's
own lasting impression of that image and some noise of the moment; the evidence is cut into
the 10-point real/synthetic scale. So the demo's statistics reflect
the runs' measured quality rather than numbers written in here.
"""

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction

from core.models import JobStatus
from evaluation.models import CaseResult, Evaluation
from inference.models import Run, Task
from readerstudy.models import DEFAULT_SCALES, ReaderStudy
from readerstudy.services import build, publishing, reading, studies

DEMO_TITLE = "Demo: visual Turing test of T1→T2 translation"
#: The fresh reader's study: open, unpublished, its images blinded for them.
DEMO_READER_TITLE = "Demo: realism ratings of T1→T2 translation"
#: Simulated readers with seeded answers, and their skill (how strongly error shows to them).
SIMULATED_READERS = {"radiologist1": 1.3, "radiologist2": 1.0, "radiologist3": 0.8, "radiologist4": 1.1}
#: A reader account with no answers, for trying the workspace (password = username).
FRESH_READER = "reader"
#: Run names read in the demo study: the review's T1→T2 experiment (the U-Net against the generative families;
#: the diffusion model at the sweep's 10-step setting).
DEMO_RUNS = (
    "U-Net (L1)",
    "Pix2Pix (U-Net + PatchGAN)",
    "CycleGAN (unpaired)",
    "Conditional VAE (4 samples)",
    "Conditional diffusion (DDIM) · DDIM 10 steps",
)


class NotReady(Exception):
    """The translation runs or their evaluations have not finished yet."""


def demo_readers():
    users = get_user_model()
    readers = {}
    for username in [*SIMULATED_READERS, FRESH_READER]:
        user, created = users.objects.get_or_create(username=username, defaults={"is_staff": False})
        if created:
            user.set_password(username)
            user.save()
        readers[username] = user
    return readers


def ssim_by_image(study):
    """{StudyImage pk: SSIM of that run's output on that case} for the study's synthetic images."""
    values = {
        (run_id, case_id): result_values.get("ssim")
        for run_id, case_id, result_values in CaseResult.objects.filter(run__in=study.runs.all()).values_list(
            "run_id", "case_id", "values"
        )
    }
    return {
        image.pk: values.get((image.run_id, image.case_id))
        for image in study.images.filter(source="synthetic").only("pk", "run_id", "case_id")
    }


def simulated_answer(evidence):
    """Evidence of "synthetic" (≈ N(0, 1) for real images) → a call with a confidence 1–5."""
    rating = int(np.clip(np.digitize(evidence, [-1.6, -1.0, -0.55, -0.2, 0.15, 0.5, 0.9, 1.4, 2.0]) + 1, 1, 10))
    return {"call": "synthetic", "confidence": rating - 5} if rating > 5 else {"call": "real", "confidence": 6 - rating}


def answer_as_simulated_reader(study, reader, skill, seed):
    ssim = ssim_by_image(study)
    session = reading.open_session(study, reader=reader)
    while True:
        state = reading.state(session)
        if state["finished"]:
            return session
        assignment = session.assignments.select_related("item__image").get(token=state["item"]["token"])
        image = assignment.item.image
        if image.source == "attention":
            answer = {"call": "synthetic", "confidence": 5}
        else:
            error = 0.0 if image.source == "real" else 1.0 - float(ssim.get(image.pk) or 0.5)
            # A reader's impression of an image is mostly their own and stable (so a repeated item gets a
            # similar answer), partly noise of the moment.
            impression = np.random.default_rng([seed, image.pk]).normal(0, 0.8)
            # The noise of the moment is keyed on the item (a repeat is an item of its own), not drawn in reading
            # order: each session's order is random, and the demo's reader AUCs must repeat from build to build.
            moment = np.random.default_rng([seed, image.pk, assignment.item_id]).normal(0, 0.6)
            answer = simulated_answer(skill * 3.0 * error + impression + moment)
        reading.submit(session, token=state["item"]["token"], value=answer, key=f"demo-{assignment.position}")
        session.refresh_from_db()


def seed_study(items_per_model=5):
    """Create, start, answer (simulated readers), close and publish the demo study, and start the fresh
    reader's own study; None if they exist.

    Raises NotReady until the demo's translation runs have succeeded and been evaluated."""
    if ReaderStudy.objects.filter(title=DEMO_TITLE).exists():
        return None
    task = Task.objects.filter(slug="t1-to-t2").first()
    if task is None:
        raise NotReady("no translation task")
    runs = list(Run.objects.filter(task=task, name__in=DEMO_RUNS))
    if len(runs) < len(DEMO_RUNS) or any(run.status != JobStatus.SUCCEEDED for run in runs):
        if any(run.status in (JobStatus.FAILED, JobStatus.CANCELLED) for run in runs):
            return None  # nothing to wait for
        raise NotReady("translation runs still running")
    if Evaluation.objects.filter(run__in=runs).exclude(status__in=Evaluation.FINAL).exists() or (
        Evaluation.objects.filter(run__in=runs).count() < len(runs)
    ):
        raise NotReady("evaluations still running")
    readers = demo_readers()
    cases = task.dataset.cases.count()
    # Cases of its own per run and as many real images, when the dataset has them (the full demo's 40
    # do); a small test demo shows every run the same cases instead.
    own_cases = 2 * len(runs) * items_per_model + 1 <= cases
    simulated = [readers[username] for username in SIMULATED_READERS]
    study = _start(
        task,
        runs,
        simulated,
        title=DEMO_TITLE,
        instructions="Decide whether each T2-weighted slice is a real acquisition or synthesised from the T1 "
        "slice, and how sure you are. Use window/level and zoom as you would in clinical reading.",
        design="turing",
        items_per_model=min(items_per_model, cases),
        paired_cases=not own_cases,
        real_ratio=1.0,
        repeated_items=2,
        seed=2026,
    )
    for index, (username, skill) in enumerate(SIMULATED_READERS.items()):
        answer_as_simulated_reader(study, readers[username], skill, seed=index)
    # Results are published only once nobody is answering: closed first, as a real study must be.
    studies.close(study)
    publishing.publish(study)
    # The fresh reader's own study stays open and unpublished, so its images stay blinded for them.
    _start(
        task,
        runs,
        [readers[FRESH_READER]],
        title=DEMO_READER_TITLE,
        instructions="Rate each T2-weighted slice for realism and for diagnostic quality, as you would judge "
        "an acquisition in clinical reading.",
        design="likert",
        scales=DEFAULT_SCALES[:2],
        items_per_model=min(3, cases),
        real_ratio=1.0,
        repeated_items=1,
        seed=2027,
    )
    return study


def _start(task, runs, readers, **fields):
    with transaction.atomic():
        study = ReaderStudy.objects.create(
            task=task,
            attention_checks=1,
            created_by=get_user_model().objects.filter(is_staff=True).order_by("pk").first(),
            **fields,
        )
        study.runs.set(runs)
        study.readers.set(readers)
    return build.freeze(study)
