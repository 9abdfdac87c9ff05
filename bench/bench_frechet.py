"""Feature-tier metrics against the reference libraries, timed in the same run.

- Fréchet distance from (μ, Σ): ours vs pytorch-fid's ``calculate_frechet_distance``
  (``scipy.linalg.sqrtm``) at d = 2048 and d = 512: seconds, speed ratio, relative difference.
- KID (100 subsets of 1000) and precision/recall (k = 3) vs torch-fidelity on 5000 × 2048.
- ``FeatureStats`` streaming update of 50,000 × 2048 features in batches: rows per second.

Features are Inception-like: a low-rank-plus-noise Gaussian, ReLU'd (sparse, non-negative,
correlated), the "real" and "generated" sets differing slightly in mean and loadings.

    .venv/bin/python bench/bench_frechet.py [--quick]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from evaluation.metrics import feature  # noqa: E402
from tests.support.reference_libs import pytorch_fid_score, torch_fidelity  # noqa: E402


def inception_like(rng, n, d, *, rank=64, shift=0.0, loadings=None):
    """n × d ReLU'd low-rank-plus-noise features, float32 like a network's output."""
    if loadings is None:
        loadings = rng.standard_normal((rank, d)) / np.sqrt(rank)
    z = rng.standard_normal((n, loadings.shape[0]))
    x = z @ loadings * 1.5 + 0.5 * rng.standard_normal((n, d)) + 0.3 + shift
    return np.maximum(x, 0).astype(np.float32)


def timed(fn, repeats):
    """(median seconds, last result) over ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def bench_frechet(rng, d, n, repeats, ref_repeats):
    fid = pytorch_fid_score()
    loadings = rng.standard_normal((64, d)) / 8
    x = inception_like(rng, n, d, loadings=loadings)
    y = inception_like(rng, n, d, shift=0.05, loadings=loadings + 0.05 * rng.standard_normal(loadings.shape))
    stats = [feature.FeatureStats.from_features(f) for f in (x, y)]
    mu1, s1, mu2, s2 = stats[0].mean(), stats[0].covariance(), stats[1].mean(), stats[1].covariance()
    ours_s, ours = timed(lambda: feature.frechet_distance(mu1, s1, mu2, s2), repeats)
    ref_s, ref = timed(lambda: float(fid.calculate_frechet_distance(mu1, s1, mu2, s2)), ref_repeats)
    print(
        f"Fréchet d={d:5d} (n={n}): ours {ours_s:7.3f} s   pytorch-fid {ref_s:7.3f} s   "
        f"ratio {ref_s / ours_s:6.1f}x   value {ours:.10g}   rel diff {rel(ours, ref):.1e}"
    )


def bench_kid_prc(rng, n, d, kid_subsets, kid_subset_size):
    tf = torch_fidelity()  # noqa: F841  (imports the package with its torchvision stand-in)
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    loadings = rng.standard_normal((64, d)) / 8
    real = inception_like(rng, n, d, loadings=loadings)
    fake = inception_like(rng, n, d, shift=0.05, loadings=loadings + 0.05 * rng.standard_normal(loadings.shape))
    kid_kwargs = dict(
        kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None
    )
    kid_kwargs.update(kid_kernel_poly_coef0=1, rng_seed=0, verbose=False)
    ours_s, (ours_mean, ours_std) = timed(
        lambda: feature.kid(fake, real, subsets=kid_subsets, subset_size=kid_subset_size, seed=0), 1
    )
    for dtype in (torch.float32, torch.float64):
        f1, f2 = torch.from_numpy(fake).to(dtype), torch.from_numpy(real).to(dtype)
        ref_s, ref = timed(lambda f1=f1, f2=f2: kid_features_to_metric(f1, f2, **kid_kwargs), 1)
        ref_mean = ref["kernel_inception_distance_mean"]
        print(
            f"KID {n}x{d}, {kid_subsets}x{kid_subset_size}: ours {ours_s:6.2f} s   "
            f"torch-fidelity ({str(dtype)[6:]}) {ref_s:6.2f} s   ratio {ref_s / ours_s:5.2f}x   "
            f"mean {ours_mean:.6g} ± {ours_std:.3g}   rel diff {rel(ours_mean, ref_mean):.1e}"
        )

    ours_s, ours = timed(lambda: feature.precision_recall(fake, real, k=3), 1)
    for dtype in (torch.float32, torch.float64):
        f1, f2 = torch.from_numpy(fake).to(dtype), torch.from_numpy(real).to(dtype)
        prc_kwargs = dict(prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
        ref_s, ref = timed(lambda f1=f1, f2=f2, kw=prc_kwargs: prc_features_to_metric(f1, f2, **kw), 1)
        ref_pr = (ref["precision"], ref["recall"])
        print(
            f"Precision/recall {n}x{d}: ours {ours_s:6.2f} s   torch-fidelity ({str(dtype)[6:]}) {ref_s:6.2f} s   "
            f"ratio {ref_s / ours_s:5.2f}x   ours P={ours[0]:.4f} R={ours[1]:.4f}   "
            f"abs diff P {abs(ours[0] - ref_pr[0]):.1e} R {abs(ours[1] - ref_pr[1]):.1e}"
        )


def bench_streaming(rng, n, d, batch):
    pool = [inception_like(rng, batch, d) for _ in range(4)]  # cycled, so generation is not timed
    stats = feature.FeatureStats(d)
    start = time.perf_counter()
    for i in range(n // batch):
        stats.update(pool[i % len(pool)])
    seconds = time.perf_counter() - start
    held = (stats.sum.nbytes + stats.sum_outer.nbytes + stats.shift.nbytes) / 2**20
    print(
        f"FeatureStats.update {stats.n} x {d} in batches of {batch}: {seconds:.2f} s, "
        f"{stats.n / seconds:,.0f} rows/s; holds {held:.0f} MiB (the features would be {n * d * 4 / 2**20:.0f} MiB)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sets, fewer repeats")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    if args.quick:
        bench_frechet(rng, 512, 2000, 3, 1)
        bench_frechet(rng, 2048, 4000, 2, 1)
        bench_kid_prc(rng, 2000, 2048, 20, 1000)
        bench_streaming(rng, 10_000, 2048, 1000)
    else:
        bench_frechet(rng, 512, 10_000, 5, 3)
        bench_frechet(rng, 2048, 10_000, 3, 2)
        bench_kid_prc(rng, 5000, 2048, 100, 1000)
        bench_streaming(rng, 50_000, 2048, 1000)


if __name__ == "__main__":
    main()
