"""SSIM and MS-SSIM speed and agreement: evaluation.metrics.pixel against MONAI and scikit-image.

For each case prints our time, the peer's time, the ratio (peer / ours) and the largest
absolute difference between the per-sample values, all measured in this run (best of a few
repeats), quietly and then under 2 busy cores (bench/load.py); torch's thread count is set for
both, ours and the peer (``--threads``, default 1: on 2 cores with a busy neighbour a 2-thread
torch is several times slower). The run fails when a value disagrees beyond the tolerance
printed: 1e-4 absolute against MONAI (float32), 1e-6 against scikit-image (float64 both).

Images are real ones that ship with the
installed packages (scikit-image's samples, pydicom's test CT and MR, nibabel's test MRI
volumes), cropped, resampled and flipped to fill the batch, with seeded blur and noise as the
"prediction"; intensities in [0, 1], data_range 1.

Both we and MONAI get the same float32 tensors (MONAI computes in float32, we in float64);
scikit-image gets the float64 copy of the same values (given float32 it would compute in
float32) and runs per image, the loop a researcher would write.

    .venv/bin/python bench/bench_ssim.py [--quick] [--device cpu|cuda] [--omp-passive] [--busy 2] [--threads 1]

On a CPU shared with other busy processes, GNU OpenMP's default active spin-waiting makes
every torch program with many parallel regions (ours: a few per chunk of images) several
times slower and erratic; ``--omp-passive`` sets ``OMP_WAIT_POLICY=PASSIVE`` for this process
(before torch loads; it applies to MONAI alike), the setting recommended for shared workers.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--device", default="cpu", help="where ours and MONAI run (scikit-image is CPU only)")
    parser.add_argument("--omp-passive", action="store_true", help="set OMP_WAIT_POLICY=PASSIVE before loading torch")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.omp_passive:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read by libgomp when torch loads it, just below

import nibabel as nib  # noqa: E402
import nibabel.testing  # noqa: E402
import numpy as np  # noqa: E402
import scipy.ndimage as ndi  # noqa: E402
import skimage.data  # noqa: E402
import torch  # noqa: E402
from monai.metrics import MultiScaleSSIMMetric, SSIMMetric  # noqa: E402
from pydicom import examples  # noqa: E402
from pydicom.pixels import apply_modality_lut  # noqa: E402
from skimage.color import rgb2gray  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from evaluation.metrics.pixel import ms_ssim, ssim  # noqa: E402


def _unit(image):
    image = np.asarray(image, dtype=np.float64)
    return (image - image.min()) / (image.max() - image.min())


def real_2d_images():
    """Real 2D images, each at least 256 x 256, scaled to [0, 1]."""
    ct = examples.ct
    mr = examples.mr
    return [
        _unit(skimage.data.camera()),
        _unit(skimage.data.moon()),
        _unit(skimage.data.coins()),
        _unit(skimage.data.shepp_logan_phantom()),
        _unit(rgb2gray(skimage.data.astronaut())),
        _unit(ndi.zoom(apply_modality_lut(ct.pixel_array, ct), 2.5, order=3)),  # CT 128 -> 320
        _unit(ndi.zoom(mr.pixel_array.astype(np.float64), 4.5, order=3)),  # MR 64 -> 288
    ]


def real_3d_volumes(size):
    """nibabel's test MRI volumes resampled to size³, scaled to [0, 1]."""
    data = Path(nibabel.testing.data_path)
    anatomical = nib.load(data / "anatomical.nii").get_fdata()
    frames = nib.load(data / "example4d.nii.gz").get_fdata()
    volumes = [anatomical, frames[..., 0], frames[..., 1]]
    return [_unit(ndi.zoom(v, [size / s for s in v.shape], order=1)) for v in volumes]


def make_batch(images, count, size, rng):
    """count (target, prediction) pairs: random crops/flips of the images, blurred and noisy."""
    targets = []
    for i in range(count):
        image = images[i % len(images)]
        corner = [rng.integers(0, s - size + 1) for s in image.shape]
        crop = image[tuple(slice(c, c + size) for c in corner)]
        for axis in range(crop.ndim):
            if rng.random() < 0.5:
                crop = np.flip(crop, axis)
        targets.append(crop)
    target = np.stack(targets)[:, None]
    pred = np.empty_like(target)
    for i in range(count):
        blurred = ndi.gaussian_filter(target[i, 0], rng.uniform(0.3, 1.5))
        pred[i, 0] = blurred + rng.normal(0, rng.uniform(0.01, 0.08), blurred.shape)
    return np.clip(pred, 0, 1).astype(np.float32), target.astype(np.float32)


def timed(function, repeats, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    best, result = best_of(function, repeats, sync=sync)
    return best, torch.as_tensor(result).double().reshape(-1).cpu().numpy()


def item(case, peer, ours, theirs, atol, target_ratio=None):
    (t_ours, v_ours), (t_peer, v_peer) = ours, theirs
    note = ""
    if target_ratio:
        note = f"target >= {target_ratio:g}x: {'met' if t_peer / t_ours >= target_ratio else 'MISSED'}"
    return Measure(case, t_ours, t_peer, v_ours, v_peer, atol=atol, rtol=0.0, peer_name=peer, note=note)


def skimage_loop(p64, t64):
    return [
        structural_similarity(
            p64[i, 0], t64[i, 0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for i in range(len(p64))
    ]


def main(args):
    set_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(2024)
    n2d, n3d, n_ms = (16, 2, 4) if args.quick else (64, 8, 16)
    repeats, slow_repeats = (2, 1) if args.quick else (5, 2)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {device}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()[0]:.2f}"
    )
    cpu = torch.device("cpu")
    images = real_2d_images()
    batches = {
        "2d": make_batch(images, n2d, 256, rng),
        "3d": make_batch(real_3d_volumes(112), n3d, 96, rng),
        "ms": make_batch(images, n_ms, 256, rng),
    }

    def measure():
        items = []
        for key, dims, case in (("2d", 2, f"SSIM 2D {n2d}x1x256x256"), ("3d", 3, f"SSIM 3D {n3d}x1x96x96x96")):
            pred, target = batches[key]
            p, t = torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device)
            p64, t64 = pred.astype(np.float64), target.astype(np.float64)
            ours = timed(lambda p=p, t=t: ssim(p, t, 1.0), repeats, device)
            monai = SSIMMetric(spatial_dims=dims, data_range=1.0, kernel_type="gaussian", reduction="none")
            peer_repeats = slow_repeats + 1 if dims == 2 else slow_repeats
            monai_t = timed(lambda p=p, t=t, m=monai: m(p, t), peer_repeats, device)
            items.append(item(f"{case} vs MONAI", "MONAI SSIMMetric", ours, monai_t, 1e-4, 8 if dims == 2 else 10))
            loop = timed(lambda a=p64, b=t64: skimage_loop(a, b), slow_repeats + 1, cpu)
            items.append(item(f"{case} vs scikit-image", "scikit-image loop", ours, loop, 1e-6, 1.5))
        pred, target = batches["ms"]
        p, t = torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device)
        ours = timed(lambda: ms_ssim(p, t, 1.0), repeats, device)
        monai = MultiScaleSSIMMetric(
            spatial_dims=2, data_range=1.0, kernel_type="gaussian", kernel_size=11, kernel_sigma=1.5, reduction="none"
        )
        items.append(item(f"MS-SSIM 2D {n_ms}x1x256x256", "MONAI MultiScaleSSIM", ours,
                          timed(lambda: monai(p, t), repeats, device), 1e-4))  # fmt: skip
        return items

    run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main(ARGS)
