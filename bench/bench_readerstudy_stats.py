"""Reader-study statistics speed and agreement: readerstudy.stats against the straightforward peer code.

For each statistic prints our time, the peer's time, the ratio (peer / ours) and the largest absolute difference
between the results, all measured in this run (ours: best of a few repeats; the peer: one run), quietly and then
under 2 busy cores (bench/load.py), with the same BLAS thread count for both (``--threads``, default 1). The run
fails when a result differs beyond the tolerance printed on its agreement line.

- Obuchowski–Rockette jackknife on the Van Dyke et al. (1993) study (tests/data/vandyke_roc.csv: 2 modalities ×
  5 readers × 114 cases), the study the tests check against the published MRMC outputs; its speed ("milliseconds")
  was once asserted in tests/readerstudy/test_stats.py and is measured here instead.

- Obuchowski–Rockette jackknife (3 models × 10 readers × 400 cases): the peer recomputes every leave-one-case-out
  AUC with scikit-learn's ``roc_auc_score`` and averages the covariance blocks with loops.
- Bradley–Terry (10 items, 20 000 comparisons): ``choix.mm_pairwise`` with the same alpha and tolerance.
- Mean opinion score, two-way bootstrap (3 models × 12 readers × 200 cases, B = 2000): the peer builds every
  resampled reader × case table with ``np.ix_`` and averages it, with the same draws.

Data: seeded synthetic studies with reader and case effects.

    .venv/bin/python bench/bench_readerstudy_stats.py [--quick] [--busy 2] [--threads 1]
"""

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import choix  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402
from readerstudy.stats import agreement, mrmc, pairwise  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    return add_arguments(parser).parse_args()


def vandyke():
    """The Van Dyke records (reader, modality, case, truth, rating), and as a modality × reader × case table."""
    with (ROOT / "tests" / "data" / "vandyke_roc.csv").open() as fh:
        records = [
            (int(r["reader"]), int(r["treatment"]), int(r["case"]), int(r["truth"]), float(r["rating"]))
            for r in csv.DictReader(fh)
        ]
    readers, modalities, cases = (sorted({row[i] for row in records}) for i in range(3))
    ratings = np.zeros((len(modalities), len(readers), len(cases)))
    truth = np.zeros(len(cases), dtype=int)
    for reader, modality, case, t, rating in records:
        ratings[modalities.index(modality), readers.index(reader), cases.index(case)] = rating
        truth[cases.index(case)] = t
    return records, ratings, truth


def or_item(name, records, ratings, truth, repeats):
    t_ours, ours = best_of(lambda: mrmc.obuchowski_rockette(records), repeats)
    t_peer, peer = best_of(lambda: peer_or_covariances(ratings, truth))
    return Measure(name, t_ours, t_peer, [ours.var_error, ours.cov1, ours.cov2, ours.cov3],
                   [peer["var"], peer["cov1"], peer["cov2"], peer["cov3"]], atol=1e-12, rtol=1e-9,
                   peer_name="loop of sklearn roc_auc_score")  # fmt: skip


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
    set_threads(args.threads)
    rng = np.random.default_rng(0)
    repeats = 2 if args.quick else 5
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    studies = [("OR jackknife Van Dyke 2x5x114", *vandyke())]
    t, r, k = (3, 6, 120) if args.quick else (3, 10, 400)
    studies.append((f"OR jackknife {t}x{r}x{k}", *or_study(t, r, k, rng)))

    n_items, n_cmp = (8, 4000) if args.quick else (10, 20000)
    skill = np.linspace(1, -1, n_items)
    pairs = rng.integers(0, n_items, size=(n_cmp, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    first_wins = rng.random(len(pairs)) < 1 / (1 + np.exp(-(skill[pairs[:, 0]] - skill[pairs[:, 1]])))
    comparisons = [(a, b) if w else (b, a) for (a, b), w in zip(pairs.tolist(), first_wins, strict=True)]

    g, r, c, n_boot = (3, 6, 60, 500) if args.quick else (3, 12, 200, 2000)
    scores = np.clip(
        np.round(3 + rng.normal(0, 0.5, (1, r, 1)) + rng.normal(0, 0.8, (1, 1, c)) + rng.normal(0, 0.5, (g, r, c))),
        1,
        5,
    )
    mos_records = [(j, m, case, float(scores[m, j, case])) for m, j, case in np.ndindex(g, r, c)]
    draws = np.random.default_rng(1)
    rd, cd = draws.integers(0, r, size=(n_boot, r)), draws.integers(0, c, size=(n_boot, c))

    def peer_mos():
        return [
            np.percentile([scores[m][np.ix_(a, b)].mean() for a, b in zip(rd, cd, strict=True)], [2.5, 97.5])
            for m in range(g)
        ]

    def measure():
        items = [or_item(name, *study, repeats) for name, *study in studies]
        t_ours, ours = best_of(lambda: pairwise.bradley_terry(comparisons, n_items, alpha=0.01, tol=1e-10), repeats)
        t_peer, peer = best_of(lambda: choix.mm_pairwise(n_items, comparisons, alpha=0.01, tol=1e-10, max_iter=100_000))
        # Both iterate to a 1e-10 tolerance on the strengths, from different schemes.
        items.append(Measure(f"Bradley-Terry {n_items} items, {len(comparisons)} answers", t_ours, t_peer,
                             ours.strengths, peer, atol=1e-6, rtol=0.0, peer_name="choix.mm_pairwise"))  # fmt: skip
        t_ours, ours = best_of(lambda: agreement.mean_opinion_score(mos_records, n_boot=n_boot, seed=1), repeats)
        t_peer, peer = best_of(peer_mos)
        items.append(Measure(f"MOS two-way bootstrap {g}x{r}x{c} B={n_boot}", t_ours, t_peer,
                             [ours[m].ci for m in range(g)], peer, atol=1e-12, rtol=0.0,
                             peer_name="np.ix_ resample loop"))  # fmt: skip
        return items

    run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main(parse_args())
