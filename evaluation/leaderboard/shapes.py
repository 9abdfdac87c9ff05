"""What a leaderboard is: its tiers, columns, cells, rows and the board itself (plain dataclasses,
pickled into the cache by `cache.build`)."""

from dataclasses import dataclass, field

from .. import formatting, ranking
from ..metrics import catalog

CLINICAL = catalog.CLINICAL
EFFICIENCY = "efficiency"
TIERS = (
    (catalog.PIXEL, "Pixel fidelity"),
    (catalog.FEATURE, "Feature realism"),
    (CLINICAL, "Clinical relevance"),
    (EFFICIENCY, "Efficiency"),
)
RANKING_METHODS = {"primary": "Primary metric", "mean_rank": "Mean rank"}
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
    target: float | None = None  # the best value of a column with direction catalog.TARGET

    @property
    def higher_is_better(self):
        return self.direction == catalog.HIGHER

    @property
    def better_text(self):
        """'higher', 'lower' or 'closest to 0.5', for "… is better"."""
        return f"closest to {self.target:g}" if self.direction == catalog.TARGET else (self.direction or "")

    def oriented(self, values):
        """The column's values turned so that higher is better (`ranking.oriented`)."""
        return ranking.oriented(values, self.direction, self.target)

    @property
    def short_label(self):
        """The metric's own label ("KID"), for a header that names the extractor on a line of its own."""
        if self.link:  # a reader study's column: its label names the scale; the link names the study
            return self.label
        info = metric_info(self.metric) if self.metric else None
        return info.label if info and self.extractor else self.label

    @property
    def arrow(self):
        if self.direction == catalog.TARGET:
            return f"→{self.target:g}"
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
    ci_text: str = ""  # "[low, high]" rounded as `text` is (formatting.format_interval)
    order_value: float | None = None  # what the page sorts by where it is not the value (−|v − target|)

    @property
    def sort_key(self):
        return formatting.sort_number(self.value if self.order_value is None else self.order_value)


@dataclass
class Row:
    run_id: int
    run_name: str
    model_name: str
    model_id: int | None
    device: str
    stochastic: bool
    cells: dict
    participant: str = ""  # the participant who submitted it; empty for organisers' runs (baselines)
    created_at: object = None
    family: str = ""  # the model's family (inference.ModelFamily); empty for a submission without a model
    sampling: dict | None = None  # a diffusion run's sampling settings: scheduler, steps, samples, seed, sweep
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
    convention: dict | None = None  # the pixel tier's profile and region (standings.pixel_convention)
    inseparable: list = field(default_factory=list)  # keys of the columns whose CIs all overlap

    def separates(self, key):
        """False for a column whose CIs overlap for every pair of runs (see `ranking.cis_all_overlap`)."""
        return key not in self.inseparable

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


def metric_info(metric):
    """The catalogue's entry of `metric`, or None for a metric it no longer has."""
    try:
        return catalog.get(metric)
    except KeyError:
        return None
