"""A task's leaderboard: one row per succeeded run, columns grouped by tier, a ranking, each
run's difference from the leader and the stability of its rank.

It is built from stored results in a fixed number of queries (runs, per-run results,
per-case results), whatever the number of runs, and cached under a key that changes when
any run or result of the task changes (two aggregate queries), so a page view costs the same
for 3 runs or 300. The statistics themselves live in `ranking.py` and `frontier.py`.
"""

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Max

from core.models import JobStatus
from inference.models import Run

from . import downstream, formatting, frontier, ranking
from .formatting import decode_value, encode_value
from .metrics import catalog
from .models import CaseResult, CaseStatus, DownstreamJob, MetricResult

CLINICAL = getattr(catalog, "CLINICAL", "clinical")
EFFICIENCY = "efficiency"
TIERS = (
    (catalog.PIXEL, "Pixel fidelity"),
    (catalog.FEATURE, "Feature realism"),
    (CLINICAL, "Clinical relevance"),
    (EFFICIENCY, "Efficiency"),
)
RANKING_METHODS = {"primary": "Primary metric", "mean_rank": "Mean rank"}
STABILITY_RESAMPLES = 1000
SIGNIFICANCE_RESAMPLES = 2000
ALPHA = 0.05
CACHE_SECONDS = 24 * 3600
# Clinical-tier columns that exist before any study or downstream job has filled them.
READER_STUDY_COLUMN = "reader_study"
DOWNSTREAM_METRICS = ("downstream_dice", "utility_ratio", "downstream_hd95")
# Efficiency: (key, label, Run field, direction, unit, definition).
EFFICIENCY_COLUMNS = (
    ("latency_p50", "Latency p50", "latency_ms_p50", catalog.LOWER, "ms", "Median model time per case."),
    ("latency_p95", "Latency p95", "latency_ms_p95", catalog.LOWER, "ms", "95th percentile of model time per case."),
    ("throughput", "Throughput", "throughput_cases_per_s", catalog.HIGHER, "cases/s", "Cases per second of the run."),
)


@dataclass(frozen=True)
class Column:
    key: str  # "psnr", "frd:radiomics", "latency_p50"
    tier: str
    label: str
    direction: str | None  # catalog.HIGHER / LOWER, None for text and placeholder columns
    unit: str = ""
    definition: str = ""
    metric: str = ""
    extractor: str = ""
    per_case: bool = False
    placeholder: str = ""  # text shown in every cell of a column nothing fills yet
    link: str = ""  # where the column's values come from (a published reader study)

    @property
    def higher_is_better(self):
        return self.direction == catalog.HIGHER

    @property
    def short_label(self):
        """The metric's own label ("KID"), for a header that names the extractor on a line of its own."""
        if self.link:  # a reader study's column: its label names the scale; the link names the study
            return self.label
        info = _metric_info(self.metric) if self.metric else None
        return info.label if info and self.extractor else self.label

    @property
    def arrow(self):
        return {catalog.HIGHER: "↑", catalog.LOWER: "↓"}.get(self.direction, "")


@dataclass
class Cell:
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    stale: bool = False
    n_cases: int | None = None
    n_excluded: int | None = None
    text: str = ""

    @property
    def sort_key(self):
        return formatting.sort_number(self.value)


@dataclass
class Row:
    run_id: int
    run_name: str
    model_name: str
    model_id: int | None
    device: str
    stochastic: bool
    cells: dict
    rank: int | None = None
    score: float | None = None
    comparison: ranking.PairedComparison | None = None
    stability: dict | None = None
    pareto: bool = False


@dataclass
class Leaderboard:
    task_id: int
    columns: list
    rows: list
    method: str
    primary: Column | None
    chosen: list  # columns entering the mean rank
    ranking_text: str
    significance_text: str
    stability_text: str
    notes: list = field(default_factory=list)
    version: str = ""
    kendall_tau: float | None = None
    cases: int = 0
    significance_column: Column | None = None  # the per-case metric the paired test uses
    exported: dict | None = None
    downstream_reference: dict | None = None  # the task's real→real downstream result (downstream.task_reference)
    rendered: dict = field(default_factory=dict)  # format → response bytes, built once per board

    def tiers(self):
        """(tier, label, columns) for the grouped table header, in tier order, empty tiers left out."""
        grouped = []
        for tier, label in TIERS:
            columns = [column for column in self.columns if column.tier == tier]
            if columns:
                grouped.append((tier, label, columns))
        return grouped

    def column(self, key):
        return next((column for column in self.columns if column.key == key), None)


def requested_ranking(params, task):
    """(method, chosen column keys) from `?ranking=` and `?metrics=` (comma-separated or repeated);
    the task's own method when none is asked for, None for an unknown one."""
    method = params.get("ranking") or task.ranking
    chosen = [key for value in params.getlist("metrics") for key in value.split(",") if key]
    return (method if method in RANKING_METHODS else None), chosen or None


def data_version(task):
    """Changes whenever anything the board shows changes: a run's status, name, device or model
    (name, stochastic flag), a per-run result, the downstream reference, or the task's settings.

    Read from the database (three small queries), not from signals, so a result written by a
    worker process shows at once in every web process, whatever the cache backend. Per-case
    results are not read: an evaluation rewrites them together with the per-run results, whose
    count and latest `computed_at` are in the key.
    """
    runs = list(
        Run.objects.filter(task=task)
        .order_by("pk")
        .values_list("pk", "status", "name", "device", "model__name", "model__stochastic")
    )
    results = MetricResult.objects.filter(run__task=task).aggregate(n=Count("id"), last=Max("computed_at"))
    # The downstream real→real reference belongs to the task, not to a run.
    downstream = list(
        DownstreamJob.objects.filter(setup__task=task, run__isnull=True).values_list("pk", "status", "finished_at")
    )
    settings_of_task = (task.pk, task.slug, task.name, task.primary_metric, task.ranking, task.metrics)
    raw = repr((settings_of_task, runs, results, downstream))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def build(task, *, method=None, chosen=None, version=None):
    """The leaderboard of `task`, from the cache when nothing changed since it was built.

    `method` is "primary" or "mean_rank" (default: the task's); `chosen` lists the column keys
    whose ranks are averaged for the mean rank (default: every ranked pixel and feature column).
    """
    method = method if method in RANKING_METHODS else (task.ranking if task.ranking in RANKING_METHODS else "primary")
    version = version or data_version(task)
    chosen_key = ",".join(sorted(chosen)) if chosen else ""
    key = f"leaderboard:{task.pk}:{version}:{method}:{hashlib.sha256(chosen_key.encode()).hexdigest()[:12]}"
    with _memo_lock:
        board = _memo.get(key)
        if board is not None:
            _memo.move_to_end(key)
            return board
    board = cache.get(key)  # another process may have built it (with a shared cache backend)
    if board is None:
        board = compute(task, method=method, chosen=chosen)
        board.version = version
        cache.set(key, board, CACHE_SECONDS)
    with _memo_lock:
        _memo[key] = board
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    return board


# Boards built in this process, by cache key: a hit costs no unpickling of a 300-row board.
# The key holds the data version, so an entry is never stale, only unused; the oldest go first.
MEMO_SIZE = 32
_memo = OrderedDict()
_memo_lock = threading.Lock()


def compute(task, *, method="primary", chosen=None):
    runs = list(Run.objects.filter(task=task, status=JobStatus.SUCCEEDED).select_related("model").order_by("pk"))
    results = list(
        MetricResult.objects.filter(run__task=task, run__status=JobStatus.SUCCEEDED).only(
            "run_id",
            "metric",
            "extractor",
            "tier",
            "value",
            "ci_low",
            "ci_high",
            "version",
            "n_cases",
            "n_excluded",
            "extra",
        )
    )
    columns = _columns(task, results)
    by_run = {run.pk: {} for run in runs}
    for result in results:
        key = _column_key(result.metric, result.extractor)
        if result.run_id in by_run:
            by_run[result.run_id][key] = result
    rows = [_row(run, columns, by_run[run.pk]) for run in runs]
    per_case_columns = [column for column in columns if column.per_case]
    case_ids, per_case = _per_case_matrix(task, runs, per_case_columns)

    board = Leaderboard(
        task_id=task.pk,
        columns=columns,
        rows=rows,
        method=method,
        primary=_primary(task, columns),
        chosen=[],
        ranking_text="",
        significance_text="",
        stability_text="",
        cases=len(case_ids),
    )
    rankable = [column for column in columns if column.direction and column.tier in (catalog.PIXEL, catalog.FEATURE)]
    if method == "mean_rank":
        wanted = set(chosen or [])
        board.chosen = [column for column in rankable if column.key in wanted] or rankable
    else:
        board.chosen = [board.primary] if board.primary else []
    _rank(board)
    _significance(board, per_case_columns, per_case)
    _stability(board, per_case_columns, per_case)
    _pareto(board)
    board.rows.sort(key=lambda row: (row.rank is None, row.rank or 0, row.run_id))
    board.downstream_reference = downstream.task_reference(task)
    return board


def _column_key(metric, extractor):
    return f"{metric}:{extractor}" if extractor else metric


def _metric_info(metric):
    try:
        return catalog.get(metric)
    except KeyError:
        return None


def _columns(task, results):
    present = {(result.metric, result.extractor, result.tier) for result in results}
    wanted = task.metrics or catalog.DEFAULT_PIXEL_METRICS
    pixel_keys = [key for key in catalog.DEFAULT_PIXEL_METRICS if key in wanted]
    pixel_keys += [key for key in wanted if key in catalog.PIXEL_METRICS and key not in pixel_keys]
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
        info = _metric_info(metric)
        if info is None:
            continue
        columns.append(
            Column(
                _column_key(metric, extractor),
                catalog.FEATURE,
                catalog.label(metric, extractor),
                info.direction,
                info.unit,
                info.definition,
                metric=metric,
                extractor=extractor,
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
        info = _metric_info(metric)
        if info is None:
            continue
        extractors = sorted({extractor for m, extractor in clinical_present if m == metric}) or [""]
        for extractor in extractors:
            columns.append(
                Column(
                    _column_key(metric, extractor),
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
                _column_key(metric, extractor),
                CLINICAL,
                f"{info.label} ({scale})" if scale else info.label,
                info.direction,
                info.unit,
                f"{info.definition} From the reader study “{study}”.",
                metric=metric,
                extractor=extractor,
                link=extra.get("study_url", ""),
            )
        )
    return columns


def _row(run, columns, results):
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
        cells[column.key] = Cell(
            value=result.value,
            ci_low=result.ci_low,
            ci_high=result.ci_high,
            stale=result.is_stale,
            n_cases=result.n_cases,
            n_excluded=result.n_excluded,
            text=formatting.format_value(result.value),
        )
    return Row(
        run_id=run.pk,
        run_name=str(run),
        model_name=run.model.name if run.model else "submission",
        model_id=run.model_id,
        device=run.device,
        stochastic=bool(run.model and run.model.stochastic),
        cells=cells,
    )


def _primary(task, columns):
    ranked = [column for column in columns if column.direction and column.tier in (catalog.PIXEL, catalog.FEATURE)]
    wanted = task.primary_metric
    for column in ranked:
        if column.key == wanted or column.metric == wanted:
            return column
    return ranked[0] if ranked else None


def _values(board, column):
    """(n_runs,) aggregate values of a column in row order; NaN where a run has none."""
    values = np.full(len(board.rows), np.nan)
    for index, row in enumerate(board.rows):
        value = row.cells[column.key].value
        if value is not None:
            values[index] = value
    return values


def _rank(board):
    if not board.rows or not board.chosen:
        board.ranking_text = "No metric to rank by yet."
        return
    if board.method == "mean_rank":
        matrix = np.column_stack([_values(board, column) for column in board.chosen])
        scores, ranks = ranking.mean_ranks(matrix, [column.higher_is_better for column in board.chosen])
        labels = ", ".join(column.label for column in board.chosen)
        board.ranking_text = (
            f"Mean rank over {labels}: each metric ranks the runs (ties share the best rank, a run without the "
            "metric ranks last), the ranks are averaged, and the mean rank is ranked again."
        )
    else:
        column = board.primary
        scores = _values(board, column)
        ranks = ranking.competition_ranks(scores, column.higher_is_better)
        better = "higher" if column.higher_is_better else "lower"
        board.ranking_text = (
            f"Ranked by the task's primary metric, {column.label} ({better} is better); ties share a rank."
        )
    for row, rank, score in zip(board.rows, ranks, scores, strict=True):
        row.rank = None if np.isnan(rank) else int(rank)
        row.score = None if np.isnan(score) else float(score)


def _per_case_matrix(task, runs, columns):
    """(case ids, (n_runs, n_columns, n_cases) values) from the per-case results: NaN where a
    case was excluded (NaN/Inf output, wrong shape, missing) or the metric is absent."""
    if not runs or not columns:
        return [], np.zeros((len(runs), len(columns), 0))
    rows = list(
        CaseResult.objects.filter(run__task=task, run__status=JobStatus.SUCCEEDED).values_list(
            "run_id", "case_id", "status", "values"
        )
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


def _significance(board, per_case_columns, per_case):
    """Each run against the leader on the per-case values of the primary metric (or, when the
    primary metric is a set-level one such as FRD, the first per-case metric)."""
    column = board.primary if board.primary and board.primary.per_case else next(iter(per_case_columns), None)
    leaders = [i for i, row in enumerate(board.rows) if row.rank == 1]
    if column is None or not leaders or per_case.shape[-1] == 0:
        board.significance_text = "No per-case metric to test differences on."
        return
    if len(board.rows) < 2:
        board.significance_text = "Only one run: nothing to compare with the leader yet."
        return
    board.significance_column = column
    leader = leaders[0]
    j = per_case_columns.index(column)
    # Only ranked runs are compared; a run without values for the ranking is not behind the leader on it.
    ranked = np.array([row.rank is not None for row in board.rows])
    values = np.where(ranked[:, None], per_case[:, j, :], np.nan)
    comparisons = ranking.compare_to_leader(
        values,
        leader,
        column.higher_is_better,
        alpha=ALPHA,
        n_resamples=SIGNIFICANCE_RESAMPLES,
        seed=0,
    )
    for row, comparison in zip(board.rows, comparisons, strict=True):
        # Fewer than two paired cases (a run not evaluated yet, every case excluded): no test.
        row.comparison = comparison if comparison is not None and comparison.n_pairs >= 2 else None
    test = next((c.test for c in comparisons if c is not None and c.n_pairs >= 2), "no run has two paired cases")
    board.significance_text = (
        f"Difference from the leader ({board.rows[leader].run_name}) in {column.label}, paired over cases: {test}; "
        f"significant when the adjusted p < {ALPHA}. The CI is a paired bootstrap of the mean difference "
        f"(B = {SIGNIFICANCE_RESAMPLES})."
    )
    if board.primary and not board.primary.per_case:
        board.notes.append(
            f"{board.primary.label} is a set-level metric with no per-case values; differences are tested on "
            f"{column.label} instead."
        )


def _stability(board, per_case_columns, per_case):
    columns = [column for column in board.chosen if column.per_case]
    ranked = [i for i, row in enumerate(board.rows) if row.rank is not None]
    if not columns:
        labels = ", ".join(column.label for column in board.chosen) or "the ranking metric"
        board.stability_text = (
            f"Not available: {labels} is a set-level metric with no per-case values, so the cases cannot be "
            "resampled for it. Rank by mean rank over per-case metrics to see it."
        )
        return
    if len(ranked) < 2 or per_case.shape[-1] == 0:
        board.stability_text = "Rank stability needs at least two ranked runs with per-case results."
        return
    indices = [per_case_columns.index(column) for column in columns]
    result = ranking.rank_stability(
        per_case[np.ix_(ranked, indices)],
        [column.higher_is_better for column in columns],
        n_resamples=STABILITY_RESAMPLES,
        seed=0,
    )
    for position, i in enumerate(ranked):
        row = board.rows[i]
        if np.isnan(result.median_rank[position]):
            continue  # no per-case value at all: nothing to resample
        row.stability = {
            "median_rank": float(result.median_rank[position]),
            "rank_ci": [float(result.rank_ci_low[position]), float(result.rank_ci_high[position])],
            # Sparse: a run visits few ranks, and 300 runs × 300 ranks would be 90,000 numbers.
            "rank_frequencies": {
                str(rank + 1): round(float(share), 4)
                for rank, share in enumerate(result.rank_counts[position])
                if share > 0
            },
            "p_rank_1": float(result.rank_counts[position][0]),
        }
    board.kendall_tau = float(result.kendall_tau_mean)
    labels = ", ".join(column.label for column in columns)
    how = "the rank" if len(columns) == 1 else "the mean rank"
    board.stability_text = (
        f"Cases resampled with replacement {result.n_resamples} times (seed {result.seed}); each time the runs are "
        f"ranked again by {how} of {labels}. Mean Kendall's τ between the resampled and the full ranking: "
        f"{result.kendall_tau_mean:.3f}."
    )
    skipped = [column.label for column in board.chosen if not column.per_case]
    if skipped:
        board.notes.append(
            f"{', '.join(skipped)}: set-level metrics without per-case values, so they are not part of the rank "
            "stability resampling."
        )


def _pareto(board):
    column = board.primary
    if column is None:
        return
    quality = _values(board, column)
    latency = np.array(
        [np.nan if row.cells["latency_p50"].value is None else row.cells["latency_p50"].value for row in board.rows],
        dtype=float,
    )
    front = frontier.pareto_front(latency, quality, higher_is_better=column.higher_is_better)
    for row, on_front in zip(board.rows, front, strict=True):
        row.pareto = bool(on_front)


# --- Export ---------------------------------------------------------------------------------


def as_dict(board, task):
    """The JSON form of the leaderboard (API and download); ±inf as "inf"/"-inf". Built once per board."""
    if board.exported is None:
        board.exported = _as_dict(board, task)
    return board.exported


def _as_dict(board, task):
    def cell_dict(column, cell):
        if column.direction is None:
            return {"text": cell.text}
        data = {"value": encode_value(cell.value)}
        if column.tier in (catalog.PIXEL, catalog.FEATURE, CLINICAL):
            data.update(
                ci_low=encode_value(cell.ci_low),
                ci_high=encode_value(cell.ci_high),
                n_cases=cell.n_cases,
                n_excluded=cell.n_excluded,
                stale=cell.stale,
            )
        return data

    rows = []
    for row in board.rows:
        comparison = row.comparison
        rows.append(
            {
                "rank": row.rank,
                "score": encode_value(row.score),
                "run": {"id": row.run_id, "name": row.run_name},
                "model": {"id": row.model_id, "name": row.model_name, "stochastic": row.stochastic},
                "values": {column.key: cell_dict(column, row.cells[column.key]) for column in board.columns},
                "versus_leader": None
                if comparison is None
                else {
                    "n_pairs": comparison.n_pairs,
                    "mean_difference": encode_value(comparison.mean_difference),
                    "ci_low": encode_value(comparison.ci_low),
                    "ci_high": encode_value(comparison.ci_high),
                    "p_value": encode_value(comparison.p_value),
                    "p_adjusted": encode_value(comparison.p_adjusted),
                    "significant": comparison.significant,
                },
                "rank_stability": row.stability,
                "pareto_optimal": row.pareto,
            }
        )
    return {
        "task": {"slug": task.slug, "name": task.name},
        "ranking": {
            "method": board.method,
            "primary_metric": board.primary.key if board.primary else None,
            "metrics": [column.key for column in board.chosen],
            "description": board.ranking_text,
        },
        "downstream_reference": _reference_dict(board.downstream_reference),
        "significance": board.significance_text,
        "significance_metric": board.significance_column.key if board.significance_column else None,
        "rank_stability": board.stability_text,
        "notes": board.notes,
        "columns": [
            {
                "key": column.key,
                "tier": column.tier,
                "label": column.label,
                "direction": column.direction,
                "unit": column.unit,
                "definition": column.definition,
                "metric": column.metric or None,
                "extractor": column.extractor or None,
                "placeholder": column.placeholder or None,
                "link": column.link or None,
            }
            for column in board.columns
        ],
        "rows": rows,
        "version": board.version,
    }


def _reference_dict(reference):
    if reference is None:
        return None
    data = dict(reference)
    for key in ("dice", "hd95"):
        data[key] = encode_value(data.get(key))
        if data.get(f"{key}_ci"):
            data[f"{key}_ci"] = [encode_value(value) for value in data[f"{key}_ci"]]
    return data


def csv_rows(board):
    """Header + one flat row per run: rank, run, model, then value and CI bounds per metric column."""
    header = ["rank", "run_id", "run", "model"]
    for column in board.columns:
        if column.direction is None:
            header.append(column.key)
        elif column.tier == EFFICIENCY:
            header.append(f"{column.key}_{column.unit}".replace("/", "_per_"))
        else:
            header += [column.key, f"{column.key}_ci_low", f"{column.key}_ci_high"]
    header += ["p_adjusted_vs_leader", "significant_vs_leader", "median_bootstrap_rank", "pareto_optimal"]
    yield header
    for row in board.rows:
        line = [row.rank if row.rank is not None else "", row.run_id, row.run_name, row.model_name]
        for column in board.columns:
            cell = row.cells[column.key]
            if column.direction is None:
                line.append(cell.text)
            elif column.tier == EFFICIENCY:
                line.append(formatting.csv_number(cell.value))
            else:
                line += [formatting.csv_number(value) for value in (cell.value, cell.ci_low, cell.ci_high)]
        comparison = row.comparison
        line += [
            formatting.csv_number(comparison.p_adjusted) if comparison else "",
            ("yes" if comparison.significant else "no") if comparison else "",
            formatting.csv_number(row.stability["median_rank"]) if row.stability else "",
            "yes" if row.pareto else "no",
        ]
        yield line


def case_rows(task, user_runs):
    """Every per-case result of the task's succeeded runs, flat: for the CSV/JSON export."""
    metrics = [key for key in catalog.PIXEL_METRICS]
    records = (
        CaseResult.objects.filter(run__in=user_runs, run__task=task, run__status=JobStatus.SUCCEEDED)
        .order_by("run_id", "case__case_id")
        .values_list(
            "run_id",
            "run__name",
            "run__model__name",
            "case_id",
            "case__case_id",
            "status",
            "problem",
            "samples",
            "values",
            "uncertainty_mean",
            "uncertainty_p95",
        )  # fmt: skip
    )
    present = set()
    rows = []
    for run_id, run_name, model, case_pk, case_id, status, problem, samples, values, sd_mean, sd_p95 in records:
        present.update(key for key in values if key in catalog.PIXEL_METRICS)
        rows.append(
            {
                "run_id": run_id,
                "run": run_name or f"Run {run_id}",
                "model": model or "submission",
                "case_pk": case_pk,
                "case_id": case_id,
                "status": status,
                "problem": problem,
                "samples": samples,
                "values": {key: values.get(key) for key in values if key in catalog.PIXEL_METRICS},
                "uncertainty_mean": sd_mean,
                "uncertainty_p95": sd_p95,
            }
        )
    return [key for key in metrics if key in present], rows
