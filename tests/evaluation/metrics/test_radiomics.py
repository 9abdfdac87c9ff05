"""Radiomics features (evaluation.metrics.radiomics) against the IBSI-compliant reference, mirp 2.7.0.

Every implemented feature is compared with mirp's value on real images (pydicom's CT and MR test
slices, skimage's camera, a slice of nibabel's anatomical NIfTI, a seeded random image and a 3D
volume) to 1e-6 relative. mirp is slow (about a second per image), so its values are computed once
per module. Comparison: ``|ours - mirp| <= 1e-6 * |mirp| + ABS_TOL`` with ``ABS_TOL = 1e-12``, which
only matters where mirp's value is ~0 (e.g. a skewness or cluster shade close to zero).
"""

import logging
import math
import os
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

from evaluation.metrics import radiomics as rad
from evaluation.metrics.radiomics import FEATURE_VERSION, SETTINGS, feature_names, radiomics_features

REL_TOL = 1e-6
ABS_TOL = 1e-12
FAMILIES = ("firstorder", "histogram", "glcm", "glrlm")
MIRP_FAMILIES = ["statistics", "intensity_histogram", "glcm", "glrlm"]


# --------------------------------------------------------------------------------------------
# mirp reference (also used by bench/bench_radiomics.py)
# --------------------------------------------------------------------------------------------


@contextmanager
def _mirp_spacing(spacing):
    """mirp takes no spacing for in-memory numpy images (it assumes 1.0): supply ours."""
    from mirp._data_import.numpy_file import ImageNumpyFile

    original = ImageNumpyFile._complete_image_spacing

    def complete_image_spacing(self, force=False):
        if self.image_spacing is None:
            self.image_spacing = tuple(float(s) for s in spacing)

    ImageNumpyFile._complete_image_spacing = complete_image_spacing
    try:
        yield
    finally:
        ImageNumpyFile._complete_image_spacing = original


def mirp_reference(image: np.ndarray, spacing) -> dict[str, float]:
    """mirp's features of one 2D slice (H, W) or 3D volume (D, H, W), whole image as the ROI.

    Same settings as ``SETTINGS``: fixed bin number 32, GLCM distance 1, 2D slice-merged
    (3D volume-merged) texture matrices, LoG sigma 2-5 mm with truncation 4 and the mirror boundary.
    The image modality is left unset (mirp's "generic"), so intensities are used as given.
    """
    import mirp

    by_slice = image.ndim == 2
    spatial = SETTINGS["texture_aggregation_2d"] if by_slice else SETTINGS["texture_aggregation_3d"]
    logging.disable(logging.CRITICAL)
    try:
        with _mirp_spacing(spacing), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables = mirp.extract_features(
                image=np.asarray(image, dtype=np.float64),
                mask=np.ones(image.shape, dtype=bool),
                by_slice=by_slice,
                base_feature_families=MIRP_FAMILIES,
                base_discretisation_method="fixed_bin_number",
                base_discretisation_n_bins=SETTINGS["discretisation_n_bins"],
                glcm_distance=float(SETTINGS["glcm_distance"]),
                glcm_spatial_method=spatial,
                glrlm_spatial_method=spatial,
                response_map_feature_families=MIRP_FAMILIES,
                response_map_discretisation_method="fixed_bin_number",
                response_map_discretisation_n_bins=SETTINGS["discretisation_n_bins"],
                filter_kernels=["laplacian_of_gaussian"],
                laplacian_of_gaussian_sigma=list(SETTINGS["log_sigmas_mm"]),
                laplacian_of_gaussian_kernel_truncate=SETTINGS["log_truncate"],
                laplacian_of_gaussian_boundary_condition=SETTINGS["log_boundary_condition"],
            )
    finally:
        logging.disable(logging.NOTSET)
    row = tables[0].iloc[0]
    return {str(k): v for k, v in row.items()}


def mirp_column(name: str, three_d: bool = False) -> str:
    """mirp's column for one of our feature names, e.g. log_sigma_2mm_glcm_contrast ->
    log_s_2.0_cm_contrast_d1_2d_s_mrg_fbn_n32."""
    n_bins = SETTINGS["discretisation_n_bins"]
    spatial = "3d_v_mrg" if three_d else "2d_s_mrg"
    family_map = {
        "firstorder": ("stat", ""),
        "histogram": ("ih", f"_fbn_n{n_bins}"),
        "glcm": ("cm", f"_d{SETTINGS['glcm_distance']}_{spatial}_fbn_n{n_bins}"),
        "glrlm": ("rlm", f"_{spatial}_fbn_n{n_bins}"),
    }
    if name.startswith("original_"):
        prefix, rest = "", name[len("original_") :]
    else:
        sigma_part, rest = name[len("log_sigma_") :].split("_", 1)
        prefix = f"log_s_{float(sigma_part[:-2])}_"
    family, feature = rest.split("_", 1)
    abbr, suffix = family_map[family]
    return f"{prefix}{abbr}_{feature}{suffix}"


def mismatches(ours: np.ndarray, names: list[str], reference: dict[str, float], three_d: bool = False):
    """(name, ours, mirp) for every feature outside the tolerance."""
    bad = []
    for value, name in zip(ours, names, strict=True):
        expected = float(reference[mirp_column(name, three_d)])
        if not abs(value - expected) <= REL_TOL * abs(expected) + ABS_TOL:
            bad.append((name, float(value), expected))
    return bad


# --------------------------------------------------------------------------------------------
# Real test images
# --------------------------------------------------------------------------------------------


def _ct():
    from pydicom import examples

    ds = examples.ct
    image = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return image, tuple(float(v) for v in ds.PixelSpacing)


def _mr():
    from pydicom import examples

    ds = examples.mr
    return ds.pixel_array.astype(np.float64), tuple(float(v) for v in ds.PixelSpacing)


def _camera():
    from skimage import data

    image = data.camera().astype(np.float64)  # bundled with skimage, no download
    return image.reshape(128, 4, 128, 4).mean(axis=(1, 3)), (1.0, 1.0)


def _anatomical_volume():
    import nibabel as nib
    from nibabel.testing import data_path

    img = nib.load(os.path.join(data_path, "anatomical.nii"))
    volume = np.transpose(np.asarray(img.dataobj, dtype=np.float64), (2, 1, 0))  # (z, y, x)
    zooms = img.header.get_zooms()
    return volume, (float(zooms[2]), float(zooms[1]), float(zooms[0]))


def _nifti_slice():
    volume, spacing = _anatomical_volume()
    return volume[12], spacing[1:]  # (41, 33): non-square, 2 mm


def _random():
    rng = np.random.default_rng(20240521)
    image = rng.normal(100.0, 30.0, size=(72, 96)) + np.linspace(0.0, 50.0, 96)[None, :]
    return image, (0.8, 1.25)  # anisotropic spacing: mirp takes the larger voxel sigma


IMAGES = {"ct": _ct, "mr": _mr, "camera": _camera, "nifti": _nifti_slice, "random": _random}


@pytest.fixture(scope="module")
def compared():
    """Per image: (our feature row, mirp's feature table); mirp is computed once per module."""
    pytest.importorskip("mirp")
    out = {}
    for key, load in IMAGES.items():
        image, spacing = load()
        ours, names = radiomics_features(image[None], spacing)
        out[key] = (ours[0], names, mirp_reference(image, spacing))
    return out


# --------------------------------------------------------------------------------------------
# Agreement with mirp
# --------------------------------------------------------------------------------------------


def _family_mismatches(row, names, reference, family, three_d=False):
    selected = [i for i, n in enumerate(names) if f"_{family}_" in n]
    assert len(selected) == 5 * len(dict(rad._FAMILIES)[family])
    return mismatches(row[selected], [names[i] for i in selected], reference, three_d)


@pytest.mark.parametrize("image", list(IMAGES))
def test_firstorder_features_match_mirp(compared, image):
    row, names, reference = compared[image]
    assert _family_mismatches(row, names, reference, "firstorder") == []


@pytest.mark.parametrize("image", list(IMAGES))
def test_intensity_histogram_features_match_mirp(compared, image):
    row, names, reference = compared[image]
    assert _family_mismatches(row, names, reference, "histogram") == []


@pytest.mark.parametrize("image", list(IMAGES))
def test_glcm_features_match_mirp(compared, image):
    row, names, reference = compared[image]
    assert _family_mismatches(row, names, reference, "glcm") == []


@pytest.mark.parametrize("image", list(IMAGES))
def test_glrlm_features_match_mirp(compared, image):
    row, names, reference = compared[image]
    assert _family_mismatches(row, names, reference, "glrlm") == []


def test_every_feature_is_compared_with_a_mirp_feature(compared):
    row, names, reference = compared["ct"]
    assert all(mirp_column(n) in reference for n in names)
    assert len(names) == len(set(mirp_column(n) for n in names))


def test_3d_volume_features_match_mirp():
    pytest.importorskip("mirp")
    volume, spacing = _anatomical_volume()  # (25, 41, 33), 2 mm
    ours, names = radiomics_features(volume[None], spacing)
    assert ours.shape == (1, len(feature_names()))
    assert mismatches(ours[0], names, mirp_reference(volume, spacing), three_d=True) == []


def test_constant_image_matches_mirp_except_inverse_variance():
    """A constant image: mirp's values (skewness 0, correlation 1, ...), except GLCM inverse
    variance, which mirp leaves NaN (no off-diagonal entries) and we report as 0 (the empty sum).
    Our LoG responses are exactly constant (c times the kernel sum, not 0 once truncated), so their
    texture features equal the original's; mirp's FFT leaves rounding noise in some of its LoG
    maps (e.g. sigma 2 mm), which its discretisation spreads over all bins, so those are not compared."""
    pytest.importorskip("mirp")
    image = np.full((32, 40), 7.5)
    ours, names = radiomics_features(image[None])
    assert np.isfinite(ours).all()
    reference = mirp_reference(image, (1.0, 1.0))
    compared = [i for i, n in enumerate(names) if n.startswith("original_") and not n.endswith("_glcm_inv_var")]
    assert mismatches(ours[0, compared], [names[i] for i in compared], reference) == []
    assert math.isnan(reference[mirp_column("original_glcm_inv_var")])
    values = dict(zip(names, ours[0], strict=True))
    for sigma in (2, 3, 4, 5):
        prefix = f"log_sigma_{sigma}mm"
        for family in ("histogram", "glcm", "glrlm"):
            for name in dict(rad._FAMILIES)[family]:
                assert values[f"{prefix}_{family}_{name}"] == values[f"original_{family}_{name}"]
        assert values[f"{prefix}_firstorder_var"] == 0.0
        kernel_sum = rad._log_kernel(float(sigma), (1.0, 1.0)).sum()
        assert values[f"{prefix}_firstorder_mean"] == pytest.approx(7.5 * kernel_sum)
    assert values["original_glcm_inv_var"] == 0.0


# --------------------------------------------------------------------------------------------
# API behaviour
# --------------------------------------------------------------------------------------------


def test_feature_names_are_stable_and_unique():
    names = feature_names()
    assert len(names) == len(set(names)) == 5 * sum(len(f) for _, f in rad._FAMILIES)
    assert names[0] == "original_firstorder_mean"
    assert "original_glcm_contrast" in names
    assert "log_sigma_2mm_firstorder_mean" in names
    assert "log_sigma_5mm_glrlm_rl_entr" == names[-1]
    assert [n.split("_firstorder_")[0] for n in names if n.endswith("_firstorder_mean")] == [
        "original",
        "log_sigma_2mm",
        "log_sigma_3mm",
        "log_sigma_4mm",
        "log_sigma_5mm",
    ]
    assert feature_names() == names
    assert isinstance(FEATURE_VERSION, str) and FEATURE_VERSION
    assert tuple(SETTINGS["log_sigmas_mm"]) == (2.0, 3.0, 4.0, 5.0)
    assert SETTINGS["discretisation_n_bins"] == 32


def _three_slices():
    ct, spacing = _ct()
    rng = np.random.default_rng(7)
    return np.stack([ct, ct[::-1].T + 50.0, rng.normal(size=ct.shape) * 200.0]), spacing


def test_batch_result_equals_per_image_results():
    images, spacing = _three_slices()
    batch, names = radiomics_features(images, spacing)
    assert batch.shape == (3, len(names)) and batch.dtype == np.float64
    for i in range(3):
        single, _ = radiomics_features(images[i : i + 1], spacing)
        np.testing.assert_allclose(batch[i], single[0], rtol=1e-9, atol=1e-12)
    chunked, _ = radiomics_features(images, spacing, chunk_size=1, num_threads=1)
    np.testing.assert_allclose(chunked, batch, rtol=1e-9, atol=1e-12)


def test_accepts_channel_axis_float32_and_torch_tensors():
    torch = pytest.importorskip("torch")
    images, spacing = _three_slices()
    images = images.astype(np.float32)
    expected, _ = radiomics_features(images, spacing)
    with_channel, _ = radiomics_features(images[:, None], spacing)
    from_torch, _ = radiomics_features(torch.from_numpy(images[:, None]), torch.tensor(spacing, dtype=torch.float64))
    np.testing.assert_array_equal(with_channel, expected)
    np.testing.assert_array_equal(from_torch, expected)


def test_spacing_changes_only_the_log_features():
    images, _ = _three_slices()
    a, names = radiomics_features(images[:1], (1.0, 1.0))
    b, _ = radiomics_features(images[:1], (0.5, 0.5))
    default, _ = radiomics_features(images[:1])
    np.testing.assert_array_equal(default, a)
    original = np.array([n.startswith("original_") for n in names])
    np.testing.assert_allclose(a[:, original], b[:, original], rtol=1e-12, atol=0)
    for sigma in (2, 3, 4, 5):
        log_cols = np.array([n.startswith(f"log_sigma_{sigma}mm_") for n in names])
        assert not np.allclose(a[:, log_cols], b[:, log_cols])
    # Half the spacing at sigma 4 mm is the same kernel (in pixels) as sigma 2 mm at the full spacing.
    s2 = [i for i, n in enumerate(names) if n.startswith("log_sigma_2mm_")]
    s4 = [i for i, n in enumerate(names) if n.startswith("log_sigma_4mm_")]
    c, _ = radiomics_features(images[:1], (2.0, 2.0))
    np.testing.assert_allclose(c[:, s4], a[:, s2], rtol=1e-9, atol=1e-9)


def test_per_image_spacing_equals_separate_calls():
    images, _ = _three_slices()
    spacing = np.array([[1.0, 1.0], [0.5, 0.7], [1.0, 1.0]])
    together, _ = radiomics_features(images, spacing)
    for i in range(3):
        alone, _ = radiomics_features(images[i : i + 1], spacing[i])
        np.testing.assert_allclose(together[i], alone[0], rtol=1e-9, atol=1e-12)


def test_texture_features_are_invariant_to_intensity_units():
    """Fixed bin number discretisation: histogram and texture features of a*x + b equal those of x
    (exactly, for a power-of-two scale and an integer image)."""
    image, spacing = _ct()
    a, names = radiomics_features(image[None], spacing)
    b, _ = radiomics_features((4.0 * image + 1024.0)[None], spacing)
    texture = np.array([("_firstorder_" not in n) for n in names])
    np.testing.assert_array_equal(a[:, texture], b[:, texture])
    assert not np.array_equal(a[:, ~texture], b[:, ~texture])


@pytest.mark.parametrize(
    "shape",
    [(128, 128), (2, 3, 4, 5, 6), (0, 16, 16), (3, 1, 16), (3, 16, 1), (2,)],
)
def test_bad_shape_raises_value_error(shape):
    with pytest.raises(ValueError, match="shape|empty|at least 2"):
        radiomics_features(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises_value_error(bad):
    images = np.ones((3, 16, 16))
    images[1, 4, 5] = bad
    with pytest.raises(ValueError, match=r"non-finite .*\[1\]"):
        radiomics_features(images)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.0, 1.0), (-1.0, 1.0), (np.nan, 1.0), np.ones((2, 2))])
def test_bad_spacing_raises_value_error(spacing):
    with pytest.raises(ValueError, match="spacing"):
        radiomics_features(np.random.default_rng(0).normal(size=(3, 16, 16)), spacing)


def test_non_numeric_input_raises_value_error():
    with pytest.raises(ValueError, match="real numbers"):
        radiomics_features(np.full((1, 4, 4), "a"))
    with pytest.raises(ValueError, match="real numbers"):
        radiomics_features(np.ones((1, 4, 4), dtype=complex))
