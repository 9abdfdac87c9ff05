"""Does a stochastic model's uncertainty point at its hallucinations? (no Django)

For a probe run with several samples per probe, the SD map (``scoring.sd_map``: per-pixel SD over the samples,
output units, (H, W) per probe case) is compared with where the run hallucinated:

- **hallucinated pixels**: the truth regions (``ProbeCase`` truth masks) of the probe cases where at least half the
  samples were scored ``invented`` or ``omitted`` (``scoring.hallucinated_cases``); **faithful pixels**: all the
  other pixels of all the probe cases (the other probes' regions and the background included).
- ``sd_auc``: the AUC of the SD separating hallucinated from faithful pixels, pooled over the probe cases (the
  Mann–Whitney statistic, ties counted ½: ``sklearn.metrics.roc_auc_score`` of the SD against the pixel labels).
  0.5 = the SD says nothing; 1 = every hallucinated pixel is more uncertain than every faithful one.
- ``by_threshold``: P(hallucinated | SD > τ) for τ at the ``QUANTILES`` of the pooled SD, with the pixels above τ
  (None where no pixel is), beside the ``base_rate`` (the share of hallucinated pixels).

``sd_at_marks_auc``: the same AUC at reader-marked vs unmarked positions (for the reader studies, wired later).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from scipy.stats import rankdata

QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99)


def auc(positive, negative) -> float | None:
    """P(a positive's value > a negative's) + ½ P(equal): the Mann–Whitney AUC; None when a side is empty."""
    positive = np.asarray(positive, dtype=np.float64).ravel()
    negative = np.asarray(negative, dtype=np.float64).ravel()
    if not len(positive) or not len(negative):
        return None
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def uncertainty_checks(
    sd_maps: Mapping[str, np.ndarray],
    hallucinated_masks: Mapping[str, np.ndarray],
    *,
    quantiles: Iterable[float] = QUANTILES,
) -> dict:
    """The checks of one probe run: ``sd_maps`` case → (H, W) SD; ``hallucinated_masks`` case → (H, W) bool for
    the cases that hallucinated (a case absent there has no hallucinated pixel).

    → {"sd_auc", "why" (where sd_auc is None), "hallucinated_pixels", "faithful_pixels", "base_rate",
    "by_threshold": [{"quantile", "tau", "p_hallucination", "pixels"}], "cases"}."""
    cases = sorted(sd_maps)
    if not cases:
        return {"sd_auc": None, "why": "no SD map (fewer than two samples per probe)", "cases": 0, "by_threshold": []}
    values, labels = [], []
    for case in cases:
        sd = np.asarray(sd_maps[case], dtype=np.float64)
        sd = sd.reshape(sd.shape[-2:])
        mask = hallucinated_masks.get(case)
        mask = np.zeros(sd.shape, bool) if mask is None else np.asarray(mask, bool).reshape(sd.shape)
        values.append(sd.ravel())
        labels.append(mask.ravel())
    sd_all, label_all = np.concatenate(values), np.concatenate(labels)
    n_h = int(label_all.sum())
    out = {
        "sd_auc": auc(sd_all[label_all], sd_all[~label_all]),
        "hallucinated_pixels": n_h,
        "faithful_pixels": int(len(label_all) - n_h),
        "base_rate": float(n_h / len(label_all)),
        "cases": len(cases),
        "by_threshold": [],
    }
    if out["sd_auc"] is None:
        out["why"] = "no hallucinated pixel" if n_h == 0 else "no faithful pixel"
    for q in quantiles:
        tau = float(np.quantile(sd_all, q))
        above = sd_all > tau
        n = int(above.sum())
        out["by_threshold"].append(
            {"quantile": float(q), "tau": tau, "p_hallucination": float(label_all[above].mean()) if n else None,
             "pixels": n}
        )  # fmt: skip
    return out


def sd_at_marks_auc(
    sd_map_by_case: Mapping[str, np.ndarray],
    marked_positions: Iterable[tuple],
    unmarked_positions: Iterable[tuple],
) -> float | None:
    """The AUC of the SD at reader-marked positions against unmarked ones: positions are (case, row, col) in pixels
    (rounded to the nearest pixel) of the case's (H, W) SD map; None when either side is empty."""

    def at(positions):
        values = []
        for case, row, col in positions:
            sd = np.asarray(sd_map_by_case[case])
            sd = sd.reshape(sd.shape[-2:])
            r, c = int(round(float(row))), int(round(float(col)))
            if not (0 <= r < sd.shape[0] and 0 <= c < sd.shape[1]):
                raise ValueError(f"position ({row}, {col}) is outside case {case!r}'s {sd.shape} SD map")
            values.append(float(sd[r, c]))
        return values

    return auc(at(marked_positions), at(unmarked_positions))
