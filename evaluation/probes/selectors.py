"""Reads of the probe scores: what a board, a run page, the API or the probe analysis page shows beside a main
run."""

from django.urls import NoReverseMatch, reverse

from core import policy

from ..leaderboard.queries import succeeded_runs
from ..models import ProbeScore

# The probe analysis page (readerstudy's: it shows the detectors' FROC scores), linked by name, never imported.
PAGE_URL_NAME = "task-probes"


def hallucination_indices(task) -> dict[int, dict]:
    """Main run id → the hallucination index (``scoring.hallucination_index``'s dict, plus ``probe_run`` and
    ``probe_set``) of its latest scored probe run on the task, in one query."""
    rows = (
        ProbeScore.objects.filter(run__task=task, run__probe_of__isnull=False)
        .order_by("run__probe_of_id", "-run_id")
        .values_list("run__probe_of_id", "run_id", "probe_set_id", "index")
    )
    latest: dict[int, dict] = {}
    for main_id, probe_run_id, probe_set_id, index in rows:
        latest.setdefault(main_id, {**index, "probe_run": probe_run_id, "probe_set": probe_set_id})
    return latest


def latest_scores(task, main_run_ids) -> dict[int, ProbeScore]:
    """Main run id → its latest scored probe run's ``ProbeScore`` (run and probe set loaded), for the main runs
    named (those the caller may show: the board's), in one query."""
    scores = (
        ProbeScore.objects.filter(run__task=task, run__probe_of_id__in=list(main_run_ids))
        .select_related("run", "run__probe_of", "run__probe_of__model", "probe_set")
        .order_by("run__probe_of_id", "-run_id")
    )
    latest: dict[int, ProbeScore] = {}
    for score in scores:
        latest.setdefault(score.run.probe_of_id, score)
    return latest


def board_scores(task, user) -> list[tuple]:
    """(main run, its latest ``ProbeScore``) for each run of the task's leaderboard as `user` sees it (organisers:
    private phases too) that has a scored probe run, in the board's run order."""
    runs = succeeded_runs(task, private=policy.can(user, "inference.manage_task", task))
    scores = latest_scores(task, [run.pk for run in runs])
    return [(run, scores[run.pk]) for run in runs if run.pk in scores]


def run_probe_score(run) -> ProbeScore | None:
    """The latest scored probe run of a main run, or None."""
    return ProbeScore.objects.filter(run__probe_of=run).select_related("run", "probe_set").order_by("-run_id").first()


def page_url(task) -> str:
    """The task's probe analysis page, or "" where the reader-study app (which serves it) is not installed."""
    try:
        return reverse(PAGE_URL_NAME, kwargs={"slug": task.slug})
    except NoReverseMatch:
        return ""
