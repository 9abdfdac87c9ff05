"""Inception-v3 (FID) features: ours against torch-fidelity's extractor, same weights file, same images.

No real weights are needed: a weights file of the standard format is generated from our
network with a fixed seed (as the tests do). Prints, per device: ours (s), torch-fidelity's
(s), the ratio and the largest relative difference of the 2048-d features; on CUDA also
our CUDA features against our CPU features (TF32 must stay off, or FID would depend on the
worker's hardware).

    .venv/bin/python bench/bench_inception.py [--quick]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.metrics.extractors import get_extractor  # noqa: E402
from tests.support.generated_weights import random_fid_inception  # noqa: E402
from tests.support.reference_libs import torch_fidelity  # noqa: E402


def timed(fn, repeats=3):
    best, value = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        value = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 8 if args.quick else 32
    rng = np.random.default_rng(0)
    # Smooth random "anatomy" plus noise, 128 × 128, in [0, 1]; mapped to 0–255 by the data range.
    base = rng.random((n, 1, 16, 16))
    images = np.kron(base, np.ones((1, 1, 8, 8))) + 0.05 * rng.standard_normal((n, 1, 128, 128))
    images = images.astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "pt_inception-2015-12-05-6726825d.pth"
        torch.save(random_fid_inception().state_dict(), weights)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        features = {}
        print(f"torch {torch.__version__}; {n} images of 128 × 128; batch 16")
        for device in devices:
            ours = get_extractor("inception_v3", weights_path=weights, device=device, verify_sha256=False)
            theirs = torch_fidelity().FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
            )
            theirs = theirs.to(device).eval()
            pixels = ours.to_uint8(images, (0.0, 1.0))  # the same 8-bit images for both
            rgb = torch.from_numpy(np.repeat(pixels, 3, axis=1))

            def run_theirs(theirs=theirs, rgb=rgb, device=device):
                out = []
                # TF32 off as in ours, so the comparison is of the networks, not of the GPU's precision mode.
                with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                    for start in range(0, n, 16):
                        out.append(theirs(rgb[start : start + 16].to(device))[0].double().cpu().numpy())
                return np.concatenate(out)

            t_ours, f_ours = timed(lambda ours=ours: ours.extract(images, data_range=(0.0, 1.0)))
            t_theirs, f_theirs = timed(run_theirs)
            features[device] = f_ours
            diff = np.max(np.abs(f_ours - f_theirs)) / np.max(np.abs(f_theirs))
            print(
                f"{device:5s} ours {t_ours:7.3f} s   torch-fidelity {t_theirs:7.3f} s   ratio {t_theirs / t_ours:5.2f}x"
                f"   max |diff| / max |feature| {diff:.1e}"
            )
        if "cuda" in features:
            drift = np.max(np.abs(features["cuda"] - features["cpu"])) / np.max(np.abs(features["cpu"]))
            print(f"ours on CUDA vs ours on CPU: max |diff| / max |feature| {drift:.1e}")


if __name__ == "__main__":
    main()
