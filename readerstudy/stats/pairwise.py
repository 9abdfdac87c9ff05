"""Pairwise preference studies: Bradley–Terry strengths fitted by Hunter's MM algorithm.

Reference: Hunter DR (2004), "MM algorithms for generalized Bradley–Terry models", Ann Stat 32:384-406.
Model: P(i preferred to j) = π_i / (π_i + π_j). Strengths are reported on the log scale, θ_i = log π_i centred to
mean 0, so exp(θ_i − θ_j) is the odds that i is preferred to j, and expit(θ_i) is the probability of being preferred
to an item of average (geometric-mean) strength.

"No preference" answers count as half a win for each side. Dropping them would throw away the evidence that the
two items are close and push strengths apart when preferences are weak; half wins keep the MM update and the
likelihood's information matrix unchanged in form (a tie adds 1 to the comparison count and ½ to each win count).

Regularisation ``alpha`` is that of ``choix.mm_pairwise(alpha=...)``: each MM step is π_i ← (W_i + α) / (D_i + α)
(W_i: wins, D_i = Σ_j n_ij / (π_i + π_j)), the MAP estimate under independent Gamma(1 + α, rate α) priors on the π_i
(mode 1, the average strength). A small α keeps an item that never loses finite. Checked against choix and against a
statsmodels logistic-regression fit in tests/test_readerstudy_stats.py; only numpy and scipy are used here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse, special, stats

from .agreement import _draw_counts, _index

__all__ = ["BradleyTerryBootstrap", "BradleyTerryResult", "bradley_terry", "bradley_terry_bootstrap", "win_matrix"]


def win_matrix(comparisons: Iterable[tuple[int, int]], n_items: int, ties: Iterable[tuple[int, int]] = ()):
    """(n_items, n_items) matrix whose [i, j] entry is the number of times i was preferred to j (ties add ½ each way).

    comparisons: (winner, loser) item indices in [0, n_items); ties: (i, j) pairs answered "no preference".
    """
    wins = np.zeros((n_items, n_items))
    for pairs, weight in ((list(comparisons), 1.0), (list(ties), 0.5)):
        if not pairs:
            continue
        idx = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
        if idx.min() < 0 or idx.max() >= n_items:
            raise ValueError(f"item indices must lie in [0, {n_items})")
        if np.any(idx[:, 0] == idx[:, 1]):
            raise ValueError("an item cannot be compared with itself")
        np.add.at(wins, (idx[:, 0], idx[:, 1]), weight)
        if weight == 0.5:
            np.add.at(wins, (idx[:, 1], idx[:, 0]), weight)
    return wins


def _mm(wins: np.ndarray, alpha: float, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Hunter's MM on a batch of win matrices (B, n, n) → (centred log strengths (B, n), iterations used)."""
    n_cmp = wins + np.swapaxes(wins, -1, -2)
    w = wins.sum(axis=-1)
    pi = np.ones(w.shape)
    iterations = 0
    while True:
        iterations += 1
        denom = (n_cmp / (pi[..., :, None] + pi[..., None, :])).sum(axis=-1)
        new = (w + alpha) / (denom + alpha)
        new /= new.mean(axis=-1, keepdims=True)  # strengths are defined up to scale: keep mean 1, as choix does
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.nanmax(np.abs(np.log(new) - np.log(pi)))
        pi = new
        if step < tol:
            break
        if iterations == max_iter:
            raise RuntimeError(f"Bradley–Terry MM did not converge in {max_iter} iterations")
    theta = np.log(pi)
    return theta - theta.mean(axis=-1, keepdims=True), iterations


def _check_identifiable(wins: np.ndarray, alpha: float) -> None:
    # Without regularisation the MLE exists only if every item can reach every other through "beat" edges (Hunter's
    # assumption 1); otherwise some strength runs off to ±∞.
    if alpha > 0:
        return
    n_comp, _ = sparse.csgraph.connected_components(sparse.csr_matrix(wins > 0), connection="strong")
    if n_comp > 1:
        raise ValueError(
            "the strengths are not identifiable without regularisation: some item never loses (or never wins) against "
            "the rest; use alpha > 0"
        )


@dataclass(frozen=True)
class BradleyTerryResult:
    """Bradley–Terry fit. Arrays are (n_items,) in item-index order.

    strengths: centred log strengths θ (mean 0). se, ci_low, ci_high: Wald SE and CI from the observed information
    (the Hessian of the penalised log-likelihood) under the sum-to-zero constraint: covariance = P H⁺ P with P the
    centring projector. p_beat_average (and its CI): expit(θ), the probability of being preferred to an average item.
    """

    strengths: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    covariance: np.ndarray
    p_beat_average: np.ndarray
    p_beat_average_ci: tuple[np.ndarray, np.ndarray]
    n_comparisons: float
    alpha: float
    iterations: int


def _information(theta: np.ndarray, wins: np.ndarray, alpha: float) -> np.ndarray:
    """Negative Hessian of the MM objective Σ n_ij log p_ij + α Σ (θ_i − e^θ_i), θ at the fit."""
    n_cmp = wins + wins.T
    pi = np.exp(theta)
    pi = pi / pi.mean()
    p = pi[:, None] / (pi[:, None] + pi[None, :])
    off = n_cmp * p * p.T
    info = -off
    np.fill_diagonal(info, off.sum(axis=1) - np.diag(off) + alpha * pi)
    return info


def bradley_terry(
    comparisons: Iterable[tuple[int, int]],
    n_items: int,
    *,
    ties: Iterable[tuple[int, int]] = (),
    alpha: float = 0.01,
    conf_level: float = 0.95,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> BradleyTerryResult:
    """Fit Bradley–Terry strengths to pairwise preferences by Hunter's (2004) MM algorithm.

    comparisons: (winner, loser) item indices in [0, n_items); ties: (i, j) pairs with no preference (½ win each).
    alpha: regularisation as in choix.mm_pairwise (0 = maximum likelihood, which needs every item to both win and
    lose within a strongly connected comparison graph). Converges when no log strength moves by more than tol.
    """
    wins = win_matrix(comparisons, n_items, ties)
    if alpha < 0:
        raise ValueError("alpha must be ≥ 0")
    if wins.sum() == 0:
        raise ValueError("no comparisons")
    _check_identifiable(wins, alpha)
    theta, iterations = _mm(wins[None], alpha, tol, max_iter)
    theta = theta[0]
    centre = np.eye(n_items) - 1.0 / n_items
    cov = centre @ np.linalg.pinv(_information(theta, wins, alpha)) @ centre
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    lo, hi = theta - z * se, theta + z * se
    return BradleyTerryResult(
        strengths=theta,
        se=se,
        ci_low=lo,
        ci_high=hi,
        covariance=cov,
        p_beat_average=special.expit(theta),
        p_beat_average_ci=(special.expit(lo), special.expit(hi)),
        n_comparisons=float(wins.sum()),
        alpha=alpha,
        iterations=iterations,
    )


@dataclass(frozen=True)
class BradleyTerryBootstrap:
    """Bradley–Terry strengths (full data) with percentile CIs from a bootstrap over readers and cases.

    strengths, ci_low, ci_high: (n_items,) centred log strengths; draws: (n_boot, n_items) resampled strengths.
    """

    strengths: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    draws: np.ndarray
    n_boot: int
    seed: int


def bradley_terry_bootstrap(
    records: Iterable[tuple],
    n_items: int,
    *,
    alpha: float = 0.01,
    n_boot: int = 1000,
    seed: int = 0,
    conf_level: float = 0.95,
    tol: float = 1e-8,
    max_iter: int = 100_000,
) -> BradleyTerryBootstrap:
    """Bradley–Terry strengths with CIs from resampling readers and cases independently (seeded).

    records: (reader, case, a, b, score_a) with a, b item indices and score_a 1 (a preferred), 0 (b preferred) or
    0.5 (no preference). A reader or case drawn m times counts m times. The Fisher-information CI of bradley_terry
    treats every answer as independent; this one also covers reader and case variability. alpha must be > 0
    because a resample can leave an item that never loses.
    """
    if alpha <= 0:
        raise ValueError("the bootstrap needs alpha > 0: a resample can leave an item that never loses")
    rows = [tuple(rec) for rec in records]
    if not rows:
        raise ValueError("no records")
    readers_col, cases_col, a_col, b_col, score_col = zip(*rows, strict=True)
    _, ri = _index(readers_col)
    _, ci = _index(cases_col)
    a, b = np.asarray(a_col, dtype=np.intp), np.asarray(b_col, dtype=np.intp)
    score = np.asarray(score_col, dtype=float)
    if a.min() < 0 or b.min() < 0 or max(a.max(), b.max()) >= n_items or np.any(a == b):
        raise ValueError(f"items must be distinct indices in [0, {n_items})")
    if not np.all(np.isin(score, (0.0, 0.5, 1.0))):
        raise ValueError("score_a must be 1, 0 or 0.5")

    rng = np.random.default_rng(seed)
    w_r = _draw_counts(rng.integers(0, ri.max() + 1, size=(n_boot, ri.max() + 1)), ri.max() + 1)
    w_c = _draw_counts(rng.integers(0, ci.max() + 1, size=(n_boot, ci.max() + 1)), ci.max() + 1)
    weight = np.vstack([np.ones(len(rows)), w_r[:, ri] * w_c[:, ci]])  # row 0: the full data
    # (B + 1, n, n) win matrices: each answer adds score to (a, b) and 1 − score to (b, a).
    n_rec, cells = len(rows), n_items * n_items
    to_ab = sparse.csr_matrix((np.ones(n_rec), (np.arange(n_rec), a * n_items + b)), shape=(n_rec, cells))
    to_ba = sparse.csr_matrix((np.ones(n_rec), (np.arange(n_rec), b * n_items + a)), shape=(n_rec, cells))
    wins = (to_ab.T @ (weight * score).T + to_ba.T @ (weight * (1 - score)).T).T
    theta, _ = _mm(wins.reshape(-1, n_items, n_items), alpha, tol, max_iter)
    tail = (1 - conf_level) / 2 * 100
    lo, hi = np.percentile(theta[1:], [tail, 100 - tail], axis=0)
    return BradleyTerryBootstrap(theta[0], lo, hi, theta[1:], n_boot, seed)
