"""Inception-v3 (FID) features: ours against torch-fidelity's extractor, same weights file, same images.

No real weights are needed: a weights file of the standard format is generated from our
network with a fixed seed (as the tests do). Prints, per device: ours (s), torch-fidelity's
(s), the ratio and the largest relative difference of the 2048-d features; on CUDA also
our CUDA features against our CPU features (TF32 must stay off, or FID would depend on the
worker's hardware). Measured quietly and then under 2 busy cores (bench/load.py), with the same
torch thread count for both (``--threads``, default 1); the run fails when a feature differs by
more than 1e-5 of the largest feature.

    .venv/bin/python bench/bench_inception.py [--quick] [--busy 2] [--threads 1]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402
from evaluation.metrics.extractors import get_extractor  # noqa: E402
from tests.support.generated_weights import random_fid_inception  # noqa: E402
from tests.support.reference_libs import torch_fidelity  # noqa: E402


def timed(fn, repeats=3):
    return best_of(fn, repeats, sync=torch.cuda.synchronize if torch.cuda.is_available() else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = add_arguments(parser).parse_args()
    set_threads(args.threads)
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
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {n} images of 128 × 128; batch 16")
        networks = {}
        for device in devices:
            ours = get_extractor("inception_v3", weights_path=weights, device=device, verify_sha256=False)
            theirs = torch_fidelity().FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
            )
            networks[device] = (ours, theirs.to(device).eval())

        def measure():
            items, features = [], {}
            for device, (ours, theirs) in networks.items():
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
                items.append(Measure(f"Inception-v3 pool3, {n} images, {device}", t_ours, t_theirs, f_ours, f_theirs,
                                     atol=1e-5 * float(np.max(np.abs(f_theirs))), rtol=0.0,
                                     peer_name="torch-fidelity"))  # fmt: skip
            if "cuda" in features:
                drift = np.max(np.abs(features["cuda"] - features["cpu"])) / np.max(np.abs(features["cpu"]))
                print(f"ours on CUDA vs ours on CPU: max |diff| / max |feature| {drift:.1e}")
            return items

        run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main()
