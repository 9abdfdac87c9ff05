"""Evaluation regions (evaluation.metrics.regions): the documented mask rule, and MedGen Eval's pixel
metrics inside a region, checked against scikit-image's SSIM map and numpy computed here."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from evaluation.metrics import pixel, regions

torch.set_num_threads(1)


def body(shape, rng):
    """A bright ellipse with a dark hole on a dark background, plus a small bright speck away from it."""
    grid = np.indices(shape).astype(np.float64)
    centre = [(s - 1) / 2 for s in shape]
    radius = [s / 3 for s in shape]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius, strict=True)) <= 1
    image = np.where(inside, 1.0, 0.0) + rng.normal(0, 0.02, shape)
    hole = tuple(slice(int(c) - 2, int(c) + 2) for c in centre)
    image[hole] = 0.0
    image[(0,) * len(shape)] = 1.0  # a one-voxel speck in the corner
    return image, inside


@pytest.mark.parametrize("shape", [(48, 40), (20, 36, 32)])
def test_mask_from_reference_thresholds_keeps_the_largest_component_and_fills_holes(shape):
    image, inside = body(shape, np.random.default_rng(0))
    mask = regions.mask_from_reference(image, 0.5)
    assert mask.dtype == np.bool_ and mask.shape == shape
    assert not mask[(0,) * len(shape)]  # the speck is another component
    assert mask[tuple(s // 2 for s in shape)]  # the hole is filled
    assert np.array_equal(mask, inside)
    raw = regions.mask_from_reference(image, 0.5, fill_holes=False, largest_component=False)
    assert np.array_equal(raw, image > 0.5)
    assert raw[(0,) * len(shape)] and not raw[tuple(s // 2 for s in shape)]


def test_mask_from_reference_fills_a_hole_open_in_3d_slice_by_slice():
    volume = np.zeros((6, 20, 20))
    volume[:, 4:16, 4:16] = 1.0
    volume[:, 8:12, 8:12] = 0.0  # a tube through the whole volume: no 3-D hole, a hole in every slice
    assert regions.mask_from_reference(volume, 0.5)[:, 8:12, 8:12].all()


def test_mask_from_reference_refuses_what_gives_no_region():
    with pytest.raises(ValueError, match="no voxel of the reference is above the region threshold 2"):
        regions.mask_from_reference(np.zeros((16, 16)), 2.0)
    with pytest.raises(ValueError, match="NaN"):
        regions.mask_from_reference(np.full((16, 16), np.nan), 0.0)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(D, H, W\)"):
        regions.mask_from_reference(np.zeros(16), 0.0)


def pair(shape, seed=1):
    rng = np.random.default_rng(seed)
    reference = ndimage.gaussian_filter(rng.random(shape), 2) * 2
    return reference + rng.normal(0, 0.05, shape), reference


@pytest.mark.parametrize("shape", [(1, 64, 80), (2, 40, 50), (1, 24, 30, 36), (1, 200, 190)])
def test_with_every_voxel_inside_the_masked_metrics_are_the_pixel_library(shape):
    prediction, reference = pair(shape)
    every = np.ones(shape[1:], dtype=bool)
    values = regions.masked_pixel_metrics(
        prediction, reference, every, data_range=2.0, keys=["psnr", "ssim", "ms_ssim", "mse", "mae", "nmse"]
    )
    batch = prediction[None], reference[None]
    assert values["ssim"] == pytest.approx(float(pixel.ssim(*batch, 2.0)[0]), abs=1e-12)
    assert values["ms_ssim"] == pytest.approx(float(pixel.ms_ssim(*batch, 2.0)[0]), abs=1e-12)
    assert values["psnr"] == pytest.approx(float(pixel.psnr(*batch, 2.0)[0]), rel=1e-12)
    assert values["mse"] == pytest.approx(float(pixel.mse(*batch)[0]), rel=1e-12)
    assert values["mae"] == pytest.approx(float(pixel.mae(*batch)[0]), rel=1e-12)
    assert values["nmse"] == pytest.approx(float(pixel.nmse(*batch)[0]), rel=1e-12)


def test_masked_ssim_is_scikit_images_ssim_map_averaged_over_the_region():
    prediction, reference = pair((64, 72), seed=3)
    mask = np.zeros((64, 72), dtype=bool)
    mask[8:50, 20:70] = True
    _, full = structural_similarity(
        prediction, reference, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0, full=True
    )
    expected = full[5:-5, 5:-5][mask[5:-5, 5:-5]].mean()
    ours = regions.masked_ssim(prediction[None], reference[None], mask, data_range=2.0)
    assert ours == pytest.approx(expected, abs=1e-9)
    assert abs(ours - structural_similarity(prediction, reference, gaussian_weights=True, sigma=1.5,
                                            use_sample_covariance=False, data_range=2.0)) > 1e-4  # fmt: skip


def reference_masked_ms_ssim(prediction, reference, mask, data_range):
    """An independent masked MS-SSIM: scipy's Gaussian (truncate 3.5 → 11 taps) maps, torch's avg_pool."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = torch.from_numpy(prediction[None, None]), torch.from_numpy(reference[None, None])
    w = torch.from_numpy(mask.astype(np.float64)[None, None])
    scales = min(5, pixel.ms_ssim_max_scales(prediction.shape))
    weights = np.array(pixel.MS_SSIM_WEIGHTS[:scales])
    weights = weights * sum(pixel.MS_SSIM_WEIGHTS) / weights.sum()
    result = 1.0
    for scale in range(scales):
        a, b = x[0, 0].numpy(), y[0, 0].numpy()
        f = lambda z: ndimage.gaussian_filter(z, 1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]  # noqa: E731
        mx, my = f(a), f(b)
        vx, vy, cxy = f(a * a) - mx**2, f(b * b) - my**2, f(a * b) - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        ssim = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
        term_map = ssim if scale == scales - 1 else cs
        valid = w[0, 0].numpy()[5:-5, 5:-5]
        result *= max((term_map * valid).sum() / valid.sum(), 0.0) ** weights[scale]
        x, y, w = (torch.nn.functional.avg_pool2d(t, 2) for t in (x, y, w))
    return result


def test_masked_ms_ssim_weighs_each_scale_by_the_share_of_the_region_under_it():
    prediction, reference = pair((180, 190), seed=4)
    mask = np.zeros((180, 190), dtype=bool)
    mask[20:150, 30:170] = True
    ours = regions.masked_ms_ssim(prediction[None], reference[None], mask, data_range=2.0)
    assert ours == pytest.approx(reference_masked_ms_ssim(prediction, reference, mask, 2.0), rel=1e-9)


def test_inside_the_region_only_the_region_counts():
    """A prediction exact outside the region and wrong inside scores as badly as its inside deserves."""
    rng = np.random.default_rng(5)
    reference = np.zeros((1, 64, 64))
    mask = np.zeros((64, 64), dtype=bool)
    mask[20:44, 20:44] = True
    reference[0, mask] = 1.0
    prediction = reference.copy()
    prediction[0, mask] += rng.normal(0, 0.2, mask.sum())
    inside = regions.masked_pixel_metrics(prediction, reference, mask, data_range=1.0, keys=["mse", "psnr", "ssim"])
    error = (prediction - reference)[0][mask]
    assert inside["mse"] == pytest.approx(np.mean(error**2), rel=1e-12)
    assert inside["psnr"] == pytest.approx(10 * math.log10(1 / np.mean(error**2)), rel=1e-12)
    whole = float(pixel.mse(prediction[None], reference[None])[0])
    assert whole == pytest.approx(inside["mse"] * mask.mean(), rel=1e-12)  # the background dilutes it 7×
    assert inside["ssim"] < float(pixel.ssim(prediction[None], reference[None], 1.0)[0])


def test_bad_regions_and_inputs_are_refused_with_the_reason():
    prediction, reference = pair((1, 32, 32))
    with pytest.raises(ValueError, match="selects no voxel"):
        regions.masked_pixel_metrics(prediction, reference, np.zeros((32, 32), bool), data_range=1.0, keys=["mse"])
    with pytest.raises(ValueError, match="has shape"):
        regions.masked_pixel_metrics(prediction, reference, np.ones((32, 31), bool), data_range=1.0, keys=["mse"])
    with pytest.raises(ValueError, match="negative"):
        regions.masked_pixel_metrics(prediction, reference, -np.ones((32, 32)), data_range=1.0, keys=["mse"])
    corner = np.zeros((32, 32), bool)
    corner[:3, :3] = True
    assert not regions.reaches_ssim_area(corner)
    with pytest.raises(ValueError, match="valid area"):
        regions.masked_pixel_metrics(prediction, reference, corner, data_range=1.0, keys=["ssim"])
    bad = prediction.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        regions.masked_pixel_metrics(bad, reference, np.ones((32, 32), bool), data_range=1.0, keys=["mse"])
    with pytest.raises(ValueError, match="no masked form of the metric 'lpips'"):
        regions.masked_pixel_metrics(prediction, reference, np.ones((32, 32), bool), data_range=1.0, keys=["lpips"])
