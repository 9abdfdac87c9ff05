"""Hallucination scores of a probe run against the probes' truth (no Django).

**The contrast rule.** For a probe with truth region R (its truth mask) and the lesion contrast c (the truth's
``contrast``, reference units, see ``construct``), an output ``y`` (1, H, W) shows a structure at R when

    f = region_contrast(y, R) / c,   |f| ≥ PRESENT_FRACTION (½),

i.e. the output's contrast between R and its ring (mean in R − median in the ring 2–4 px outside it) is at least
half the lesion's own, in either polarity (a T1→T2 model that keeps the T1 polarity still shows a structure; the
sign is kept as ``f``). Then, per probe and sample:

- expected **present** (inserted): shown → ``faithful``; not shown → ``omitted`` (an *omission*);
- expected **absent** (removed, control): shown → ``invented`` (an *invented structure*: e.g. the removed lesion
  reappears, recalled from the model's prior, not from the input); not shown → ``faithful``.

**The hallucination index** of a run is the rate of invented structures per probe case whose truth says nothing
is there (the removed and control probes): the mean over those probe cases of the share of the case's samples
with an invented structure, with a percentile bootstrap CI over the probe cases
(``evaluation.metrics.bootstrap.bootstrap_mean_ci``). The same per kind, and the omission rate per inserted kind.

**Detectors** turn a map into marks (candidate hallucination positions with a rating), scored against the truth by
FROC/wAFROC in ``readerstudy.stats.lesion_marks``:
- ``error``: |output − truth image|, averaged over samples;
- ``sd``: the per-pixel SD over samples (stochastic runs, ≥ 2 samples).
Each map is smoothed (Gaussian σ = 1.5 px); its local maxima (a (2·MARK_SEPARATION + 1)² neighbourhood) are the
marks, at most MARKS_PER_CASE per case, highest first, rated by the smoothed map's value there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..metrics.bootstrap import bootstrap_mean_ci
from .construct import INSERTED, KINDS, region_contrast

PRESENT_FRACTION = 0.5
MARK_SIGMA = 1.5
MARK_SEPARATION = 4
MARKS_PER_CASE = 5
OUTCOMES = ("faithful", "invented", "omitted")


@dataclass(frozen=True)
class Outcome:
    case: str
    kind: str
    expected: str
    sample: int
    fraction: float  # the output's contrast at the region ÷ the lesion's
    outcome: str  # faithful | invented | omitted

    def to_dict(self) -> dict:
        return asdict(self)


def decide(expected: str, fraction: float, present_fraction: float = PRESENT_FRACTION) -> str:
    shown = abs(fraction) >= present_fraction
    if expected == "present":
        return "faithful" if shown else "omitted"
    if expected == "absent":
        return "invented" if shown else "faithful"
    raise ValueError(f"expected is 'present' or 'absent', not {expected!r}")


def score_probe(case: str, truth: dict, region: np.ndarray, samples, present_fraction=PRESENT_FRACTION):
    """Outcomes of one probe: ``samples`` are the run's outputs for it, each (1, H, W)."""
    region = np.asarray(region).astype(bool)
    if region.ndim == 3:
        region = region[0]
    contrast = float(truth["contrast"])
    if contrast == 0:
        raise ValueError(f"probe {case}: the truth's lesion contrast is zero")
    outcomes = []
    for sample, output in enumerate(samples):
        fraction = region_contrast(np.asarray(output, dtype=np.float64), region) / contrast
        outcomes.append(
            Outcome(case, truth["kind"], truth["expected"], sample, fraction, decide(truth["expected"], fraction))
        )
    return outcomes


def _rate(outcomes, name, kinds, **bootstrap):
    per_case: dict[str, list[bool]] = {}
    for o in outcomes:
        if o.kind in kinds:
            per_case.setdefault(o.case, []).append(o.outcome == name)
    if not per_case:
        return None
    values = [float(np.mean(flags)) for _, flags in sorted(per_case.items())]
    return bootstrap_mean_ci(values, **bootstrap).as_dict()


def hallucination_index(outcomes, *, n_resamples=2000, confidence=0.95, seed=0) -> dict:
    """{"index": CI dict or None, "invented": {kind: CI}, "omitted": {kind: CI}, "counts": {...}}.

    "index": rate of invented structures per absent-truth probe case (removed + control); CI dicts are
    ``BootstrapResult.as_dict()`` (estimate, low, high, n ...)."""
    outcomes = list(outcomes)
    options = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    absent = [k for k in KINDS if k not in INSERTED]
    counts = {name: sum(o.outcome == name for o in outcomes) for name in OUTCOMES}
    return {
        "index": _rate(outcomes, "invented", absent, **options),
        "invented": {k: r for k in absent if (r := _rate(outcomes, "invented", [k], **options))},
        "omitted": {k: r for k in INSERTED if (r := _rate(outcomes, "omitted", [k], **options))},
        "counts": counts,
        "probe_cases": len({o.case for o in outcomes}),
        "samples": len(outcomes),
    }


def hallucinated_cases(outcomes) -> dict[str, str]:
    """Probe case → "invented" | "omitted" where at least half its samples were scored so (the regions a detector,
    or the SD, should find). ``outcomes``: ``Outcome``s or their dicts."""
    tally: dict[str, list[str]] = {}
    for outcome in outcomes:
        o = outcome if isinstance(outcome, dict) else outcome.to_dict()
        tally.setdefault(o["case"], []).append(o["outcome"])
    cases = {}
    for case, names in tally.items():
        for name in ("invented", "omitted"):
            if names.count(name) * 2 >= len(names):
                cases[case] = name
    return cases


# --------------------------------------------------------------------------- detectors


def error_map(samples, truth_image) -> np.ndarray:
    """|output − truth image| averaged over samples: (H, W)."""
    stack = np.stack([np.asarray(s, dtype=np.float64).reshape(np.shape(truth_image)) for s in samples])
    return np.abs(stack - np.asarray(truth_image, dtype=np.float64)).mean(axis=0).reshape(stack.shape[-2:])


def sd_map(samples) -> np.ndarray | None:
    """Per-pixel SD over samples (ddof 0): (H, W), or None for fewer than two samples."""
    if len(samples) < 2:
        return None
    stack = np.stack([np.asarray(s, dtype=np.float64) for s in samples])
    return stack.std(axis=0).reshape(stack.shape[-2:])


def marks_from_map(
    detector_map: np.ndarray, *, sigma=MARK_SIGMA, separation=MARK_SEPARATION, per_case=MARKS_PER_CASE
) -> list[tuple[int, int, float]]:
    """Local maxima of the smoothed map as (row, col, rating), highest first, at most ``per_case``."""
    smooth = ndimage.gaussian_filter(np.asarray(detector_map, dtype=np.float64), sigma)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=2 * separation + 1)) & (smooth > 0)
    rows, cols = np.nonzero(peaks)
    order = np.argsort(-smooth[rows, cols], kind="stable")[:per_case]
    return [(int(rows[i]), int(cols[i]), float(smooth[rows[i], cols[i]])) for i in order]
