"""Reads of the probe scores: what a board or a run page shows beside a main run."""

from ..models import ProbeScore


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
