"""SSIM and MS-SSIM speed and agreement: evaluation.metrics.pixel against MONAI and scikit-image.

For each case prints our time, the peer's time, the ratio (peer / ours) and the largest
absolute difference between the per-sample values, all measured in this run (best of a few
repeats; torch's thread count left at its default). Images are real ones that ship with the
installed packages (scikit-image's samples, pydicom's test CT and MR, nibabel's test MRI
volumes), cropped, resampled and flipped to fill the batch, with seeded blur and noise as the
"prediction"; intensities in [0, 1], data_range 1.

Both we and MONAI get the same float32 tensors (MONAI computes in float32, we in float64);
scikit-image gets the float64 copy of the same values (given float32 it would compute in
float32) and runs per image, the loop a researcher would write.

    .venv/bin/python bench/bench_ssim.py [--quick] [--device cpu|cuda] [--omp-passive]

On a CPU shared with other busy processes, GNU OpenMP's default active spin-waiting makes
every torch program with many parallel regions (ours: a few per chunk of images) several
times slower and erratic; ``--omp-passive`` sets ``OMP_WAIT_POLICY=PASSIVE`` for this process
(before torch loads; it applies to MONAI alike), the setting recommended for shared workers.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats")
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
    best, result = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, torch.as_tensor(result).double().reshape(-1).cpu()


def report(case, peer, ours, theirs, target_ratio=None):
    (t_ours, v_ours), (t_peer, v_peer) = ours, theirs
    ratio = t_peer / t_ours
    diff = (v_ours - v_peer).abs().max().item()
    goal = f"  (target >= {target_ratio:g}x: {'met' if ratio >= target_ratio else 'MISSED'})" if target_ratio else ""
    times = f"ours {t_ours:8.3f} s   peer {t_peer:8.3f} s   {ratio:6.1f}x"
    print(f"{case:<28} {peer:<21} {times}   max|diff| {diff:.1e}{goal}")


def main(args):
    device = torch.device(args.device)
    rng = np.random.default_rng(2024)
    n2d, n3d, n_ms = (16, 2, 4) if args.quick else (64, 8, 16)
    repeats, slow_repeats = (2, 1) if args.quick else (5, 2)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {device}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()[0]:.2f}"
    )
    images = real_2d_images()

    # 2D SSIM
    pred, target = make_batch(images, n2d, 256, rng)
    p, t = torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device)
    p64, t64 = pred.astype(np.float64), target.astype(np.float64)
    ours = timed(lambda: ssim(p, t, 1.0), repeats, device)
    monai = SSIMMetric(spatial_dims=2, data_range=1.0, kernel_type="gaussian", reduction="none")
    case = f"SSIM 2D {n2d}x1x256x256"
    report(case, "MONAI SSIMMetric", ours, timed(lambda: monai(p, t), slow_repeats + 1, device), 8)
    skimage_loop = lambda: [  # noqa: E731
        structural_similarity(
            p64[i, 0], t64[i, 0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for i in range(n2d)
    ]
    report(case, "scikit-image loop", ours, timed(skimage_loop, repeats, torch.device("cpu")), 1.5)

    # 3D SSIM
    volumes = real_3d_volumes(112)
    pred, target = make_batch(volumes, n3d, 96, rng)
    p, t = torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device)
    p64, t64 = pred.astype(np.float64), target.astype(np.float64)
    ours = timed(lambda: ssim(p, t, 1.0), repeats, device)
    monai = SSIMMetric(spatial_dims=3, data_range=1.0, kernel_type="gaussian", reduction="none")
    case = f"SSIM 3D {n3d}x1x96x96x96"
    report(case, "MONAI SSIMMetric", ours, timed(lambda: monai(p, t), slow_repeats, device), 10)
    skimage_loop = lambda: [  # noqa: E731
        structural_similarity(
            p64[i, 0], t64[i, 0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for i in range(n3d)
    ]
    report(case, "scikit-image loop", ours, timed(skimage_loop, slow_repeats + 1, torch.device("cpu")), 1.5)

    # MS-SSIM 2D
    pred, target = make_batch(images, n_ms, 256, rng)
    p, t = torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device)
    ours = timed(lambda: ms_ssim(p, t, 1.0), repeats, device)
    monai = MultiScaleSSIMMetric(
        spatial_dims=2, data_range=1.0, kernel_type="gaussian", kernel_size=11, kernel_sigma=1.5, reduction="none"
    )
    report(f"MS-SSIM 2D {n_ms}x1x256x256", "MONAI MultiScaleSSIM", ours, timed(lambda: monai(p, t), repeats, device))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on these cores slow every figure)")


if __name__ == "__main__":
    main(ARGS)
