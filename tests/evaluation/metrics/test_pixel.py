"""The pixel-fidelity metrics against scikit-image and MONAI, on real images that ship offline.

Images: scikit-image's bundled samples (camera, moon, coins, astronaut, Shepp-Logan), pydicom's
test CT (in Hounsfield units) and MR, and nibabel's test NIfTI volumes (anatomical.nii, the two
frames of example4d.nii.gz), plus seeded noise and blur. Pure: no database, no Django.
"""

import os

import nibabel as nib
import nibabel.testing
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.data
import torch
from monai.metrics import MultiScaleSSIMMetric, SSIMMetric
from pydicom import examples
from pydicom.pixels import apply_modality_lut
from skimage.metrics import mean_squared_error, normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from evaluation.metrics import pixel
from evaluation.metrics.pixel import (
    MS_SSIM_MIN_SIZE,
    MS_SSIM_WEIGHTS,
    mae,
    ms_ssim,
    ms_ssim_max_scales,
    ms_ssim_min_size,
    mse,
    nmse,
    psnr,
    ssim,
    ssim_map,
)

SKIMAGE_SSIM = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def skimage_ssim(pred, target, data_range, **kwargs):
    return structural_similarity(pred, target, data_range=data_range, **SKIMAGE_SSIM, **kwargs)


def monai_ms_ssim(pred, target, data_range, spatial_dims, weights=MS_SSIM_WEIGHTS):
    metric = MultiScaleSSIMMetric(
        spatial_dims=spatial_dims,
        data_range=data_range,
        kernel_type="gaussian",
        kernel_size=11,
        kernel_sigma=1.5,
        weights=weights,
        reduction="none",
    )
    return metric(torch.as_tensor(pred), torch.as_tensor(target)).reshape(-1).double()


def degrade(image, rng, *, noise, blur=0.0):
    out = ndi.gaussian_filter(image, blur) if blur else image.copy()
    return out + rng.normal(0.0, noise, image.shape)


# --------------------------------------------------------------------------------------------
# Real images


@pytest.fixture(scope="module")
def gray_256():
    """Four real 8-bit grayscale images, 256 x 256, float64 in [0, 255]."""
    images = [
        skimage.data.camera()[::2, ::2],
        skimage.data.moon()[::2, ::2],
        skimage.data.coins()[20:276, 64:320],
        skimage.data.shepp_logan_phantom()[72:328, 72:328] * 255.0,
    ]
    return np.stack(images).astype(np.float64)[:, None]


@pytest.fixture(scope="module")
def ct_hu():
    """pydicom's CT_small test slice in Hounsfield units (128 x 128, -896 .. 1167 HU)."""
    ds = examples.ct
    return apply_modality_lut(ds.pixel_array, ds).astype(np.float64)


@pytest.fixture(scope="module")
def mr_slice():
    return examples.mr.pixel_array.astype(np.float64)


@pytest.fixture(scope="module")
def nifti_volumes():
    """nibabel's anatomical.nii (33, 41, 25) and the two frames of example4d.nii.gz (128, 96, 24)."""
    anatomical = nib.load(os.path.join(nibabel.testing.data_path, "anatomical.nii")).get_fdata()
    frames = nib.load(os.path.join(nibabel.testing.data_path, "example4d.nii.gz")).get_fdata()
    return anatomical, frames[..., 0], frames[..., 1]


# --------------------------------------------------------------------------------------------
# SSIM against scikit-image


def test_ssim_matches_skimage_on_2d_photographs(gray_256):
    rng = np.random.default_rng(0)
    target = gray_256
    pred = np.stack(
        [
            degrade(target[0], rng, noise=10.0),
            degrade(target[1], rng, noise=3.0, blur=1.0),
            np.roll(target[2], 1, axis=-1),
            255.0 * (target[3] / 255.0) ** 1.5,
        ]
    )
    values = ssim(torch.from_numpy(pred), torch.from_numpy(target), 255.0)
    assert values.dtype == torch.float64 and values.shape == (4,)
    expected = [skimage_ssim(pred[i, 0], target[i, 0], 255.0) for i in range(4)]
    np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-6)
    assert len(set(np.round(expected, 3))) == 4  # distinct, non-trivial values


def test_ssim_matches_skimage_on_ct_in_hounsfield_units(ct_hu):
    rng = np.random.default_rng(1)
    data_range = float(ct_hu.max() - ct_hu.min())
    pred = np.stack([degrade(ct_hu, rng, noise=20.0), degrade(ct_hu, rng, noise=5.0, blur=0.8)])[:, None]
    target = np.stack([ct_hu, ct_hu])[:, None]
    values = ssim(pred, target, data_range)
    expected = [skimage_ssim(pred[i, 0], ct_hu, data_range) for i in range(2)]
    np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-6)


def test_ssim_matches_skimage_on_mr_with_integer_input(mr_slice):
    rng = np.random.default_rng(2)
    target = mr_slice.astype(np.int16)
    pred = np.clip(degrade(mr_slice, rng, noise=40.0), 0, 4000).astype(np.int16)
    data_range = float(target.max() - target.min())
    values = ssim(pred[None, None], target[None, None], data_range)
    expected = skimage_ssim(pred.astype(np.float64), target.astype(np.float64), data_range)
    assert abs(values.item() - expected) <= 1e-6


def test_ssim_matches_skimage_on_3d_volumes(nifti_volumes):
    anatomical, frame0, frame1 = nifti_volumes
    # Two real acquisitions of the same subject: frame 1 against frame 0.
    data_range = float(frame0.max() - frame0.min())
    value = ssim(frame1[None, None], frame0[None, None], data_range)
    assert abs(value.item() - skimage_ssim(frame1, frame0, data_range)) <= 1e-6
    # A batch of degraded anatomical volumes (33, 41, 25).
    rng = np.random.default_rng(3)
    data_range = float(anatomical.max() - anatomical.min())
    pred = np.stack([degrade(anatomical, rng, noise=300.0), degrade(anatomical, rng, noise=50.0, blur=1.0)])
    values = ssim(pred[:, None], np.stack([anatomical, anatomical])[:, None], data_range)
    expected = [skimage_ssim(pred[i], anatomical, data_range) for i in range(2)]
    np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-6)


def test_ssim_matches_skimage_on_seeded_random_volumes():
    rng = np.random.default_rng(4)
    target = ndi.gaussian_filter(rng.normal(size=(3, 23, 30, 17)), 2.0)
    pred = target + rng.normal(0, 0.05, target.shape)
    data_range = float(target.max() - target.min())
    values = ssim(pred[:, None], target[:, None], data_range)
    expected = [skimage_ssim(pred[i], target[i], data_range) for i in range(3)]
    np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-6)


def test_ssim_of_multichannel_images_matches_skimage_channel_axis():
    rng = np.random.default_rng(5)
    images = np.stack([skimage.data.astronaut()[::2, ::2], skimage.data.chelsea()[:256, 100:356]]).astype(np.float64)
    pred = np.stack([degrade(images[0], rng, noise=12.0), degrade(images[1], rng, noise=4.0, blur=1.2)])
    values = ssim(pred.transpose(0, 3, 1, 2), images.transpose(0, 3, 1, 2), 255.0)
    expected = [skimage_ssim(pred[i], images[i], 255.0, channel_axis=-1) for i in range(2)]
    np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-6)


def test_ssim_map_is_skimage_full_map_without_its_borders(ct_hu):
    rng = np.random.default_rng(6)
    pred = degrade(ct_hu, rng, noise=30.0)
    data_range = float(ct_hu.max() - ct_hu.min())
    values, full_map = ssim(pred[None, None], ct_hu[None, None], data_range, return_map=True)
    _, expected_map = skimage_ssim(pred, ct_hu, data_range, full=True)
    assert full_map.shape == (1, 1, 118, 118) and full_map.dtype == torch.float64
    np.testing.assert_allclose(full_map[0, 0].numpy(), expected_map[5:-5, 5:-5], rtol=0, atol=1e-9)
    assert torch.equal(ssim_map(pred[None, None], ct_hu[None, None], data_range), full_map)
    assert abs(values.item() - full_map.mean().item()) < 1e-12


def test_ssim_of_large_volumes_in_slabs_equals_whole_volume(monkeypatch, nifti_volumes):
    _, frame0, frame1 = nifti_volumes
    data_range = float(frame0.max() - frame0.min())
    whole, whole_map = ssim(frame1[None, None], frame0[None, None], data_range, return_map=True)
    # Force the slab path (used for volumes too large to filter at once): 16-slice slabs.
    monkeypatch.setitem(pixel._SLAB_ELEMENTS, "cpu", 4 * 96 * 24 * 26)
    slabbed, slabbed_map = ssim(frame1[None, None], frame0[None, None], data_range, return_map=True)
    assert abs(slabbed.item() - whole.item()) < 1e-12
    assert torch.allclose(slabbed_map, whole_map, rtol=0, atol=1e-12)


def test_ssim_agrees_with_monai_ssim_metric(gray_256):
    rng = np.random.default_rng(7)
    target = gray_256 / 255.0
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    monai = SSIMMetric(spatial_dims=2, data_range=1.0, kernel_type="gaussian", reduction="none")
    expected = monai(torch.from_numpy(pred), torch.from_numpy(target)).reshape(-1).double()
    # MONAI convolves in float32 with a float32 kernel: equal to that rounding.
    assert torch.allclose(ssim(pred, target, 1.0), expected, rtol=0, atol=1e-5)


def test_identical_images_give_ssim_one_and_infinite_psnr(ct_hu):
    image = np.stack([ct_hu, ct_hu[::-1]])[:, None]
    data_range = float(ct_hu.max() - ct_hu.min())
    assert torch.allclose(ssim(image, image, data_range), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12)
    up = ndi.zoom(ct_hu, 1.5, order=1)[None, None]  # 192 x 192: the full five scales
    assert abs(ms_ssim(up, up, data_range).item() - 1.0) < 1e-12
    assert torch.equal(psnr(image, image, data_range), torch.full((2,), float("inf"), dtype=torch.float64))
    assert torch.equal(mse(image, image), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(mae(image, image), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(nmse(image, image), torch.zeros(2, dtype=torch.float64))


def test_ssim_rejects_images_smaller_than_the_window():
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.zeros(1, 1, 10, 64), torch.zeros(1, 1, 10, 64), 1.0)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.zeros(1, 1, 10, 256, 256), torch.zeros(1, 1, 10, 256, 256), 1.0)  # e.g. a 10-slice MRI
    with pytest.raises(ValueError, match="at least 11"):
        ms_ssim(torch.zeros(1, 1, 64, 8), torch.zeros(1, 1, 64, 8), 1.0)
    assert ssim(torch.zeros(1, 1, 11, 11), torch.zeros(1, 1, 11, 11), 1.0).item() == 1.0


# --------------------------------------------------------------------------------------------
# MS-SSIM against MONAI


def test_ms_ssim_matches_monai_on_2d_images(gray_256):
    rng = np.random.default_rng(8)
    target = gray_256 / 255.0
    pred = np.stack(
        [
            np.clip(degrade(target[0], rng, noise=0.05), 0, 1),
            np.clip(degrade(target[1], rng, noise=0.01, blur=1.5), 0, 1),
            1.0 - target[2],  # inverted: negative contrast-structure, clipped to 0 by the relu
            np.clip(degrade(target[3], rng, noise=0.1), 0, 1),
        ]
    )
    values = ms_ssim(pred, target, 1.0)
    expected = monai_ms_ssim(pred, target, 1.0, spatial_dims=2)
    assert values.shape == (4,) and values.dtype == torch.float64
    # MONAI computes in float32 with a float32 kernel: agreement to that rounding.
    assert torch.allclose(values, expected, rtol=0, atol=1e-5)
    assert values[2].item() == 0.0


def test_ms_ssim_matches_monai_on_192_pixel_multichannel_images():
    rng = np.random.default_rng(9)
    target = skimage.data.astronaut()[100:292, 150:342].astype(np.float64).transpose(2, 0, 1)[None] / 255.0
    pred = np.clip(target + rng.normal(0, 0.03, target.shape), 0, 1)
    assert target.shape == (1, 3, 192, 192)
    values = ms_ssim(pred, target, 1.0)
    assert torch.allclose(values, monai_ms_ssim(pred, target, 1.0, spatial_dims=2), rtol=0, atol=1e-5)


def test_ms_ssim_is_monai_algorithm_exactly_in_float64(monkeypatch, ct_hu):
    """MONAI's remaining differences are float32 rounding: run its code in float64 and they vanish."""
    import monai.metrics.regression as regression

    convert = regression.convert_data_type

    def convert_float64(data, output_type=None, device=None, dtype=None, **kwargs):
        return convert(data, output_type=output_type, device=device, dtype=torch.float64, **kwargs)

    monkeypatch.setattr(regression, "convert_data_type", convert_float64)
    rng = np.random.default_rng(10)
    target = ndi.zoom(ct_hu, 2.0, order=1)[None, None]  # 256 x 256, in HU
    pred = np.concatenate([degrade(target, rng, noise=25.0), degrade(target, rng, noise=5.0, blur=1.0)])
    target = np.concatenate([target, target])
    data_range = float(ct_hu.max() - ct_hu.min())
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # MONAI builds its Gaussian kernel in the default dtype
    try:
        expected = monai_ms_ssim(pred, target, data_range, spatial_dims=2)
    finally:
        torch.set_default_dtype(default_dtype)
    # HU² magnitudes (~1e6) leave ~1e-11 of float64 cancellation; MONAI keeps its weights in float32.
    assert torch.allclose(ms_ssim(pred, target, data_range), expected, rtol=0, atol=1e-9)


def test_ms_ssim_matches_monai_on_3d_volumes_with_three_scales(nifti_volumes):
    anatomical = nifti_volumes[0]
    volume = ndi.zoom(anatomical, (1.4, 1.1, 1.8), order=1)  # (46, 45, 45): three scales
    volume = (volume - volume.min()) / (volume.max() - volume.min())
    rng = np.random.default_rng(11)
    pred = np.clip(degrade(volume, rng, noise=0.05), 0, 1)[None, None]
    weights = MS_SSIM_WEIGHTS[:3]
    values = ms_ssim(pred, volume[None, None], 1.0, weights=weights)
    expected = monai_ms_ssim(pred, volume[None, None], 1.0, spatial_dims=3, weights=weights)
    assert torch.allclose(values, expected, rtol=0, atol=1e-5)
    # With the default five weights, this size allows three scales: the same first three
    # weights, rescaled to keep their total.
    rescaled = [w * sum(MS_SSIM_WEIGHTS) / sum(weights) for w in weights]
    default = ms_ssim(pred, volume[None, None], 1.0)
    assert torch.allclose(default, ms_ssim(pred, volume[None, None], 1.0, weights=rescaled), rtol=0, atol=1e-14)


def test_ms_ssim_uses_fewer_rescaled_scales_on_small_images(gray_256):
    rng = np.random.default_rng(12)
    target = gray_256[:2, :, :100, :120] / 255.0
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    assert ms_ssim_max_scales(target.shape) == 4
    rescaled = [w * sum(MS_SSIM_WEIGHTS) / sum(MS_SSIM_WEIGHTS[:4]) for w in MS_SSIM_WEIGHTS[:4]]
    expected = monai_ms_ssim(pred, target, 1.0, spatial_dims=2, weights=rescaled)
    assert torch.allclose(ms_ssim(pred, target, 1.0), expected, rtol=0, atol=1e-5)
    assert torch.allclose(ms_ssim(pred, target, 1.0, scales=4), ms_ssim(pred, target, 1.0))
    with pytest.raises(ValueError, match="at least 176"):
        ms_ssim(pred, target, 1.0, scales=5)
    with pytest.raises(ValueError, match="scales must be an integer from 1 to"):
        ms_ssim(pred, target, 1.0, scales=0)
    # One scale left: SSIM (clipped at 0) to the power of the weights' total.
    small_pred, small_target = pred[..., :16, :16], target[..., :16, :16]
    expected = ssim(small_pred, small_target, 1.0).clamp(min=0) ** sum(MS_SSIM_WEIGHTS)
    assert torch.allclose(ms_ssim(small_pred, small_target, 1.0), expected, rtol=0, atol=1e-12)


def test_ms_ssim_scale_count_follows_the_size():
    assert MS_SSIM_MIN_SIZE == 176 == ms_ssim_min_size(5) == ms_ssim_min_size()
    assert [ms_ssim_min_size(s) for s in (1, 2, 3, 4)] == [11, 22, 44, 88]
    assert ms_ssim_max_scales((176, 176)) == 5
    assert ms_ssim_max_scales((2, 1, 176, 1000)) == 5
    assert ms_ssim_max_scales((175, 300)) == 4
    assert ms_ssim_max_scales((1, 1, 96, 96, 96)) == 4
    assert ms_ssim_max_scales((11, 11)) == 1
    assert ms_ssim_max_scales((10, 500)) == 0
    with pytest.raises(ValueError, match="shape must be"):
        ms_ssim_max_scales((64,))
    full = torch.rand(1, 1, 176, 180, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert ms_ssim(full * 0.9, full, 1.0, scales=5).shape == (1,)


# --------------------------------------------------------------------------------------------
# MSE, MAE, NMSE, PSNR


def test_mse_mae_nmse_psnr_match_skimage_on_ct(ct_hu):
    rng = np.random.default_rng(13)
    pred = np.stack([degrade(ct_hu, rng, noise=20.0), degrade(ct_hu, rng, noise=2.0, blur=1.0)])
    target = np.stack([ct_hu, ct_hu])
    data_range = float(ct_hu.max() - ct_hu.min())
    p, t = pred[:, None], target[:, None]
    np.testing.assert_allclose(mse(p, t).numpy(), [mean_squared_error(t[i], p[i]) for i in range(2)], rtol=1e-12)
    np.testing.assert_allclose(mae(p, t).numpy(), np.abs(pred - target).mean(axis=(1, 2)), rtol=1e-12)
    expected_nmse = [normalized_root_mse(target[i], pred[i], normalization="euclidean") ** 2 for i in range(2)]
    np.testing.assert_allclose(nmse(p, t).numpy(), expected_nmse, rtol=1e-12)
    expected_psnr = [peak_signal_noise_ratio(target[i], pred[i], data_range=data_range) for i in range(2)]
    np.testing.assert_allclose(psnr(p, t, data_range).numpy(), expected_psnr, rtol=1e-12)


def test_psnr_of_multichannel_volumes_uses_mse_over_all_channels(nifti_volumes):
    _, frame0, frame1 = nifti_volumes
    pred = np.stack([frame1, frame0])[None]  # one sample, two channels
    target = np.stack([frame0, frame0])[None]
    data_range = float(frame0.max() - frame0.min())
    expected = peak_signal_noise_ratio(target[0], pred[0], data_range=data_range)
    assert abs(psnr(pred, target, data_range).item() - expected) < 1e-10
    assert abs(mse(pred, target).item() - mean_squared_error(target, pred)) < 1e-9


def test_nmse_of_an_all_zero_target_is_inf_or_nan():
    target = torch.zeros(2, 1, 16, 16)
    pred = torch.stack([torch.ones(1, 16, 16), torch.zeros(1, 16, 16)])
    values = nmse(pred, target)
    assert values[0].item() == float("inf") and torch.isnan(values[1])


# --------------------------------------------------------------------------------------------
# Inputs and errors


def test_non_finite_input_gives_nan_for_that_sample_only(gray_256):
    target = torch.from_numpy(gray_256[:3])
    pred = target + 1.0
    pred[1, 0, 100, 100] = float("nan")
    for values in (
        mse(pred, target),
        mae(pred, target),
        nmse(pred, target),
        psnr(pred, target, 255.0),
        ssim(pred, target, 255.0),
        ms_ssim(pred, target, 255.0),
    ):
        assert torch.isnan(values[1])
        assert torch.isfinite(values[[0, 2]]).all()
    pred[1, 0, 100, 100] = float("inf")
    assert torch.isnan(ssim(pred, target, 255.0)[1]) and torch.isnan(ms_ssim(pred, target, 255.0)[1])
    assert mse(pred, target)[1].item() == float("inf")


def test_numpy_and_integer_input_is_accepted_and_left_unchanged():
    camera = skimage.data.camera()[None, None]  # uint8
    noisy = np.clip(camera + np.random.default_rng(14).normal(0, 8, camera.shape), 0, 255).astype(np.uint8)
    before = noisy.copy()
    from_numpy = ssim(noisy, camera, 255)
    from_tensor = ssim(torch.from_numpy(noisy).double(), torch.from_numpy(camera).double(), 255.0)
    assert from_numpy.dtype == torch.float64 and from_numpy.shape == (1,)
    assert torch.allclose(from_numpy, from_tensor, rtol=0, atol=1e-14)
    assert np.array_equal(noisy, before)
    target = torch.from_numpy(camera).double()
    pred = target.clone()
    mse(pred, target + 1), mae(pred, target + 1), psnr(pred, target + 1, 255)
    assert torch.equal(pred, target)


def test_masks_unsigned_and_odd_numpy_layouts_are_accepted():
    rng = np.random.default_rng(16)
    image = rng.integers(0, 4096, size=(2, 1, 40, 40)).astype(np.uint16)  # e.g. DICOM pixel data
    noisy = (image + rng.integers(0, 50, size=image.shape)).astype(np.uint16)
    as_float = ssim(noisy.astype(np.float64), image.astype(np.float64), 4096.0)
    assert torch.allclose(ssim(noisy, image, 4096.0), as_float, rtol=0, atol=1e-14)
    flipped = np.flip(image, axis=-1)  # negative strides
    read_only = image.copy()
    read_only.flags.writeable = False
    assert torch.allclose(ssim(flipped, flipped.copy(), 4096.0), torch.ones(2, dtype=torch.float64))
    assert torch.equal(mse(read_only, image), torch.zeros(2, dtype=torch.float64))
    mask = image > 2048
    assert torch.allclose(mae(mask, np.zeros_like(mask)), torch.from_numpy(mask.mean(axis=(1, 2, 3))))
    assert ssim(mask, mask, 1.0).tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="must hold numbers"):
        mse(np.full((1, 1, 4, 4), "a"), np.full((1, 1, 4, 4), "a"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_input_is_computed_on_cuda_with_the_same_values(gray_256):
    rng = np.random.default_rng(17)
    target = gray_256 / 255.0
    pred = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    p, t = torch.from_numpy(pred).float().cuda(), torch.from_numpy(target).float().cuda()
    for function in (ssim, ms_ssim, psnr):
        on_cuda = function(p, t, 1.0)
        assert on_cuda.device.type == "cuda" and on_cuda.dtype == torch.float64
        assert torch.allclose(on_cuda.cpu(), function(p.cpu(), t.cpu(), 1.0), rtol=0, atol=1e-12)


def test_float32_input_is_computed_in_float64(ct_hu):
    pred = degrade(ct_hu, np.random.default_rng(15), noise=10.0)[None, None]
    data_range = float(ct_hu.max() - ct_hu.min())
    from_float32 = ssim(pred.astype(np.float32), ct_hu.astype(np.float32)[None, None], data_range)
    expected = skimage_ssim(pred[0, 0].astype(np.float32).astype(np.float64), ct_hu, data_range)
    assert abs(from_float32.item() - expected) < 1e-9


def test_mismatched_or_wrong_shapes_raise():
    a = torch.zeros(2, 1, 32, 32)
    for function, extra in ((mse, ()), (mae, ()), (nmse, ()), (psnr, (1.0,)), (ssim, (1.0,)), (ms_ssim, (1.0,))):
        with pytest.raises(ValueError, match="same shape"):
            function(a, torch.zeros(2, 1, 32, 31), *extra)
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            function(a[0], a[0], *extra)  # no batch axis
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            function(a[None, None], a[None, None], *extra)
    with pytest.raises(ValueError, match="at least one channel"):
        mse(torch.zeros(2, 0, 32, 32), torch.zeros(2, 0, 32, 32))
    with pytest.raises(ValueError, match="real-valued"):
        mse(torch.zeros(1, 1, 4, 4, dtype=torch.complex64), torch.zeros(1, 1, 4, 4, dtype=torch.complex64))
    with pytest.raises(TypeError, match="torch.Tensor or a numpy.ndarray"):
        mse([[[[0.0]]]], a)


def test_data_range_is_required_and_validated():
    a = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    for function in (psnr, ssim, ms_ssim):
        with pytest.raises(TypeError):
            function(a, a)
        for bad in (0, -1.0, float("nan"), float("inf"), True, "1", torch.ones(2)):
            with pytest.raises(ValueError, match="data_range"):
                function(a, a, bad)
        assert function(a * 0.5, a, torch.tensor(2.0)).shape == (1,)
    assert torch.equal(ssim(a * 0.5, a, np.float32(2.0)), ssim(a * 0.5, a, 2))


def test_ms_ssim_rejects_bad_weights():
    a = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    for bad in ((), (0.5, -0.1), (float("nan"),), (0.0, 0.0), "abc"):
        with pytest.raises(ValueError, match="weights"):
            ms_ssim(a, a, 1.0, weights=bad)
    with pytest.raises(ValueError, match="weights are all zero"):  # 64 px: 3 scales, nothing to rescale
        ms_ssim(a, a, 1.0, weights=(0.0, 0.0, 0.0, 1.0))
