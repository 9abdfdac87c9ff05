"""Uncertainty checks of stochastic probe runs: the SD map's AUC for hallucinated pixels, P(h | SD > τ)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from evaluation.probes import scoring, uncertainty


def test_auc_is_sklearns_with_ties():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 40), rng.integers(0, 4, 70)
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(70)], np.r_[pos, neg])
    assert uncertainty.auc(pos, neg) == pytest.approx(expected, abs=1e-12)
    assert uncertainty.auc([], neg) is None


def test_checks_pool_the_pixels_of_every_case():
    rng = np.random.default_rng(1)
    sd = {f"c{i}": rng.gamma(2.0, size=(12, 10)) for i in range(4)}
    masks = {"c1": np.zeros((12, 10), bool), "c3": np.zeros((12, 10), bool)}
    masks["c1"][2:5, 3:7] = True
    masks["c3"][8:11, 1:3] = True
    for case, mask in masks.items():
        sd[case][mask] += 1.0  # more uncertain where it hallucinated
    checks = uncertainty.uncertainty_checks(sd, masks)
    values = np.concatenate([sd[c].ravel() for c in sorted(sd)])
    labels = np.concatenate([masks.get(c, np.zeros((12, 10), bool)).ravel() for c in sorted(sd)])
    assert checks["sd_auc"] == pytest.approx(roc_auc_score(labels, values), abs=1e-12) and checks["sd_auc"] > 0.6
    assert checks["hallucinated_pixels"] == 18 and checks["faithful_pixels"] == 4 * 120 - 18
    assert checks["base_rate"] == pytest.approx(18 / 480)
    assert [t["quantile"] for t in checks["by_threshold"]] == list(uncertainty.QUANTILES)
    for row in checks["by_threshold"]:
        tau = np.percentile(values, 100 * row["quantile"])
        assert row["tau"] == pytest.approx(tau)
        assert row["pixels"] == (values > tau).sum()
        assert row["p_hallucination"] == pytest.approx(labels[values > tau].mean())
    none = uncertainty.uncertainty_checks(sd, {})
    assert none["sd_auc"] is None and none["why"] == "no hallucinated pixel"
    assert uncertainty.uncertainty_checks({}, {})["sd_auc"] is None


def test_sd_at_marks_auc():
    rng = np.random.default_rng(2)
    sd = {"a": rng.random((8, 8)), "b": rng.random((1, 8, 8))}
    marked = [("a", 1, 2), ("b", 3.4, 5.6), ("a", 7, 7)]
    unmarked = [("a", 0, 0), ("b", 2, 2), ("b", 6, 1), ("a", 4, 4)]
    value = lambda case, r, c: np.asarray(sd[case]).reshape(8, 8)[int(round(r)), int(round(c))]  # noqa: E731
    scores = [value(*p) for p in marked + unmarked]
    expected = roc_auc_score([1] * 3 + [0] * 4, scores)
    assert uncertainty.sd_at_marks_auc(sd, marked, unmarked) == pytest.approx(expected)
    assert uncertainty.sd_at_marks_auc(sd, marked, []) is None
    with pytest.raises(ValueError, match="outside"):
        uncertainty.sd_at_marks_auc(sd, [("a", 9, 0)], unmarked)


def test_hallucinated_cases_need_half_the_samples():
    def o(case, outcome, sample):
        return {"case": case, "outcome": outcome, "sample": sample}

    outcomes = [o("x", "invented", 0), o("x", "faithful", 1), o("y", "faithful", 0), o("y", "faithful", 1)]
    outcomes += [o("z", "omitted", 0), o("z", "omitted", 1), o("z", "faithful", 2)]
    assert scoring.hallucinated_cases(outcomes) == {"x": "invented", "z": "omitted"}
