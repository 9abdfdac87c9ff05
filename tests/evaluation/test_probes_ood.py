"""The radiomics OOD detector: patch features, Mahalanobis distances, marks (no Django)."""

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from demo import phantom
from evaluation.metrics import radiomics
from evaluation.probes import ood


def _slices(seeds):
    return [phantom.make_brain_slice(np.random.default_rng(seed), size=96)["t2"][None] for seed in seeds]


def test_original_features_are_the_original_columns_of_radiomics_features():
    patches = np.random.default_rng(0).normal(size=(5, 11, 11))
    full, names = radiomics.radiomics_features(patches)
    values, original = radiomics.original_features(patches)
    assert original == [n for n in names if n.startswith("original_")] == names[: len(original)]
    np.testing.assert_array_equal(values, full[:, : len(original)])
    assert set(ood.FEATURES) <= set(original)


def test_patch_features_are_the_radiomics_modules():
    rng = np.random.default_rng(4)
    patches = np.concatenate(
        [
            rng.normal(size=(20, 11, 11)),
            rng.integers(0, 3, size=(5, 11, 11)).astype(float),  # ties, few grey levels
            np.full((2, 11, 11), 0.7),  # constant (background)
            _slices([3100])[0][:, 40:51, 30:41],  # a phantom patch
        ]
    )
    values, names = radiomics.original_features(patches)
    expected = values[:, [names.index(name) for name in ood.FEATURES]]
    np.testing.assert_allclose(ood.patch_features(patches), expected, rtol=1e-9, atol=1e-12)


def test_mahalanobis_distances_agree_with_scipy():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) + [1.0, -2.0, 0.5, 10.0]
    reference = ood.fit_reference(features)
    x = rng.normal(size=(7, 4)) * 3
    z = (x - reference.centre) / reference.scale
    expected = [mahalanobis(row, np.zeros(4), reference.inverse_covariance) for row in z]
    np.testing.assert_allclose(reference.distances(x), expected, rtol=1e-12)
    # the shrunk covariance is the z-scored features' covariance + RIDGE × its diagonal
    zf = (features - features.mean(0)) / features.std(0)
    cov = np.cov(zf, rowvar=False)
    np.testing.assert_allclose(np.linalg.inv(reference.inverse_covariance), cov + ood.RIDGE * np.diag(np.diag(cov)))
    with pytest.raises(ValueError, match="at least two"):
        ood.fit_reference(features[:1])


def test_the_patch_grid_covers_the_image_to_its_edges():
    image = np.arange(30 * 23, dtype=float).reshape(30, 23)
    patches, centres = ood.patch_grid(image, patch=11, stride=5)
    rows, cols = sorted({r for r, _ in centres}), sorted({c for _, c in centres})
    assert rows == [5, 10, 15, 20, 24] and cols == [5, 10, 15, 17]
    r, c = centres[-1]
    np.testing.assert_array_equal(patches[-1], image[r - 5 : r + 6, c - 5 : c + 6])
    with pytest.raises(ValueError, match="smaller than the patch"):
        ood.patch_grid(np.zeros((8, 40)))


def test_a_pasted_bright_blob_ranks_first():
    reference = ood.reference_from_images(_slices(range(3000, 3006)))
    (output,) = _slices([3010])
    rows, cols = np.mgrid[0:96, 0:96]
    blob = np.exp(-((rows - 40) ** 2 + (cols - 57) ** 2) / (2 * 2.0**2))
    marks = ood.ood_marks([output + 1.5 * blob[None]], reference)
    assert len(marks) == 5 and [m[2] for m in marks] == sorted((m[2] for m in marks), reverse=True)
    row, col, rating = marks[0]
    assert abs(row - 40) <= 3 and abs(col - 57) <= 3
    # the clean slice scores lower there than the pasted one
    centres, clean = ood.ood_scores([output], reference)
    at = int(np.argmin(np.abs(centres - [row, col]).sum(axis=1)))
    assert clean[at] < rating / 2


def test_marks_suppress_their_neighbours():
    centres = np.array([[5, 5], [5, 10], [20, 20], [5, 8], [40, 40]])
    scores = np.array([3.0, 2.5, 1.0, 4.0, 0.5])
    marks = ood.marks_from_scores(centres, scores, separation=4, per_case=3)
    assert marks == [(5, 8, 4.0), (20, 20, 1.0), (40, 40, 0.5)]
