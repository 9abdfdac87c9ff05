"""Benchmark: radiomics features per 128x128 slice, ours (evaluation.metrics.radiomics) vs mirp 2.7.0.

Both compute the same features (IBSI statistics, intensity histogram, GLCM and GLRLM on the original
image and on LoG sigma 2, 3, 4, 5 mm) with the same settings, in the same run on the same machine.
Ours is batched over many slices; mirp runs one slice at a time. The script also reports the
largest relative difference between the two over every feature of the slices mirp computed.

Usage: .venv/bin/python bench/bench_radiomics.py [--quick] [--slices N] [--mirp-slices M]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
    parser.add_argument("--quick", action="store_true", help="fewer slices and repeats")
    parser.add_argument("--slices", type=int, default=None, help="slices in our batch (default 64; quick 16)")
    parser.add_argument("--mirp-slices", type=int, default=None, help="slices for mirp (default 2; quick 1)")
    args = parser.parse_args()
    n_ours = args.slices or (16 if args.quick else 64)
    n_mirp = args.mirp_slices or (1 if args.quick else 2)
    repeats = 2 if args.quick else 3

    images, spacing = make_slices(max(n_ours, n_mirp))
    names = feature_names()
    print(f"{len(names)} features per slice; slices 128x128, spacing {spacing[0]:.4f} mm")

    radiomics_features(images[:2], spacing)  # warm caches (kernels, FFT plans)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        radiomics_features(images[:n_ours], spacing)
        times.append((time.perf_counter() - t0) / n_ours)
    ours_s = statistics.median(times)
    print(f"ours: {ours_s * 1e3:8.2f} ms/slice (batch of {n_ours}, median of {repeats}; best {min(times) * 1e3:.2f})")

    mirp_times, worst, worst_abs = [], (0.0, ""), (0.0, "")
    ours_rows, _ = radiomics_features(images[:n_mirp], spacing)
    for i in range(n_mirp):
        t0 = time.perf_counter()
        reference = mirp_reference(images[i], spacing)
        mirp_times.append(time.perf_counter() - t0)
        for value, name in zip(ours_rows[i], names, strict=True):
            expected = float(reference[mirp_column(name)])
            diff = abs(float(value) - expected)
            if abs(expected) > 1e-9:
                worst = max(worst, (diff / abs(expected), name))
            else:
                worst_abs = max(worst_abs, (diff, name))
    mirp_s = statistics.mean(mirp_times)
    print(f"mirp: {mirp_s:8.3f} s/slice  (mean of {n_mirp} slice(s), one at a time)")
    print(f"speed-up: {mirp_s / ours_s:8.1f}x  (target >= 100x)")
    print(f"largest relative difference over all features: {worst[0]:.2e} ({worst[1]})")
    if worst_abs[1]:
        print(f"largest absolute difference where |mirp| <= 1e-9: {worst_abs[0]:.2e} ({worst_abs[1]})")


if __name__ == "__main__":
    main()
