"""LPIPS per case: ours (evaluation.metrics.lpips) against the lpips package, same weights, same images.

No real trunk weights are needed: a torchvision-layout trunk is generated from the test-only stand-in of
torchvision's model with a fixed seed (as the tests do); the heads are the lpips wheel's own v0.1 files.
Both sides get the same grey images mapped from the window to [−1, 1] and repeated to three channels;
ours takes the stored intensities and converts them itself, the lpips package takes the converted
tensors (its forward is timed, not our conversion twice). Prints, per net and device: ours (s), the lpips
package's (s), the ratio and the largest relative difference of the per-case distances. Measured quietly
and then under 2 busy cores (bench/load.py), with the same torch thread count for both (``--threads``,
default 1); the run fails when a distance differs by more than 1e-5 relative.

    .venv/bin/python bench/bench_lpips.py [--quick] [--busy 2] [--threads 1]
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
from evaluation.metrics import lpips as lp  # noqa: E402
from tests.support.generated_weights import random_lpips_backbone  # noqa: E402
from tests.support.reference_libs import load_lpips_trunk, lpips_package  # noqa: E402

BATCH = 16


def timed(fn, repeats=3):
    return best_of(fn, repeats, sync=torch.cuda.synchronize if torch.cuda.is_available() else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="alex,vgg", help="comma-separated: alex, vgg, squeeze")
    args = add_arguments(parser).parse_args()
    set_threads(args.threads)
    n = 8 if args.quick else 32
    size = 128
    rng = np.random.default_rng(0)
    # Smooth random "anatomy" plus noise in CT-like units (−1000 … 1000); outputs blurred and noisier.
    base = rng.random((n, 1, 16, 16)) * 2000 - 1000
    references = np.kron(base, np.ones((1, 1, 8, 8))) + 20 * rng.standard_normal((n, 1, size, size))
    generated = references + 60 * rng.standard_normal(references.shape)
    window = (-1000.0, 1000.0)

    def tensor(x):
        grey = np.clip((x - window[0]) / (window[1] - window[0]), 0, 1) * 2 - 1
        return torch.from_numpy(grey.astype(np.float32)).repeat(1, 3, 1, 1)

    x0, x1 = tensor(generated), tensor(references)
    package = lpips_package()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    nets = [net.strip() for net in args.nets.split(",") if net.strip()]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {n} cases of {size} × {size}; batch {BATCH}")
    with tempfile.TemporaryDirectory() as tmp:
        pairs = {}
        for net in nets:
            state = random_lpips_backbone(net, seed=0)
            backbone = Path(tmp) / lp.NETS[net].backbone.weights_filename
            torch.save(state, backbone)
            heads = lp.installed_heads_path(net)
            if heads is None:
                raise SystemExit("the lpips wheel (requirements-refs.txt) is not installed")
            config = lp.Configuration(net, str(backbone), str(heads), "the installed lpips distribution")
            for device in devices:
                ours = lp.load(config, device=device, verify_sha256=False)
                theirs = package.LPIPS(net=net, pnet_rand=True, model_path=str(heads), verbose=False).eval()
                load_lpips_trunk(theirs, state)
                pairs[(net, device)] = (ours, theirs.to(device))

        def measure():
            items = []
            for (net, device), (ours, theirs) in pairs.items():

                def run_theirs(theirs=theirs, device=device):
                    out = []
                    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                        for start in range(0, n, BATCH):
                            a, b = x0[start : start + BATCH].to(device), x1[start : start + BATCH].to(device)
                            out.append(theirs(a, b).reshape(-1).double().cpu().numpy())
                    return np.concatenate(out)

                def run_ours(ours=ours):
                    return lp.lpips_distance(generated, references, window=window, network=ours, batch_size=BATCH)

                t_ours, v_ours = timed(run_ours)
                t_theirs, v_theirs = timed(run_theirs)
                items.append(Measure(f"LPIPS-{net}, {n} cases, {device}", t_ours, t_theirs, v_ours, v_theirs,
                                     atol=0.0, rtol=1e-5, peer_name="lpips"))  # fmt: skip
            return items

        run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main()
