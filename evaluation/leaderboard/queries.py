"""What a leaderboard reads, in a fixed number of queries whatever the number of runs: the data version
that keys its cache, the task's succeeded runs and their per-run results as columns and rows, and the
per-case values the paired tests and the rank bootstrap resample."""

import hashlib

import numpy as np
from django.db.models import Count, Exists, Max, OuterRef, Q, Subquery
from django.utils import timezone

from core.models import JobStatus
from inference.models import MemberRole, Membership, MemberStatus, Phase, Run

from .. import formatting
from ..formatting import decode_value
from ..metrics import catalog
from ..models import CaseResult, CaseStatus, DownstreamJob, MetricResult, ProbeScore
from ..task_settings import computed_in
from .shapes import (
    CLINICAL,
    DOWNSTREAM_METRICS,
    EFFICIENCY,
    EFFICIENCY_COLUMNS,
    READER_STUDY_COLUMN,
    Cell,
    Column,
    Row,
    metric_info,
)


def data_version(task):
    """Changes whenever anything the board shows changes: a run's status, name, device or model
    (name, stochastic flag), a per-run result, a probe run's score, the downstream reference, or the task's
    settings.

    Read from the database (three small queries), not from signals, so a result written by a
    worker process shows at once in every web process, whatever the cache backend. Per-case
    results are not read: an evaluation rewrites them together with the per-run results, whose
    count and latest `computed_at` are in the key.
    """
    participant = Membership.objects.filter(
        task=task, user=OuterRef("requested_by"), role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED
    )
    # A probe run's score (the hallucination index column) is keyed on its main run: the latest score's time.
    probe_scored = ProbeScore.objects.filter(run__probe_of=OuterRef("pk")).order_by("-computed_at")
    runs = list(
        Run.objects.filter(task=task, probe_of__isnull=True)
        .annotate(by_participant=Exists(participant), probe_scored=Subquery(probe_scored.values("computed_at")[:1]))
        .order_by("pk")
        .values_list(
            "pk", "status", "name", "device", "model__name", "model__stochastic", "hidden_at", "requested_by_id",
            "by_participant", "task_phase__private_leaderboard", "task_phase__ends_at", "probe_scored",
        )
    )  # fmt: skip
    # A private phase's runs appear once it ends: whether each one has ended yet is part of the version.
    now = timezone.now()
    closed = [run[0] for run in runs if run[9] and (run[10] is None or run[10] > now)]
    results = MetricResult.objects.filter(run__task=task).aggregate(n=Count("id"), last=Max("computed_at"))
    # The downstream real→real reference belongs to the task, not to a run.
    downstream = list(
        DownstreamJob.objects.filter(setup__task=task, run__isnull=True).values_list("pk", "status", "finished_at")
    )
    settings_of_task = (
        task.pk, task.slug, task.name, task.primary_metric, task.ranking, task.metrics, task.leaderboard_entry,
        task.profile, task.region, task.region_threshold,
    )  # fmt: skip
    raw = repr((settings_of_task, runs, results, downstream, closed))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def private_open_phases(task, now=None):
    """The task's phases whose leaderboard stays private until they end, and have not ended."""
    now = now or timezone.now()
    return Phase.objects.filter(task=task, private_leaderboard=True).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )


def participant_ids(task):
    return set(
        Membership.objects.filter(task=task, role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED).values_list(
            "user_id", flat=True
        )
    )


def succeeded_runs(task, *, private=False):
    """The runs the board ranks: succeeded, not hidden by an organiser, and (unless `private`, for the
    organisers) not of a phase whose leaderboard is still private."""
    runs = Run.objects.filter(task=task, status=JobStatus.SUCCEEDED, hidden_at__isnull=True, probe_of__isnull=True)
    if not private:
        runs = runs.exclude(task_phase__in=private_open_phases(task))
    return list(runs.select_related("model", "requested_by").order_by("pk"))


def run_results(task):
    """The per-run results of the task's succeeded runs (only the fields the board shows)."""
    return list(
        MetricResult.objects.filter(run__task=task, run__status=JobStatus.SUCCEEDED).only(
            "run_id",
            "metric",
            "extractor",
            "tier",
            "value",
            "ci_low",
            "ci_high",
            "version",
            "region",
            "n_cases",
            "n_excluded",
            "extra",
        )
    )


def rows(runs, columns, results, participants=frozenset(), *, region=None):
    """One row per run (in run order) with a cell per column; `participants` are the user ids whose runs
    are a participant's entries (one per participant on the board). A pixel result computed in another
    region than `region` (the task's now) is stale, like one of another metric version."""
    by_run = {run.pk: {} for run in runs}
    for result in results:
        key = column_key(result.metric, result.extractor)
        if result.run_id in by_run:
            by_run[result.run_id][key] = result
    return [_row(run, columns, by_run[run.pk], participants, region) for run in runs]


def column_key(metric, extractor):
    return f"{metric}:{extractor}" if extractor else metric


def columns(task, results):
    """The board's columns, tier by tier: the task's pixel metrics, the feature metrics present, the clinical
    tier (reader studies, downstream), efficiency."""
    present = {(result.metric, result.extractor, result.tier) for result in results}
    own = catalog.PROFILE_KEYS.get(task.profile, catalog.DEFAULT_PIXEL_METRICS)
    wanted = task.metrics or own
    pixel_keys = [key for key in own if key in wanted]
    pixel_keys += [key for key in wanted if key in catalog.PER_CASE_METRICS and key not in pixel_keys]
    columns = []
    for key in pixel_keys:
        info = catalog.get(key)
        pixel = Column(key, catalog.PIXEL, info.label, info.direction, info.unit, info.definition, key, per_case=True)
        columns.append(pixel)
    order = {key: index for index, key in enumerate(catalog.FEATURE_METRICS)}
    features = sorted(
        {(metric, extractor) for metric, extractor, tier in present if tier == catalog.FEATURE},
        key=lambda pair: (pair[1] != "radiomics", pair[1], order.get(pair[0], 99)),
    )
    for metric, extractor in features:
        info = metric_info(metric)
        if info is None:
            continue
        columns.append(
            Column(
                column_key(metric, extractor),
                catalog.FEATURE,
                catalog.label(metric, extractor),
                info.direction,
                info.unit,
                info.definition,
                metric=metric,
                extractor=extractor,
                per_case=metric in catalog.PER_CASE_FEATURE_METRICS,
            )
        )
    reader_columns = _reader_study_columns(results)
    columns += reader_columns or [
        Column(
            READER_STUDY_COLUMN,
            CLINICAL,
            "Reader study",
            None,
            definition="Blinded radiologist reader studies of this task fill this column once their editor publishes "
            "the results.",
            placeholder="no study yet",
        )
    ]
    clinical_present = {(metric, extractor) for metric, extractor, tier in present if tier == CLINICAL}
    for metric in DOWNSTREAM_METRICS:
        info = metric_info(metric)
        if info is None:
            continue
        extractors = sorted({extractor for m, extractor in clinical_present if m == metric}) or [""]
        for extractor in extractors:
            columns.append(
                Column(
                    column_key(metric, extractor),
                    CLINICAL,
                    info.label,
                    info.direction,
                    info.unit,
                    info.definition,
                    metric=metric,
                    extractor=extractor,
                    placeholder="" if (metric, extractor) in clinical_present else "no downstream evaluation yet",
                )
            )
    for key, label, _field, direction, unit, definition in EFFICIENCY_COLUMNS:
        columns.append(Column(key, EFFICIENCY, label, direction, unit, definition))
    columns.append(Column("device", EFFICIENCY, "Device", None, definition="Where the model ran."))
    return columns


def _reader_study_columns(results):
    """One column per published reader-study result (per study, and per scale of a Likert study)."""
    found = {}
    for result in results:
        if result.metric in catalog.READER_METRICS and result.tier == CLINICAL:
            found.setdefault((result.metric, result.extractor), result.extra or {})
    columns = []
    for (metric, extractor), extra in sorted(found.items(), key=lambda item: (item[0][1], item[0][0])):
        info = catalog.get(metric)
        study = extra.get("study_title", extractor)
        scale = extra.get("scale_label")
        columns.append(
            Column(
                column_key(metric, extractor),
                CLINICAL,
                f"{info.label} ({scale})" if scale else info.label,
                info.direction,
                info.unit,
                f"{info.definition} From the reader study “{study}”.",
                metric=metric,
                extractor=extractor,
                link=extra.get("study_url", ""),
                target=info.target,
            )
        )
    return columns


def _row(run, columns, results, participants, region=None):
    cells = {}
    for column in columns:
        if column.tier == EFFICIENCY:
            if column.key == "device":
                cells[column.key] = Cell(text=run.device or "—")
                continue
            field_name = next(spec[2] for spec in EFFICIENCY_COLUMNS if spec[0] == column.key)
            value = getattr(run, field_name)
            cells[column.key] = Cell(value=value, text=formatting.format_value(value, 3))
            continue
        if column.key == READER_STUDY_COLUMN:
            cells[column.key] = Cell(text=column.placeholder)
            continue
        result = results.get(column.key)
        if result is None:
            cells[column.key] = Cell(text=column.placeholder or "—")
            continue
        text, low_text, high_text = formatting.format_interval(result.value, result.ci_low, result.ci_high)
        cells[column.key] = Cell(
            value=result.value,
            ci_low=result.ci_low,
            ci_high=result.ci_high,
            stale=result.version_is_stale
            or (region is not None and result.tier == catalog.PIXEL and computed_in(result.region) != region),
            n_cases=result.n_cases,
            n_excluded=result.n_excluded,
            text=text,
            ci_text=f"[{low_text}, {high_text}]" if result.ci_low is not None and result.ci_high is not None else "",
            order_value=(
                float(column.oriented(result.value))
                if column.direction == catalog.TARGET and result.value is not None
                else None
            ),
        )
    return Row(
        run_id=run.pk,
        run_name=str(run),
        model_name=run.model.name if run.model else "submission",
        model_id=run.model_id,
        device=run.device,
        stochastic=bool(run.model and (run.model.stochastic or run.samples_per_case > 1)),
        cells=cells,
        participant=run.requested_by.username if run.requested_by_id in participants else "",
        created_at=run.created_at,
        family=run.model.family if run.model else "",
        sampling=None
        if run.sampling_steps is None
        else {
            "scheduler": run.scheduler,
            "sampling_steps": run.sampling_steps,
            "samples_per_case": run.samples_per_case,
            "seed": run.seed,
            "sweep": run.sweep,
        },
    )


def per_case_matrix(task, runs, columns):
    """(case ids, (n_runs, n_columns, n_cases) values) from the per-case results: NaN where a
    case was excluded (NaN/Inf output, wrong shape, missing) or the metric is absent."""
    if not runs or not columns:
        return [], np.zeros((len(runs), len(columns), 0))
    rows = list(
        CaseResult.objects.filter(
            run__task=task, run__status=JobStatus.SUCCEEDED, run_id__in=[run.pk for run in runs]
        ).values_list("run_id", "case_id", "status", "values")
    )
    case_ids = sorted({case_id for _run, case_id, _status, _values in rows})
    case_index = {case_id: i for i, case_id in enumerate(case_ids)}
    run_index = {run.pk: i for i, run in enumerate(runs)}
    matrix = np.full((len(runs), len(columns), len(case_ids)), np.nan)
    for run_id, case_id, status, values in rows:
        if status != CaseStatus.OK or run_id not in run_index:
            continue
        i, k = run_index[run_id], case_index[case_id]
        for j, column in enumerate(columns):
            value = decode_value(values.get(column.metric))
            if value is not None:
                matrix[i, j, k] = value
    return case_ids, matrix


def hidden_runs(task):
    """The task's runs an organiser took off the board, latest hidden first (for the organisers' list)."""
    return list(
        Run.objects.filter(task=task, hidden_at__isnull=False)
        .select_related("model", "hidden_by")
        .order_by("-hidden_at", "pk")
    )


HALLUCINATION_INDEX = "hallucination_index"


def add_hallucination_index(columns, rows, indices, link=""):
    """The clinical tier's "Hallucination index" column (lower is better), when any run of the board has a scored
    probe run: ``indices`` main run id → ``probes.selectors.hallucination_indices``' dict; ``link`` the probe
    analysis page."""
    if not any(row.run_id in indices for row in rows):
        return columns
    column = Column(
        HALLUCINATION_INDEX,
        CLINICAL,
        "Hallucination index",
        catalog.LOWER,
        definition="Rate of invented structures (a removed lesion or a lesion-like structure shown where the "
        "probe's truth has none) per absent-truth probe case, with a bootstrap 95 % CI over probe cases; from the "
        "run's latest probe run.",
        link=link,
    )
    at = max((i + 1 for i, c in enumerate(columns) if c.tier == CLINICAL), default=len(columns))
    columns = [*columns[:at], column, *columns[at:]]
    for row in rows:
        index = (indices.get(row.run_id) or {}).get("index")
        if not index or index.get("estimate") is None:
            row.cells[HALLUCINATION_INDEX] = Cell(text="—")
            continue
        value, low, high = index["estimate"], index.get("low"), index.get("high")
        text, low_text, high_text = formatting.format_interval(value, low, high)
        row.cells[HALLUCINATION_INDEX] = Cell(
            value=value,
            ci_low=low,
            ci_high=high,
            n_cases=index.get("n"),
            text=text,
            ci_text=f"[{low_text}, {high_text}]" if low is not None and high is not None else "",
        )
    return columns
