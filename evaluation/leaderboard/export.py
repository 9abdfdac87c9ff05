"""A leaderboard as it leaves the site: its JSON form (API and download), its flat CSV rows, and every
per-case result of the task's runs (±inf as "inf"/"-inf", see `formatting`)."""

from core.models import JobStatus

from .. import formatting
from ..formatting import encode_value
from ..metrics import catalog
from ..models import CaseResult
from .shapes import CLINICAL, EFFICIENCY


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
                "model": {
                    "id": row.model_id,
                    "name": row.model_name,
                    "stochastic": row.stochastic,
                    "family": row.family,
                },
                "sampling": row.sampling,
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
        "pixel_convention": board.convention,
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
                "target": column.target,
                "separates_runs": board.separates(column.key) if column.direction else None,
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
    header = ["rank", "run_id", "run", "model", "family", "scheduler", "sampling_steps", "samples_per_case"]
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
        line = [row.rank if row.rank is not None else "", row.run_id, row.run_name, row.model_name, row.family]
        sampling = row.sampling or {}
        line += [
            sampling.get("scheduler", ""),
            sampling.get("sampling_steps", ""),
            sampling.get("samples_per_case", ""),
        ]
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
    metrics = [*catalog.PER_CASE_METRICS, *catalog.PER_CASE_FEATURE_METRICS]
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
        present.update(key for key in values if key in metrics)
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
                "values": {key: values.get(key) for key in values if key in metrics},
                "uncertainty_mean": sd_mean,
                "uncertainty_p95": sd_p95,
            }
        )
    return [key for key in metrics if key in present], rows
