"""The probe analysis page's numbers (reads): per scored probe run of the task's board, its hallucination index
with CI, the rates per probe kind, the automated detectors' lesion-level scores (``probe_detectors``) and the
uncertainty checks of a stochastic run. Here, in the reader-study app, because the detectors' FROC scores are
(evaluation does not import readerstudy).

Who sees what: the numbers are shown to whoever may see the task's leaderboard (the board's runs: not hidden, not of
a private phase that has not ended, unless organiser); a main or probe run links to its page only where the viewer
may see it (`core.policy`: on a hidden test set, its owner and the organisers; a probe run, with its probe set, its
task's organisers), and so does a probe run's list of cases (the probe viewer, `evaluation.probe_viewer`). The
page itself shows no image (no probe, output or truth), so a hidden test set gives nothing away.
"""

from __future__ import annotations

from core import policy
from evaluation.formatting import format_interval
from evaluation.probes import selectors as probe_selectors
from evaluation.probes.construct import INSERTED, KINDS
from inference.models import Run

from . import probe_detectors, probe_reading
from .models import ReaderStudy

ABSENT_KINDS = tuple(k for k in KINDS if k not in INSERTED)
DETECTOR_LABELS = {"error": "Error map", "sd": "SD map", "radiomics_ood": "Radiomics OOD"}
FOMS = ("wAFROC", "AFROC", "HrAuc")
KIND_LABELS = {
    "removed": "removed lesion",
    "control": "control",
    "inserted_plausible": "in tissue",
    "inserted_csf": "in CSF",
    "inserted_outside": "outside the body",
}


def kind_labels(kinds) -> list[tuple[str, str]]:
    return [(kind, KIND_LABELS.get(kind, kind)) for kind in kinds]


def interval_text(ci: dict | None) -> str:
    """ "0.25 [0.10, 0.40]" (``formatting.format_interval``), "—" for none."""
    if not ci or ci.get("estimate") is None:
        return "—"
    value, low, high = format_interval(ci["estimate"], ci.get("low"), ci.get("high"))
    return f"{value} [{low}, {high}]" if ci.get("low") is not None else value


def probe_rows(task, user) -> list[dict]:
    """One dict per main run on the board that has a scored probe run (its latest), in the board's run order."""
    scored = probe_selectors.board_scores(task, user)
    linked = [run.pk for run, _score in scored] + [score.run_id for _run, score in scored]
    openable = set(policy.visible(user, Run).filter(pk__in=linked).values_list("pk", flat=True))
    reader_sd = probe_reading.reader_sd_agreements([score for _run, score in scored], user)
    rows = []
    for run, score in scored:
        index = score.index or {}
        detectors = probe_detectors.detector_scores(score)
        rows.append(
            {
                "run_id": run.pk,
                "run_name": str(run),
                "openable": run.pk in openable,
                "probe_run": score.run_id,
                "probe_run_openable": score.run_id in openable,
                # A probe run is seen with its probe set (the task's organisers'): its page lists the cases.
                "cases_viewable": score.run_id in openable,
                "probe_set": score.probe_set_id,
                "samples": score.run.samples_per_case,
                "index": index.get("index"),
                "index_text": interval_text(index.get("index")),
                "invented": {kind: index.get("invented", {}).get(kind) for kind in ABSENT_KINDS},
                "invented_text": [interval_text(index.get("invented", {}).get(kind)) for kind in ABSENT_KINDS],
                "omitted": {kind: index.get("omitted", {}).get(kind) for kind in INSERTED},
                "omitted_text": [interval_text(index.get("omitted", {}).get(kind)) for kind in INSERTED],
                "counts": index.get("counts", {}),
                "probe_cases": index.get("probe_cases"),
                "detectors": [
                    {
                        "name": name,
                        "label": DETECTOR_LABELS.get(name, name),
                        "foms": [values.get(fom) for fom in FOMS],
                        **values,
                    }
                    for name, values in detectors.items()
                ],
                "uncertainty": score.uncertainty or {},
                "reader_sd": reader_sd.get(score.run_id),
            }
        )
    return rows


def plot_data(rows) -> dict:
    """What the page's plot draws: P(hallucination | SD > τ) against τ's quantile, per stochastic run."""
    return {
        "runs": [
            {
                "name": row["run_name"],
                "quantile": [t["quantile"] for t in row["uncertainty"].get("by_threshold", [])],
                "p": [t["p_hallucination"] for t in row["uncertainty"].get("by_threshold", [])],
                "base_rate": row["uncertainty"].get("base_rate"),
            }
            for row in rows
            if row["uncertainty"].get("by_threshold")
        ]
    }


def marking_studies(task, user) -> list:
    """The task's probe-mode marking studies whose analysis `user` may read (``readerstudy.read_analysis``)."""
    studies = ReaderStudy.objects.filter(task=task, probe_mode=True).order_by("pk")
    return [study for study in studies if policy.can(user, "readerstudy.read_analysis", study)]
