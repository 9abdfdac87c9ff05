"""Feature-tier metrics against the reference libraries, timed in the same run.

- Fréchet distance from (μ, Σ): ours vs pytorch-fid's ``calculate_frechet_distance``
  (``scipy.linalg.sqrtm``) at d = 2048 and d = 512: seconds, speed ratio, relative difference.
- KID (100 subsets of 1000) and precision/recall (k = 3) vs torch-fidelity on 5000 × 2048.
- ``FeatureStats`` streaming update of 50,000 × 2048 features in batches against the naive peer
  that holds every feature in memory and calls ``np.mean`` / ``np.cov`` once (no peer library
  streams covariances): seconds, ratio and the difference of the covariances.

Each item is measured quietly and then under 2 busy cores (bench/load.py), ours and the peer
with the same torch/BLAS thread count (``--threads``, default 1); the run fails when a result
disagrees with the peer beyond the tolerance printed on its agreement line.

Features are Inception-like: a low-rank-plus-noise Gaussian, ReLU'd (sparse, non-negative,
correlated), the "real" and "generated" sets differing slightly in mean and loadings.

    .venv/bin/python bench/bench_frechet.py [--quick] [--busy 2] [--threads 1]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402
from evaluation.metrics import feature  # noqa: E402
from tests.support.reference_libs import pytorch_fid_score, torch_fidelity  # noqa: E402


def inception_like(rng, n, d, *, rank=64, shift=0.0, loadings=None):
    """n × d ReLU'd low-rank-plus-noise features, float32 like a network's output."""
    if loadings is None:
        loadings = rng.standard_normal((rank, d)) / np.sqrt(rank)
    z = rng.standard_normal((n, loadings.shape[0]))
    x = z @ loadings * 1.5 + 0.5 * rng.standard_normal((n, d)) + 0.3 + shift
    return np.maximum(x, 0).astype(np.float32)


def feature_pair(rng, n, d):
    loadings = rng.standard_normal((64, d)) / 8
    x = inception_like(rng, n, d, loadings=loadings)
    y = inception_like(rng, n, d, shift=0.05, loadings=loadings + 0.05 * rng.standard_normal(loadings.shape))
    return x, y


def bench_frechet(x, y, repeats, ref_repeats):
    fid = pytorch_fid_score()
    stats = [feature.FeatureStats.from_features(f) for f in (x, y)]
    mu1, s1, mu2, s2 = stats[0].mean(), stats[0].covariance(), stats[1].mean(), stats[1].covariance()
    ours_s, ours = best_of(lambda: feature.frechet_distance(mu1, s1, mu2, s2), repeats)
    ref_s, ref = best_of(lambda: float(fid.calculate_frechet_distance(mu1, s1, mu2, s2)), ref_repeats)
    # scipy's sqrtm (the peer) loses digits at d = 2048 on near-singular covariances; 1e-6 relative is
    # far below what a reported FID (2 decimals) can show.
    return Measure(f"Fréchet d={x.shape[1]} (n={len(x)})", ours_s, ref_s, ours, ref, rtol=1e-6,
                   peer_name="pytorch-fid")  # fmt: skip


def bench_kid_prc(fake, real, kid_subsets, kid_subset_size):
    tf = torch_fidelity()  # noqa: F841  (imports the package with its torchvision stand-in)
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    n, d = real.shape
    kid_kwargs = dict(
        kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None
    )
    kid_kwargs.update(kid_kernel_poly_coef0=1, rng_seed=0, verbose=False)
    ours_s, (ours_mean, _ours_std) = best_of(
        lambda: feature.kid(fake, real, subsets=kid_subsets, subset_size=kid_subset_size, seed=0), 1
    )
    f1, f2 = torch.from_numpy(fake).double(), torch.from_numpy(real).double()
    ref_s, ref = best_of(lambda: kid_features_to_metric(f1, f2, **kid_kwargs), 1)
    kid = Measure(f"KID {n}x{d}, {kid_subsets}x{kid_subset_size}", ours_s, ref_s, ours_mean,
                  ref["kernel_inception_distance_mean"], rtol=1e-6, peer_name="torch-fidelity (float64)")  # fmt: skip

    ours_s, ours = best_of(lambda: feature.precision_recall(fake, real, k=3), 1)
    prc_kwargs = dict(prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    ref_s, ref = best_of(lambda: prc_features_to_metric(f1, f2, **prc_kwargs), 1)
    # Fractions of n samples: one sample decided differently at a distance tie moves them by 1/n.
    prc = Measure(f"precision/recall {n}x{d} k=3", ours_s, ref_s, list(ours), [ref["precision"], ref["recall"]],
                  atol=1.0 / n, rtol=0.0, peer_name="torch-fidelity (float64)")  # fmt: skip
    return [kid, prc]


def bench_streaming(pool, n):
    batch, d = pool[0].shape

    def ours():
        stats = feature.FeatureStats(d)
        for i in range(n // batch):
            stats.update(pool[i % len(pool)])
        return stats.covariance()

    def naive():
        held = np.concatenate([pool[i % len(pool)] for i in range(n // batch)]).astype(np.float64)
        return np.cov(held, rowvar=False)

    ours_s, ours_cov = best_of(ours, 1)
    peer_s, peer_cov = best_of(naive, 1)
    return Measure(f"FeatureStats.update {n} x {d} (batches of {batch})", ours_s, peer_s, ours_cov, peer_cov,
                   atol=1e-9, rtol=1e-9, peer_name="np.cov of all rows in memory")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = add_arguments(parser).parse_args()
    set_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    if args.quick:
        sizes = [(512, 2000, 3, 1), (1024, 2000, 2, 1)]
        kid_n, kid_subsets, stream_n = 1000, 10, 10_000
    else:
        sizes = [(512, 10_000, 5, 3), (2048, 10_000, 3, 2)]
        kid_n, kid_subsets, stream_n = 5000, 100, 50_000
    pairs = [(feature_pair(rng, n, d), repeats, ref_repeats) for d, n, repeats, ref_repeats in sizes]
    fake, real = feature_pair(rng, kid_n, 2048)
    pool = [inception_like(rng, 1000, 2048) for _ in range(4)]  # cycled, so generation is not timed

    def measure():
        items = [bench_frechet(x, y, repeats, ref_repeats) for (x, y), repeats, ref_repeats in pairs]
        items += bench_kid_prc(fake, real, kid_subsets, 1000)
        items.append(bench_streaming(pool, stream_n))
        return items

    run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main()
