"""Pareto front of quality against cost (pure numpy, no Django).

A run is on the front when no other run is at least as fast and at least as good, and
strictly better in one of the two. Used by the leaderboard's quality-vs-latency plot.
"""

import numpy as np


def pareto_front(cost, quality, *, higher_is_better=True):
    """cost: (n,) e.g. latency in ms (lower is better); quality: (n,) metric values, +inf allowed.

    Returns (n,) bools: True for runs no other run dominates. Runs with a NaN cost or
    quality are never on the front and never dominate.
    """
    cost = np.asarray(cost, dtype=float)
    quality = np.asarray(quality, dtype=float)
    if cost.shape != quality.shape or cost.ndim != 1:
        raise ValueError(f"cost and quality must be 1-D of one length, got {cost.shape} and {quality.shape}")
    good = quality if higher_is_better else -quality
    valid = ~(np.isnan(cost) | np.isnan(good))
    # dominated[i] when some j has cost_j <= cost_i, good_j >= good_i, and one of them strictly.
    no_worse = (cost[None, :] <= cost[:, None]) & (good[None, :] >= good[:, None])
    strictly = (cost[None, :] < cost[:, None]) | (good[None, :] > good[:, None])
    dominators = no_worse & strictly & valid[None, :]
    return valid & ~dominators.any(axis=1)
