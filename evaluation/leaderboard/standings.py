"""A leaderboard computed from stored results: the runs ranked (primary metric or mean rank), each
compared with the leader on per-case values, the ranks' stability under a bootstrap of cases, and
the Pareto front of quality against latency. The statistics live in `evaluation.ranking` and
`evaluation.frontier` (no Django); this module arranges them on the board.
"""

import numpy as np

from .. import frontier, ranking
from ..downstream.selectors import task_reference
from ..metrics import catalog, profiles
from ..probes import selectors as probe_selectors
from ..task_settings import region_name
from . import queries
from .shapes import RANKING_METHODS, Leaderboard

STABILITY_RESAMPLES = 1000
SIGNIFICANCE_RESAMPLES = 2000
ALPHA = 0.05


def requested_ranking(params, task):
    """(method, chosen column keys) from `?ranking=` and `?metrics=` (comma-separated or repeated);
    the task's own method when none is asked for, None for an unknown one."""
    method = params.get("ranking") or task.ranking
    chosen = [key for value in params.getlist("metrics") for key in value.split(",") if key]
    return (method if method in RANKING_METHODS else None), chosen or None


def compute(task, *, method="primary", chosen=None, private=False):
    """The board of `task` built now (`cache.build` keeps it); `method`, `chosen`, `private` as in `cache.build`."""
    runs = queries.succeeded_runs(task, private=private)
    results = queries.run_results(task)
    columns = queries.columns(task, results)
    rows = queries.rows(runs, columns, results, queries.participant_ids(task), region=region_name(task))
    columns = queries.add_hallucination_index(
        columns, rows, probe_selectors.hallucination_indices(task), probe_selectors.page_url(task)
    )
    primary = _primary(task, columns)
    rows = _one_entry_per_participant(rows, primary, task.leaderboard_entry)
    kept = {row.run_id for row in rows}
    runs = [run for run in runs if run.pk in kept]
    per_case_columns = [column for column in columns if column.per_case]
    case_ids, per_case = queries.per_case_matrix(task, runs, per_case_columns)

    board = Leaderboard(
        task_id=task.pk,
        columns=columns,
        rows=rows,
        method=method,
        primary=primary,
        chosen=[],
        ranking_text="",
        significance_text="",
        stability_text="",
        cases=len(case_ids),
    )
    rankable = [column for column in columns if column.direction and column.tier in (catalog.PIXEL, catalog.FEATURE)]
    if method == "mean_rank":
        wanted = set(chosen or [])
        # Any other ranked column (a reader study's AUC, downstream Dice, latency) enters the mean rank when
        # asked for by name; by default the pixel and feature tiers do.
        askable = rankable + [c for c in columns if c.direction and c not in rankable and c.key in wanted]
        board.chosen = [column for column in askable if column.key in wanted] or rankable
    else:
        board.chosen = [board.primary] if board.primary else []
    _rank(board)
    _significance(board, per_case_columns, per_case)
    _stability(board, per_case_columns, per_case)
    _pareto(board)
    _separation(board)
    board.rows.sort(key=lambda row: (row.rank is None, row.rank or 0, row.run_id))
    board.downstream_reference = task_reference(task)
    board.convention = pixel_convention(task)
    return board


def pixel_convention(task):
    """How the board's pixel tier was scored: the task's profile (with the link to its definition) and region."""
    profile = profiles.get(task.profile)
    url = catalog.PROFILE_URLS.get(profile.name, "")
    return {
        "profile": profile.name,
        "label": profile.label,
        "version": profile.version,
        "definition_url": url,
        "description": profile.description,
        "region": region_name(task),
    }


def _one_entry_per_participant(rows, primary, entry):
    """A participant's best run by the primary metric (`entry` "best"), or their latest ("latest"); runs of
    organisers (baselines) all stay. A participant whose runs have no primary value keeps the latest."""
    chosen, others = {}, []
    for row in rows:
        if not row.participant:
            others.append(row)
            continue
        chosen.setdefault(row.participant, []).append(row)

    def best(candidates):
        if entry == "latest" or primary is None:
            return max(candidates, key=lambda row: (row.created_at, row.run_id))
        scored = [row for row in candidates if row.cells.get(primary.key) and row.cells[primary.key].value is not None]
        if not scored:
            return max(candidates, key=lambda row: (row.created_at, row.run_id))
        return max(scored, key=lambda row: (float(primary.oriented(row.cells[primary.key].value)), row.created_at))

    kept = others + [best(candidates) for candidates in chosen.values()]
    return sorted(kept, key=lambda row: row.run_id)


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
        # Each column turned so that higher is better (a target metric: closeness to its target).
        matrix = np.column_stack([column.oriented(_values(board, column)) for column in board.chosen])
        scores, ranks = ranking.mean_ranks(matrix, True)
        labels = ", ".join(column.label for column in board.chosen)
        board.ranking_text = (
            f"Mean rank over {labels}: each metric ranks the runs (ties share the best rank, a run without the "
            "metric ranks last), the ranks are averaged, and the mean rank is ranked again."
        )
        targets = [column for column in board.chosen if column.direction == catalog.TARGET]
        if targets:
            board.ranking_text += " " + " ".join(
                f"{column.label} ranks by closeness to {column.target:g} ({column.target:g} − x and "
                f"{column.target:g} + x rank alike)."
                for column in targets
            )
    else:
        column = board.primary
        scores = _values(board, column)
        ranks = ranking.rank_by_direction(scores, column.direction, column.target)
        board.ranking_text = (
            f"Ranked by the task's primary metric, {column.label} ({column.better_text} is better); ties share a rank."
        )
    for row, rank, score in zip(board.rows, ranks, scores, strict=True):
        row.rank = None if np.isnan(rank) else int(rank)
        row.score = None if np.isnan(score) else float(score)


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


def _separation(board):
    """Flag each column whose CIs overlap for every pair of runs: it "does not separate these runs"."""
    for column in board.columns:
        if not column.direction:
            continue
        cells = [row.cells.get(column.key) for row in board.rows]
        lows = [np.nan if c is None or c.ci_low is None else c.ci_low for c in cells]
        highs = [np.nan if c is None or c.ci_high is None else c.ci_high for c in cells]
        if ranking.cis_all_overlap(lows, highs):
            board.inseparable.append(column.key)
    empty = [
        column.label
        for column in board.columns
        if column.metric in ("precision", "recall")
        and len(board.rows) > 1
        and all(row.cells[column.key].value == 0 for row in board.rows)
    ]
    if empty:
        board.notes.append(
            f"{', '.join(empty)}: 0 for every run. No output lies inside the references' k-NN neighbourhoods in "
            "that feature space (each run's page gives the distances): a finding about these outputs, not a "
            "failure to compute; FRD and KID grade how far they are."
        )
    if board.inseparable:
        labels = ", ".join(board.column(key).label for key in board.inseparable)
        board.notes.append(
            f"{labels}: the 95 % CIs of every pair of runs overlap, so this metric does not separate these runs."
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
