"""Evaluation profiles against the published code they reproduce, run here on real images.

References (vendored under tests/support/refs, MIT, pinned commits): fastMRI's
``fastmri/evaluate.py`` metric functions and SynthRAD2025's ``image_metrics.py``
``ImageMetrics().score_patient``. Images that ship offline: pydicom's CT (in HU) and MR,
nibabel's anatomical.nii and the two frames of example4d.nii.gz, scikit-image's samples;
distorted by seeded noise, blur, shifts and intensity scaling; masks from a body threshold.
Pure: no database, no Django.
"""

import functools
import math
import os

import nibabel as nib
import nibabel.testing
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.data
from pydicom import examples
from pydicom.pixels import apply_modality_lut
from scipy.signal import fftconvolve

from evaluation.metrics import catalog, pixel, profiles
from tests.support.refs import fastmri_evaluate
from tests.support.refs.synthrad2025_image_metrics import ImageMetrics

RTOL = 1e-6


# --------------------------------------------------------------------------------------------
# Real images, as plain cached functions (the measurement in the report reuses them)


@functools.cache
def ct_slice_hu():
    """pydicom's CT_small slice in HU, (128, 128), float64."""
    ds = examples.ct
    return apply_modality_lut(ds.pixel_array, ds).astype(np.float64)


@functools.cache
def mr_slice():
    """pydicom's MR_small slice, (64, 64), float64 (non-negative magnitudes)."""
    return examples.mr.pixel_array.astype(np.float64)


@functools.cache
def anatomical():
    """nibabel's anatomical.nii, (33, 41, 25), float64 (non-negative MR intensities)."""
    return nib.load(os.path.join(nibabel.testing.data_path, "anatomical.nii")).get_fdata()


@functools.cache
def example4d_frames():
    """The two frames of nibabel's example4d.nii.gz, slices first: (24, 128, 96) each."""
    frames = nib.load(os.path.join(nibabel.testing.data_path, "example4d.nii.gz")).get_fdata()
    return frames[..., 0].transpose(2, 0, 1), frames[..., 1].transpose(2, 0, 1)


def to_hu(volume, low=-1024.0, high=1800.0):
    """Map a volume's range linearly onto [low, high] HU (a CT-like intensity scale)."""
    span = volume.max() - volume.min()
    return low + (volume - volume.min()) * ((high - low) / span)


@functools.cache
def ct_volume(depth):
    """A CT volume in HU built from pydicom's CT slice: slice k shifted by (0.4k, -0.25k) voxels."""
    ct = ct_slice_hu()
    return np.stack([ndi.shift(ct, (0.4 * k, -0.25 * k), order=1, mode="nearest") for k in range(depth)])


def body_mask(reference_hu):
    """The body: voxels above −500 HU, holes filled, one voxel of erosion."""
    body = ndi.binary_fill_holes(reference_hu > -500)
    return ndi.binary_erosion(body, iterations=1)


def distortions(reference, rng, *, noise):
    """(name, prediction) pairs: noise, blur, a shift, intensity scaling, and all of them."""
    return [
        ("noise", reference + rng.normal(0.0, noise, reference.shape)),
        ("blur", ndi.gaussian_filter(reference, 1.0)),
        ("shift", np.roll(reference, (1, -2), axis=(-2, -1))),
        ("scale", 1.1 * reference + 0.05 * noise),
        (
            "all",
            0.95 * ndi.gaussian_filter(np.roll(reference, 1, axis=-1), 0.7) + rng.normal(0.0, noise, reference.shape),
        ),
    ]


@functools.cache
def fastmri_cases():
    """(name, prediction, reference): 2-D and 3-D magnitude images, each distorted."""
    rng = np.random.default_rng(15)
    photos = np.stack(
        [skimage.data.camera()[::2, ::2], skimage.data.moon()[::2, ::2], skimage.data.coins()[20:276, 64:320]]
    ).astype(np.float64)
    frame0, frame1 = example4d_frames()
    references = {
        "camera": skimage.data.camera().astype(np.float64),
        "shepp_logan": skimage.data.shepp_logan_phantom(),
        "mr_slice": mr_slice(),
        "ct_slice_hu": ct_slice_hu(),  # negative values: fastMRI still takes max() as the peak
        "photos_volume": photos,
        "anatomical": anatomical(),
        "example4d": frame0,
    }
    cases = [("example4d_second_frame", frame1, frame0)]
    for name, reference in references.items():
        noise = 0.05 * float(reference.std())
        cases += [
            (f"{name}/{kind}", prediction, reference) for kind, prediction in distortions(reference, rng, noise=noise)
        ]
    return cases


@functools.cache
def synthrad_cases():
    """(name, prediction, reference, mask) in HU; volumes under and over 97 voxels per axis."""
    rng = np.random.default_rng(2025)
    frame0, frame1 = example4d_frames()
    every = ("noise", "blur", "shift", "scale", "all")
    references = {  # name: (reference, the distortions tested; the larger volumes take a few)
        "ct_volume_12": (ct_volume(12), every),
        "ct_volume_100": (ct_volume(100), ("all", "scale")),  # every axis >= 97: no padding
        "anatomical_hu": (to_hu(anatomical()), every),
        "example4d_hu": (to_hu(frame0), every),
        "anatomical_wide": (to_hu(anatomical(), -1500.0, 4000.0), ("all", "scale")),  # beyond the clipping range
    }
    cases = [("example4d_second_frame", to_hu(frame1), to_hu(frame0), body_mask(to_hu(frame0)))]
    for name, (reference, kinds) in references.items():
        mask = body_mask(reference)
        for kind, prediction in distortions(reference, rng, noise=30.0):
            if kind in kinds:
                cases.append((f"{name}/{kind}", prediction, reference, mask))
    cases.append(("ct_volume_12/beyond_range", 2.2 * ct_volume(12) + 500.0, ct_volume(12), body_mask(ct_volume(12))))
    return cases


def fastmri_reference(prediction, reference):
    """fastMRI's published functions (gt = reference), on float64 volumes."""
    gt, pred = np.asarray(reference, np.float64), np.asarray(prediction, np.float64)
    if gt.ndim == 2:
        gt, pred = gt[None], pred[None]
    return {
        "nmse": float(fastmri_evaluate.nmse(gt, pred)),
        "psnr": float(fastmri_evaluate.psnr(gt, pred)),
        "ssim": float(fastmri_evaluate.ssim(gt, pred)[0]),
    }


def synthrad_reference(prediction, reference, mask):
    """SynthRAD2025's published score_patient (their MS-SSIM needs a mask: None -> all ones)."""
    gt, pred = np.asarray(reference, np.float64), np.asarray(prediction, np.float64)
    mask = np.ones(gt.shape) if mask is None else mask
    return ImageMetrics().score_patient(gt, pred, mask)


def relative_differences(ours, theirs):
    return {key: 0.0 if ours[key] == theirs[key] else abs(ours[key] - theirs[key]) / abs(theirs[key]) for key in theirs}


def assert_matches(ours, theirs):
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert isinstance(ours[key], float)
        assert ours[key] == pytest.approx(value, rel=RTOL, abs=0), (key, ours[key], value)


# --------------------------------------------------------------------------------------------
# fastMRI


@pytest.mark.parametrize("case", fastmri_cases(), ids=lambda case: case[0])
def test_fastmri_matches_published_code(case):
    _, prediction, reference = case
    ours = profiles.evaluate("fastmri", prediction, reference)
    assert_matches(ours, fastmri_reference(prediction, reference))
    assert 0 < ours["ssim"] < 1 and ours["nmse"] > 0


def test_fastmri_integer_and_float32_inputs_are_computed_in_float64():
    reference = anatomical().astype(np.int16)
    prediction = (reference * 0.9 + 7).astype(np.int16)  # int16 differences would wrap in the published code
    expected = fastmri_reference(prediction.astype(np.float64), reference.astype(np.float64))
    assert_matches(profiles.evaluate("fastmri", prediction, reference), expected)
    as_float32 = profiles.evaluate("fastmri", prediction.astype(np.float32), reference.astype(np.float32))
    assert as_float32 == profiles.evaluate("fastmri", prediction, reference)


def test_fastmri_2d_image_is_a_one_slice_volume():
    reference = mr_slice()
    prediction = ndi.gaussian_filter(reference, 1.0)
    assert profiles.evaluate("fastmri", prediction, reference) == profiles.evaluate(
        "fastmri", prediction[None], reference[None]
    )


def test_fastmri_identical_volume_gives_infinite_psnr_and_ssim_one():
    values = profiles.evaluate("fastmri", anatomical(), anatomical())
    assert values == {"nmse": 0.0, "psnr": math.inf, "ssim": pytest.approx(1.0, abs=1e-12)}


def test_fastmri_ssim_is_not_ours():
    """The point of profiles: fastMRI's SSIM (7 × 7 uniform, max) differs from ours (Gaussian, max − min)."""
    reference = ct_slice_hu()
    prediction = ndi.gaussian_filter(reference, 1.0)
    fastmri_ssim = profiles.evaluate("fastmri", prediction, reference)["ssim"]
    medgen_ssim = profiles.evaluate("medgen", prediction, reference)["ssim"]
    assert abs(fastmri_ssim - medgen_ssim) > 0.01


def test_fastmri_refuses_a_mask_a_data_range_a_zero_peak_and_tiny_slices():
    image = mr_slice()
    with pytest.raises(ValueError, match="takes no mask"):
        profiles.evaluate("fastmri", image, image, mask=image > 0)
    with pytest.raises(ValueError, match="data_range"):
        profiles.evaluate("fastmri", image, image, data_range=255.0)
    with pytest.raises(ValueError, match="maximum is 0"):
        profiles.evaluate("fastmri", image, image - image.max())
    with pytest.raises(ValueError, match="at least 7 × 7"):
        profiles.evaluate("fastmri", image[:, :6], image[:, :6])
    with pytest.raises(ValueError, match=r"\(D, H, W\)"):
        profiles.evaluate("fastmri", image[None, None], image[None, None])


# --------------------------------------------------------------------------------------------
# SynthRAD2025


@pytest.mark.parametrize("case", synthrad_cases(), ids=lambda case: case[0])
def test_synthrad2025_matches_published_code(case):
    _, prediction, reference, mask = case
    ours = profiles.evaluate("synthrad2025", prediction, reference, mask)
    assert_matches(ours, synthrad_reference(prediction, reference, mask))
    assert 0 < ours["ms_ssim"] < 1 and ours["mae"] > 0


def test_synthrad2025_mask_none_is_every_voxel_inside():
    reference = to_hu(anatomical())
    prediction = ndi.gaussian_filter(reference, 1.0)
    ours = profiles.evaluate("synthrad2025", prediction, reference)
    assert ours == profiles.evaluate("synthrad2025", prediction, reference, np.ones(reference.shape, bool))
    assert_matches(ours, synthrad_reference(prediction, reference, None))


def test_synthrad2025_boolean_and_non_negative_masks_agree():
    reference = to_hu(example4d_frames()[0])
    prediction = to_hu(example4d_frames()[1])
    inside = body_mask(reference)
    labels = np.where(inside, np.where(reference > 0, 2.5, 1.0), 0.0)  # label values > 0: inside
    expected = profiles.evaluate("synthrad2025", prediction, reference, inside)
    assert profiles.evaluate("synthrad2025", prediction, reference, inside.astype(np.uint8)) == expected
    assert profiles.evaluate("synthrad2025", prediction, reference, labels) == expected
    assert_matches(expected, synthrad_reference(prediction, reference, labels))
    assert expected != profiles.evaluate("synthrad2025", prediction, reference)  # the mask matters


def test_synthrad2025_integer_and_float32_inputs_are_computed_in_float64():
    reference = ct_volume(12).round().astype(np.int16)
    prediction = (ndi.gaussian_filter(ct_volume(12), 1.0)).round().astype(np.int16)
    mask = body_mask(reference)
    expected = synthrad_reference(prediction.astype(np.float64), reference.astype(np.float64), mask)
    assert_matches(profiles.evaluate("synthrad2025", prediction, reference, mask), expected)
    as_float32 = profiles.evaluate("synthrad2025", prediction.astype(np.float32), reference.astype(np.float32), mask)
    assert as_float32 == profiles.evaluate("synthrad2025", prediction, reference, mask)


def test_synthrad2025_clips_psnr_and_ms_ssim_but_not_mae():
    reference = ct_volume(12)
    prediction = reference.copy()
    prediction[0, 0, 0] = 10_000.0  # beyond 3071 HU; with every voxel inside
    values = profiles.evaluate("synthrad2025", prediction, reference)
    assert values["mae"] == pytest.approx((10_000.0 - reference[0, 0, 0]) / reference.size, rel=1e-12)
    clipped = prediction.copy()
    clipped[0, 0, 0] = 3071.0
    same = profiles.evaluate("synthrad2025", clipped, reference)
    assert values["psnr"] == same["psnr"] and values["ms_ssim"] == same["ms_ssim"]


def test_synthrad2025_identical_volume():
    reference = ct_volume(12)
    values = profiles.evaluate("synthrad2025", reference, reference, body_mask(reference))
    assert values == {"mae": 0.0, "psnr": math.inf, "ms_ssim": pytest.approx(1.0, abs=1e-12)}


@pytest.mark.parametrize("length", [2, 7, 96, 97, 101])
def test_synthrad2025_downsampling_is_their_fftconvolve(length):
    """Their `fftconvolve(x, ones((2, 2, 2)) / 8, mode="same")[::2, ::2, ::2]`: first samples paired with a zero."""
    rng = np.random.default_rng(length)
    volume = rng.uniform(0, 4095, (length, 5, 6))
    theirs = fftconvolve(volume, np.ones((2, 2, 2)) / 8, mode="same")[::2, ::2, ::2]
    ours = profiles._halve(volume)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-9)
    assert ours[0, 0, 0] == pytest.approx(volume[0, 0, 0] / 8)  # averaged with seven zeros


def test_synthrad2025_refusals():
    reference = ct_volume(12)
    mask = body_mask(reference)
    with pytest.raises(ValueError, match=r"takes \(D, H, W\) images"):
        profiles.evaluate("synthrad2025", reference[0], reference[0])
    with pytest.raises(ValueError, match="mask must have the images' shape"):
        profiles.evaluate("synthrad2025", reference, reference, mask[:, :-1])
    with pytest.raises(ValueError, match="non-negative"):
        profiles.evaluate("synthrad2025", reference, reference, np.where(mask, 1.0, -1.0))
    with pytest.raises(ValueError, match="selects no voxel"):
        profiles.evaluate("synthrad2025", reference, reference, np.zeros(reference.shape))
    tiny = np.zeros(reference.shape, bool)
    tiny[5, 63, 63] = True  # lost when the mask is subsampled
    with pytest.raises(ValueError, match="no voxel left at MS-SSIM scale 2"):
        profiles.evaluate("synthrad2025", reference, reference, tiny)
    nan_mask = mask.astype(np.float64)
    nan_mask[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="mask holds non-finite values"):
        profiles.evaluate("synthrad2025", reference, reference, nan_mask)
    with pytest.raises(ValueError, match="data_range"):
        profiles.evaluate("synthrad2025", reference, reference, data_range=4095.0)


# --------------------------------------------------------------------------------------------
# medgen: our own pixel metrics, one profile among others


def test_medgen_is_the_pixel_library():
    reference = to_hu(anatomical())
    prediction = ndi.gaussian_filter(reference, 1.0) + np.random.default_rng(0).normal(0, 20, reference.shape)
    data_range = float(reference.max() - reference.min())
    values = profiles.evaluate("medgen", prediction, reference)
    assert tuple(values) == catalog.DEFAULT_PIXEL_METRICS
    batch = (1, 1, *reference.shape)
    p, t = prediction.reshape(batch), reference.reshape(batch)
    assert values["ssim"] == float(pixel.ssim(p, t, data_range)[0])
    assert values["psnr"] == float(pixel.psnr(p, t, data_range)[0])
    assert values["ms_ssim"] == float(pixel.ms_ssim(p, t, data_range)[0])
    assert values["mae"] == pytest.approx(np.abs(prediction - reference).mean(), rel=1e-12)
    assert values["nmse"] == pytest.approx(((prediction - reference) ** 2).sum() / (reference**2).sum(), rel=1e-12)
    with_range = profiles.evaluate("medgen", prediction, reference, data_range=4095.0)
    assert with_range["psnr"] == pytest.approx(values["psnr"] + 20 * math.log10(4095.0 / data_range), rel=1e-12)


def test_medgen_refuses_a_mask_and_a_constant_reference():
    image = mr_slice()
    with pytest.raises(ValueError, match="takes no mask"):
        profiles.evaluate("medgen", image, image, mask=image > 0)
    with pytest.raises(ValueError, match="constant"):
        profiles.evaluate("medgen", image, np.ones_like(image))


# --------------------------------------------------------------------------------------------
# Shared input checks and the registry


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_nan_or_infinity_anywhere_raises(name):
    reference = ct_volume(12) + 1100.0  # positive, so every profile accepts it
    for bad in (np.nan, np.inf):
        broken = reference.copy()
        broken[3, 40, 40] = bad
        with pytest.raises(ValueError, match="prediction holds non-finite values"):
            profiles.evaluate(name, broken, reference)
        with pytest.raises(ValueError, match="reference holds non-finite values"):
            profiles.evaluate(name, reference, broken)


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_shape_mismatch_raises(name):
    reference = ct_volume(12) + 1100.0
    with pytest.raises(ValueError, match=r"same shape; got \(12, 128, 127\) and \(12, 128, 128\)"):
        profiles.evaluate(name, reference[:, :, :-1], reference)


def test_unknown_profile_and_non_numeric_input():
    image = mr_slice()
    with pytest.raises(ValueError, match="unknown evaluation profile 'brats'; known profiles: medgen, fastmri"):
        profiles.evaluate("brats", image, image)
    with pytest.raises(TypeError, match="real numbers"):
        profiles.evaluate("fastmri", image.astype(str), image)


def test_inputs_are_not_modified():
    reference = ct_volume(12)
    prediction = ndi.gaussian_filter(reference, 1.0)
    mask = body_mask(reference)
    copies = [reference.copy(), prediction.copy(), mask.copy()]
    profiles.evaluate("synthrad2025", prediction, reference, mask)
    profiles.evaluate("fastmri", prediction + 1100, reference + 1100)
    for original, copy in zip([reference, prediction, mask], copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_registry_names_every_profile_and_its_source():
    assert profiles.DEFAULT_PROFILE == "medgen"
    assert profiles.get("fastmri").keys == ("nmse", "psnr", "ssim")
    assert profiles.get("synthrad2025").keys == ("mae", "psnr", "ms_ssim")
    assert profiles.FASTMRI_COMMIT in profiles.get("fastmri").definition_url
    assert profiles.SYNTHRAD2025_COMMIT in profiles.get("synthrad2025").definition_url
    for profile in profiles.PROFILES.values():
        assert set(profile.directions) == set(profile.keys)
        assert set(profile.directions.values()) <= {catalog.HIGHER, catalog.LOWER}
    assert profiles.get("medgen").version == "1+psnr1.ssim1.ms_ssim1.nmse1.mae1.mse1"
