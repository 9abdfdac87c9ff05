"""A task's leaderboard: one row per succeeded run, columns grouped by tier, a ranking, each
run's difference from the leader and the stability of its rank.

Its rooms: `shapes` (what a board is), `queries` (what it reads, in a fixed number of queries
whatever the number of runs), `standings` (ranking, paired tests, rank stability, Pareto front),
`cache` (`build`: the board from the cache unless the data changed), `pairwise` (any two runs
compared with the board's paired test) and `export` (JSON, CSV, the
per-case table). What the app's views and other apps use is named here (cached boards unpickle
through these names too).
"""

from .cache import build
from .export import as_dict, case_rows, csv_rows
from .pairwise import compare as compare_runs
from .pairwise import csv_rows as comparison_csv_rows
from .pairwise import requested_pair
from .queries import data_version, hidden_runs
from .shapes import (
    CLINICAL,
    EFFICIENCY,
    RANKING_METHODS,
    READER_STUDY_COLUMN,
    TIERS,
    Cell,
    Column,
    Leaderboard,
    Row,
)
from .standings import compute, requested_ranking

__all__ = [
    "CLINICAL",
    "EFFICIENCY",
    "RANKING_METHODS",
    "READER_STUDY_COLUMN",
    "TIERS",
    "Cell",
    "Column",
    "Leaderboard",
    "Row",
    "as_dict",
    "build",
    "case_rows",
    "compare_runs",
    "comparison_csv_rows",
    "compute",
    "csv_rows",
    "data_version",
    "hidden_runs",
    "requested_pair",
    "requested_ranking",
]
