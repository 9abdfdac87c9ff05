"""Reader-study statistics speed and agreement: readerstudy.stats against the straightforward peer code.

For each statistic prints our time, the peer's time, the ratio (peer / ours) and the largest absolute difference
between the results, all measured in this run (ours: best of a few repeats; the peer: one run).

- Obuchowski–Rockette jackknife (3 models × 10 readers × 400 cases): the peer recomputes every leave-one-case-out
  AUC with scikit-learn's ``roc_auc_score`` and averages the covariance blocks with loops.
- Bradley–Terry (10 items, 20 000 comparisons): ``choix.mm_pairwise`` with the same alpha and tolerance.
- Mean opinion score, two-way bootstrap (3 models × 12 readers × 200 cases, B = 2000): the peer builds every
  resampled reader × case table with ``np.ix_`` and averages it, with the same draws.

Data: seeded synthetic studies with reader and case effects.

    .venv/bin/python bench/bench_readerstudy_stats.py [--quick]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import choix  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from readerstudy.stats import agreement, mrmc, pairwise  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller studies, fewer repeats")
    return parser.parse_args()


def timed(fn, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def report(case, peer, t_ours, t_peer, diff):
    print(f"{case:<44} {peer:<34} ours {t_ours:8.4f} s  peer {t_peer:8.3f} s  x{t_peer / t_ours:7.1f}   {diff}")


def or_study(t, r, k, rng):
    truth = (np.arange(k) % 3 == 0).astype(int)
    case_effect = rng.normal(0, 1, k)
    ratings = truth * (1.0 + 0.3 * np.arange(t))[:, None, None] + case_effect + rng.normal(0, 1, (t, r, k))
    ratings = np.round(ratings * 2) / 2  # half-point steps: ties
    records = [(j, i, c, int(truth[c]), float(ratings[i, j, c])) for i, j, c in np.ndindex(t, r, k)]
    return records, ratings, truth


def peer_or_covariances(ratings, truth):
    t, r, k = ratings.shape

    def aucs(keep):
        return np.array([roc_auc_score(truth[keep], ratings[i, j, keep]) for i, j in np.ndindex(t, r)])

    loo = np.array([aucs(np.arange(k) != c) for c in range(k)])
    dev = loo - loo.mean(axis=0)
    cov = (k - 1) / k * dev.T @ dev
    groups = {"var": [], "cov1": [], "cov2": [], "cov3": []}
    cells = list(np.ndindex(t, r))
    for a, (i, j) in enumerate(cells):
        for b, (i2, j2) in enumerate(cells):
            key = {(True, True): "var", (False, True): "cov1", (True, False): "cov2", (False, False): "cov3"}
            groups[key[(i == i2, j == j2)]].append(cov[a, b])
    return {name: float(np.mean(v)) for name, v in groups.items()}


def main(args):
    rng = np.random.default_rng(0)
    repeats = 2 if args.quick else 5
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs")

    t, r, k = (3, 6, 120) if args.quick else (3, 10, 400)
    records, ratings, truth = or_study(t, r, k, rng)
    t_ours, ours = timed(lambda: mrmc.obuchowski_rockette(records), repeats)
    start = time.perf_counter()
    peer = peer_or_covariances(ratings, truth)
    t_peer = time.perf_counter() - start
    diff = max(abs(ours.var_error - peer["var"]), abs(ours.cov1 - peer["cov1"]), abs(ours.cov2 - peer["cov2"]))
    diff = max(diff, abs(ours.cov3 - peer["cov3"]))
    report(f"OR jackknife {t}x{r}x{k}", "loop of sklearn roc_auc_score", t_ours, t_peer, f"max|diff| cov {diff:.1e}")

    n_items, n_cmp = (8, 4000) if args.quick else (10, 20000)
    skill = np.linspace(1, -1, n_items)
    pairs = rng.integers(0, n_items, size=(n_cmp, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    first_wins = rng.random(len(pairs)) < 1 / (1 + np.exp(-(skill[pairs[:, 0]] - skill[pairs[:, 1]])))
    comparisons = [(a, b) if w else (b, a) for (a, b), w in zip(pairs.tolist(), first_wins, strict=True)]
    t_ours, ours = timed(lambda: pairwise.bradley_terry(comparisons, n_items, alpha=0.01, tol=1e-10), repeats)
    start = time.perf_counter()
    peer = choix.mm_pairwise(n_items, comparisons, alpha=0.01, tol=1e-10, max_iter=100_000)
    t_peer = time.perf_counter() - start
    diff = np.abs(ours.strengths - peer).max()
    report(
        f"Bradley-Terry {n_items} items, {len(comparisons)} answers", "choix.mm_pairwise", t_ours, t_peer, f"{diff:.1e}"
    )

    g, r, c, n_boot = (3, 6, 60, 500) if args.quick else (3, 12, 200, 2000)
    scores = np.clip(
        np.round(3 + rng.normal(0, 0.5, (1, r, 1)) + rng.normal(0, 0.8, (1, 1, c)) + rng.normal(0, 0.5, (g, r, c))),
        1,
        5,
    )
    mos_records = [(j, m, case, float(scores[m, j, case])) for m, j, case in np.ndindex(g, r, c)]
    t_ours, ours = timed(lambda: agreement.mean_opinion_score(mos_records, n_boot=n_boot, seed=1), repeats)
    draws = np.random.default_rng(1)
    rd, cd = draws.integers(0, r, size=(n_boot, r)), draws.integers(0, c, size=(n_boot, c))
    start = time.perf_counter()
    peer = [
        np.percentile([scores[m][np.ix_(a, b)].mean() for a, b in zip(rd, cd, strict=True)], [2.5, 97.5])
        for m in range(g)
    ]
    t_peer = time.perf_counter() - start
    diff = max(np.abs(np.array(ours[m].ci) - peer[m]).max() for m in range(g))
    report(f"MOS two-way bootstrap {g}x{r}x{c} B={n_boot}", "np.ix_ resample loop", t_ours, t_peer, f"CI {diff:.1e}")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on these cores slow every figure)")


if __name__ == "__main__":
    main(parse_args())
