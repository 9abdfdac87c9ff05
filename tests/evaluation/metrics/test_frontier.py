"""The Pareto front of quality against latency, against a brute-force definition."""

import numpy as np
import pytest

from evaluation.frontier import pareto_front


def _dominated(i, cost, good):
    return any(
        cost[j] <= cost[i] and good[j] >= good[i] and (cost[j] < cost[i] or good[j] > good[i])
        for j in range(len(cost))
        if j != i and not (np.isnan(cost[j]) or np.isnan(good[j]))
    )


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_front_matches_the_pairwise_definition_on_random_points_with_ties(higher_is_better):
    rng = np.random.default_rng(7)
    cost = rng.integers(1, 8, 60).astype(float)
    quality = rng.integers(0, 8, 60).astype(float)
    cost[3] = np.nan
    quality[5] = np.inf
    good = quality if higher_is_better else -quality
    expected = [not np.isnan(cost[i]) and not np.isnan(good[i]) and not _dominated(i, cost, good) for i in range(60)]
    assert pareto_front(cost, quality, higher_is_better=higher_is_better).tolist() == expected


def test_fastest_and_best_runs_are_on_the_front_and_a_slower_worse_one_is_not():
    front = pareto_front([1.0, 10.0, 20.0, 5.0], [0.5, 0.9, 0.8, 0.5], higher_is_better=True)
    assert front.tolist() == [True, True, False, False]


def test_identical_points_are_both_on_the_front():
    assert pareto_front([2.0, 2.0], [0.7, 0.7]).tolist() == [True, True]


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="one length"):
        pareto_front([1.0, 2.0], [1.0])
