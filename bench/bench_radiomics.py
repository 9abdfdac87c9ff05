"""Benchmark: radiomics features per 128x128 slice, ours (evaluation.metrics.radiomics) vs mirp 2.7.0.

Both compute the same features (IBSI statistics, intensity histogram, GLCM and GLRLM on the original
image and on LoG sigma 2, 3, 4, 5 mm) with the same settings, in the same run on the same machine.
Ours is batched over many slices; mirp runs one slice at a time. The script also reports the
largest relative difference between the two over every feature of the slices mirp computed.
Both are measured quietly and then under 2 busy cores (bench/load.py), each with the same
BLAS/torch thread count (``--threads``, default 1); the run fails when a feature differs by more
than 1e-9 relative (1e-9 absolute where mirp's value is below 1e-9).

Usage: .venv/bin/python bench/bench_radiomics.py [--quick] [--slices N] [--mirp-slices M] [--busy 2] [--threads 1]
"""

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402
from evaluation.metrics.radiomics import feature_names, radiomics_features  # noqa: E402
from tests.evaluation.metrics.test_radiomics import _camera, _ct, mirp_column, mirp_reference  # noqa: E402


def make_slices(n: int) -> tuple[np.ndarray, tuple[float, float]]:
    """n distinct 128x128 slices from pydicom's CT and skimage's camera (shifted, flipped, noisy)."""
    ct, spacing = _ct()
    camera, _ = _camera()
    rng = np.random.default_rng(0)
    slices = []
    for i in range(n):
        base = ct if i % 2 == 0 else camera * 8.0 - 1000.0
        base = np.roll(base, (int(rng.integers(128)), int(rng.integers(128))), axis=(0, 1))
        if i % 4 >= 2:
            base = base[::-1].T
        slices.append(np.round(base + rng.normal(0.0, 5.0, size=base.shape)))
    return np.stack(slices), spacing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--slices", type=int, default=None, help="slices in our batch (default 64; quick 16)")
    parser.add_argument("--mirp-slices", type=int, default=None, help="slices for mirp (default 2; quick 1)")
    args = parser.parse_args()
    set_threads(args.threads)
    n_ours = args.slices or (16 if args.quick else 64)
    n_mirp = args.mirp_slices or (1 if args.quick else 2)
    repeats = 2 if args.quick else 3

    images, spacing = make_slices(max(n_ours, n_mirp))
    names = feature_names()
    print(f"{len(names)} features per slice; slices 128x128, spacing {spacing[0]:.4f} mm")
    radiomics_features(images[:2], spacing)  # warm caches (kernels, FFT plans)
    columns = [mirp_column(name) for name in names]

    def measure():
        times = [best_of(lambda: radiomics_features(images[:n_ours], spacing))[0] / n_ours for _ in range(repeats)]
        ours_s = statistics.median(times)
        ours_rows, _ = radiomics_features(images[:n_mirp], spacing)
        mirp_times, reference = [], []
        for i in range(n_mirp):
            seconds, row = best_of(lambda i=i: mirp_reference(images[i], spacing))
            mirp_times.append(seconds)
            reference.append([float(row[column]) for column in columns])
        return [
            Measure(
                f"{len(names)} features per 128² slice (ours batch {n_ours}, mirp {n_mirp} one at a time)",
                ours_s,
                statistics.mean(mirp_times),
                ours_rows[:n_mirp],
                reference,
                atol=1e-9,
                rtol=1e-9,
                peer_name="mirp",
                note="target >= 100x",
            )  # fmt: skip
        ]

    run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main()
