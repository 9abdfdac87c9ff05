"""Freezing a probe-mode study: its items are the main runs' probe runs' outputs, one per probe case and run.

The organiser picks main runs; each supplies its latest succeeded, scored probe run (`Run.probe_of`), all on
one probe set (a crossed design: every run read on every probe case), which every editor of the study must be
able to see (a probe set is its task's organisers'). A probe case is left out, for every run, when one of the runs has
no showable output of its reference's shape there. The images are blinded as every
study image is (`_Builder`): readers see neither the run nor the probe's kind.
"""

from __future__ import annotations

from core import policy
from core.models import JobStatus
from evaluation.models import ProbeCase, ProbeScore, ProbeSet
from inference.models import CaseOutput, ImageRole, Run

from ..errors import StudyError
from .sources import synthetic_sources


def probe_runs(study, runs) -> dict[int, Run]:
    """Main run pk → its latest succeeded probe run (StudyError when one has none, or they differ in probe set)."""
    chosen = {}
    editors = [user for user in (study.created_by, *study.editors.all()) if user is not None]
    for run in runs:
        if run.probe_of_id is not None:
            raise StudyError(f"{run} is a probe run: pick the main runs, whose probe runs supply the images.")
        probe = Run.objects.filter(probe_of=run, status=JobStatus.SUCCEEDED).order_by("-pk").first()
        if probe is None:
            raise StudyError(f"{run} has no succeeded probe run: start one (manage.py probe_task) first.")
        if not ProbeScore.objects.filter(run=probe).exists():
            raise StudyError(f"{run}'s probe run {probe.pk} is not scored yet: its truth is not known.")
        # Every editor sees the study's items and its truth-based analysis: each must see the probe set.
        for editor in editors:
            if not policy.visible(editor, Run).filter(pk=probe.pk).exists():
                raise StudyError(
                    f"{run}'s probe runs are on a probe set of '{run.task.slug}', which only its organisers see, "
                    f"and the study's editor {editor} does not: a probe study is edited by the task's organisers."
                )
        chosen[run.pk] = probe
    datasets = {probe.dataset_id for probe in chosen.values()}
    if len(datasets) > 1:
        raise StudyError(
            "The runs' latest probe runs are on different probe sets; probe every run on one probe set "
            "(manage.py probe_task) so that they are read on the same probe cases."
        )
    return chosen


def probe_sources(study, builder, runs):
    """(sources per probe run pk, in the runs' order; the spacing; the shapes; the probe cases shown)."""
    by_main = probe_runs(study, runs)
    probes = list(by_main.values())
    probe_set = ProbeSet.objects.get(dataset_id=probes[0].dataset_id)
    cases = list(ProbeCase.objects.filter(probe_set=probe_set).select_related("case").prefetch_related("case__images"))
    outputs = {(o.run_id, o.case_id): o for o in CaseOutput.objects.filter(run__in=probes, sample=0)}
    per_run = {probe.pk: [] for probe in probes}
    skipped, shown, shapes, spacing = [], [], set(), None
    for probe_case in cases:
        case = probe_case.case
        reference = case.image(ImageRole.REFERENCE)
        sources, why = synthetic_sources(builder, case, reference, probes, outputs)
        if sources is None:
            skipped.append(why)
        else:
            for pk, source in sources.items():
                per_run[pk].append(source)
            shown.append(case)
            shapes.add(tuple(reference.shape[1:]))
            spacing = spacing or reference.spacing
    if not shown:
        raise StudyError("No probe case has a showable output from every probe run. " + "; ".join(skipped[:5]))
    builder.log.append(
        f"Probe mode: probe set {probe_set.pk}, probe runs {', '.join(str(p.pk) for p in probes)}; "
        f"{len(shown)} probe case(s) per run."
    )
    if skipped:
        builder.log.append(f"Left out: {'; '.join(skipped)}.")
    return per_run, spacing, shapes, shown
