"""The demo's hallucination probes (issue 17): a probe set of the T1→T2 task and a probe run of each of its
generative baselines, through the same services as an organiser's `manage.py probe_task`.

Driven by the worker task `demo.tasks.seed_demo_probes`, retried until done. It waits until the task's main runs,
their evaluations and downstream jobs have finished (the leaderboard's tiers come first), then queues the probe set
(a seeded sample of the test cases, so the probe runs stay cheap); once it is built, each probed main run that
succeeded gets its probe run; the probe runs are scored by `evaluation.probes` when they finish. Once every probe
run is scored, the four simulated radiologists read them in a probe-mode marking study (`probe_study`), closed.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from core.models import FINAL, JobStatus
from evaluation.models import DownstreamJob, Evaluation, ProbeScore, ProbeSet
from evaluation.probes import services as probe_services
from inference.models import Run, Task
from readerstudy.models import ReaderStudy, StudyStatus

from .probe_study import seed_probe_study

TASK_SLUG = "t1-to-t2"
PROBE_SEED = 0
#: The demo phantoms' mask images are lesion masks, not tissue maps, so there is no CSF region to insert into:
#: the impossible site is outside the head.
PROBE_KINDS = ("inserted_plausible", "inserted_outside", "removed", "control")
PROBED_CASES = 10
#: Main runs probed: the U-Net and its stochastic variant against each generative family (the diffusion model at
#: its sweep's 10-step setting).
PROBED_RUNS = (
    "U-Net (L1)",
    "Stochastic U-Net (4 samples)",
    "Pix2Pix (U-Net + PatchGAN)",
    "CycleGAN (unpaired)",
    "Conditional VAE (4 samples)",
    "Conditional diffusion (DDIM) · DDIM 10 steps",
)


PROBE_STUDY_TITLE = "Demo: hallucination marking on the T1→T2 probes"
PROBE_STUDY_SEED = 2028
#: Simulated readers of the probe study (password = username). Not the Turing study's radiologist1–4: a control
#: probe's output is the same array as the main run's output on that case, and a reader who met an image in one
#: study may not meet it in another (`readerstudy.services.eligibility`).
PROBE_READERS = ("radiologist5", "radiologist6", "radiologist7", "radiologist8")


class NotReady(Exception):
    """The probe set, a probed run or a probe run is still running: call again later."""


def probe_readers():
    users = get_user_model()
    readers = []
    for username in PROBE_READERS:
        user, created = users.objects.get_or_create(username=username, defaults={"is_staff": False})
        if created:
            user.set_password(username)
            user.save()
        readers.append(user)
    return readers


def probe_set_of(task) -> ProbeSet | None:
    return (
        ProbeSet.objects.filter(task=task, seed=PROBE_SEED, kinds=list(PROBE_KINDS))
        .exclude(status__in=(JobStatus.FAILED, JobStatus.CANCELLED))
        .order_by("-pk")
        .first()
    )


def seed_probes() -> list[int] | None:
    """Advance the demo's probes one step; the probe run ids once every probed run has one that finished.

    None when there is nothing to probe (no demo task, or its probe set failed). Raises NotReady otherwise."""
    task = Task.objects.filter(slug=TASK_SLUG).first()
    if task is None:
        return None
    busy = (
        Run.objects.filter(task=task, probe_of__isnull=True).exclude(status__in=FINAL).exists()
        or Evaluation.objects.filter(run__task=task).exclude(status__in=FINAL).exists()
        or DownstreamJob.objects.filter(setup__task=task).exclude(status__in=FINAL).exists()
    )
    if busy:
        raise NotReady("the task's runs, evaluations or downstream jobs are still running")
    probe_set = probe_set_of(task)
    if probe_set is None:
        if ProbeSet.objects.filter(task=task, seed=PROBE_SEED, kinds=list(PROBE_KINDS)).exists():
            return None  # it failed: the job's error says why; do not retry forever
        probe_services.request_probe_set(
            task, seed=PROBE_SEED, kinds=list(PROBE_KINDS), config={"max_cases": PROBED_CASES}
        )
        raise NotReady("probe set queued")
    if probe_set.status != JobStatus.SUCCEEDED:
        raise NotReady(f"probe set {probe_set.status}")
    mains = list(Run.objects.filter(task=task, probe_of__isnull=True, name__in=PROBED_RUNS).order_by("pk"))
    probe_runs, waiting = [], False
    for main in mains:
        if main.status != JobStatus.SUCCEEDED:
            waiting = waiting or main.status not in FINAL
            continue
        # One probe run per main run: a failed one stays failed (its error says why) rather than being retried.
        probe_run = Run.objects.filter(probe_of=main, dataset=probe_set.dataset).order_by("-pk").first()
        probe_run = probe_run or probe_services.start_probe_run(main, probe_set)
        probe_runs.append(probe_run)
        waiting = waiting or probe_run.status not in FINAL
    if waiting or len(mains) < len(PROBED_RUNS):
        raise NotReady("probed runs or their probe runs still running")
    scored = set(ProbeScore.objects.filter(run__in=probe_runs).values_list("run_id", flat=True))
    succeeded = [run for run in probe_runs if run.status == JobStatus.SUCCEEDED]
    if any(run.pk not in scored for run in succeeded):
        raise NotReady("probe runs still being scored")
    # A draft left by a seeding that broke off is built again.
    ReaderStudy.objects.filter(title=PROBE_STUDY_TITLE, status=StudyStatus.DRAFT).delete()
    if succeeded and not ReaderStudy.objects.filter(title=PROBE_STUDY_TITLE).exists():
        seed_probe_study(
            task, [run.probe_of for run in succeeded], probe_readers(), PROBE_STUDY_SEED, title=PROBE_STUDY_TITLE
        )
    return [run.pk for run in probe_runs]
