"""Any two runs of a board compared case by case, with the paired test the board uses against the leader
(`ranking.compare_to_leader` on the two runs' rows: Wilcoxon signed-rank and a paired bootstrap of the mean
difference), on every per-case metric of the board. Differences are run A − run B in metric units."""

import numpy as np

from core.errors import InvalidInput

from .. import ranking
from ..formatting import encode_value
from . import queries
from .standings import ALPHA, SIGNIFICANCE_RESAMPLES


def requested_pair(params):
    """The two run ids of `?compare=A,B` (or `?compare=A&compare=B`); None when not asked for."""
    values = [value.strip() for raw in params.getlist("compare") for value in raw.split(",") if value.strip()]
    if not values:
        return None
    if len(values) != 2 or not all(value.isdigit() for value in values):
        raise InvalidInput("compare takes two run ids, e.g. ?compare=12,15.")
    first, second = int(values[0]), int(values[1])
    if first == second:
        raise InvalidInput("Choose two different runs to compare.")
    return first, second


def compare(task, board, run_a, run_b):
    """{run_a, run_b, metrics: [...], ...}: run A against run B on each per-case column of `board` (whose
    rows are the runs that may be compared: one that is not on the board is a clear error)."""
    rows = {row.run_id: row for row in board.rows}
    missing = [str(run_id) for run_id in (run_a, run_b) if run_id not in rows]
    if missing:
        raise InvalidInput(f"Run {', '.join(missing)} is not on this leaderboard; compare two of its runs.")
    columns = [column for column in board.columns if column.per_case and column.direction]
    runs = [_RunRef(run_a), _RunRef(run_b)]
    _case_ids, per_case = queries.per_case_matrix(task, runs, columns)
    metrics = []
    for j, column in enumerate(columns):
        # Run B as the "leader": compare_to_leader's difference is then A − B, its n_better A's wins.
        result = ranking.compare_to_leader(
            per_case[:, j, :], 1, column.higher_is_better, alpha=ALPHA, n_resamples=SIGNIFICANCE_RESAMPLES, seed=0
        )[0]
        metrics.append((column, result))
    tested = np.array([r.p_value if r.n_pairs >= 2 else np.nan for _c, r in metrics], dtype=float)
    adjusted = ranking.holm_adjust(tested) if len(tested) else tested
    out = []
    for (column, result), p_adjusted in zip(metrics, adjusted, strict=True):
        usable = result.n_pairs >= 2
        out.append(
            {
                "key": column.key,
                "label": column.label,
                "tier": column.tier,
                "higher_is_better": column.higher_is_better,
                "n_pairs": result.n_pairs,
                "mean_difference": encode_value(result.mean_difference) if result.n_pairs else None,
                "ci_low": encode_value(result.ci_low) if result.n_pairs else None,
                "ci_high": encode_value(result.ci_high) if result.n_pairs else None,
                "p_value": encode_value(result.p_value) if usable else None,
                "p_adjusted": encode_value(float(p_adjusted)) if usable else None,
                "significant": bool(usable and p_adjusted < ALPHA),
                "n_a_better": result.n_better,
                "n_b_better": result.n_worse,
            }
        )
    # Set-level columns with values (FRD, a reader study's AUC, latency) have no per-case pairs to test.
    skipped = [c.label for c in board.columns if c.direction and not c.per_case and not c.placeholder]
    return {
        "run_a": {"id": run_a, "name": rows[run_a].run_name, "rank": rows[run_a].rank},
        "run_b": {"id": run_b, "name": rows[run_b].run_name, "rank": rows[run_b].rank},
        "difference": "run_a − run_b, in the metric's units",
        "test": "Wilcoxon signed-rank over the cases both runs have (two-sided, tied cases dropped); "
        f"95 % CI: paired bootstrap of the mean difference (B = {SIGNIFICANCE_RESAMPLES}, seed 0); "
        f"p_adjusted: Holm over the {int(np.sum(~np.isnan(tested)))} metrics tested; significant when < {ALPHA}.",
        "metrics": out,
        "not_tested": skipped,
    }


class _RunRef:
    """What `queries.per_case_matrix` needs of a run: its primary key."""

    def __init__(self, pk):
        self.pk = pk


CSV_FIELDS = ("key", "label", "n_pairs", "mean_difference", "ci_low", "ci_high", "p_value", "p_adjusted",
              "significant", "n_a_better", "n_b_better")  # fmt: skip


def csv_rows(comparison):
    """The comparison as a flat table (the first row the header): one row per metric, A and B named."""
    header = ["run_a", "run_b", *CSV_FIELDS]
    names = [comparison["run_a"]["name"], comparison["run_b"]["name"]]
    body = [names + ["" if m[field] is None else m[field] for field in CSV_FIELDS] for m in comparison["metrics"]]
    return [header, *body]
