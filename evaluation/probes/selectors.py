"""Reads of the probe scores: what a board, a run page, the API or the probe analysis page shows beside a main
run, and a probe run's cases with their outcomes and detector marks (the probe viewer's)."""

from django.urls import NoReverseMatch, reverse

from core import policy

from ..leaderboard.queries import succeeded_runs
from ..models import ProbeCase, ProbeScore
from . import scoring

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


def probe_cases(run, score: ProbeScore | None = None) -> list[dict]:
    """The probe cases of a probe run, each {"probe", "outcomes", "hallucinated", "shown"}: its ``ProbeCase`` (case
    loaded), the outcomes of its samples (``scoring.Outcome`` dicts, by sample; empty before the run is scored), the
    share of them invented or omitted, and "invented" / "omitted" / "faithful" for the case (the way at least half
    its samples went, as ``scoring.hallucinated_cases``). Hallucinated first (by share), then by case id. `score`:
    the run's ``ProbeScore`` where the caller has read it."""
    if run.probe_of_id is None or run.dataset_id is None:
        return []
    score = score or ProbeScore.objects.filter(run=run).first()
    by_case: dict[str, list[dict]] = {}
    for outcome in score.outcomes if score else []:
        by_case.setdefault(outcome["case"], []).append(outcome)
    hallucinated = scoring.hallucinated_cases(score.outcomes) if score else {}
    rows = []
    for probe in ProbeCase.objects.filter(probe_set__dataset_id=run.dataset_id).select_related("case", "source"):
        outcomes = sorted(by_case.get(probe.case.case_id, []), key=lambda o: o["sample"])
        bad = sum(o["outcome"] in ("invented", "omitted") for o in outcomes)
        rows.append(
            {
                "probe": probe,
                "outcomes": outcomes,
                "hallucinated": bad / len(outcomes) if outcomes else None,
                "shown": hallucinated.get(probe.case.case_id, "faithful" if outcomes else ""),
            }
        )
    rows.sort(key=lambda row: (-(row["hallucinated"] or 0.0), row["probe"].case.case_id))
    return rows


def case_marks(score: ProbeScore | None, case_id: str) -> list[dict]:
    """The automated detectors' marks on one probe case of a probe run's score (None: not scored yet):
    {"detector", "row", "col", "rating"}, by detector, highest rating first."""
    marks = []
    for detector, rows in sorted((score.detector_marks if score else {}).items()):
        chosen = [row for row in rows if row[0] == case_id]
        chosen.sort(key=lambda row: -row[3])
        marks.extend({"detector": detector, "row": r, "col": c, "rating": rating} for _, r, c, rating in chosen)
    return marks
