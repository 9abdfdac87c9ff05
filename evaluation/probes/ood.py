"""The radiomics out-of-distribution (OOD) detector of a probe run's outputs (no Django).

**Candidate regions.** A grid of square patches, ``PATCH_PX`` (11) px a side every ``STRIDE_PX`` (5) px (the last
row and column of patches flush with the image's edge), over each output (H, W); a patch's position is its centre
pixel (row, col).

**Features.** Of each patch, ``FEATURES``: IBSI first-order statistics on the native intensities (mean, variance,
skewness, excess kurtosis, 10th / 90th percentile, maximum: what a pasted bright or dark structure moves) and two
GLCM texture features (contrast, joint entropy; 32 grey levels over the patch's own range): the definitions of
``evaluation.metrics.radiomics`` (the FRD's features, original image; tested equal to ``original_features``),
computed for these nine only.

**Reference distribution.** The same features on the same grid of the *real references* of the test cases the probe
set was made from (``ProbeCase.source``): what a faithful output looks like, independent of the model scored (a
model's own control outputs would carry its hallucinations into the reference). At most ``REFERENCE_PATCHES``
patches (a seeded sample, the same number from each image). The features are z-scored by the reference, and the
covariance Σ of the z-scored reference features is shrunk towards its diagonal, ``Σ + RIDGE·diag(Σ)`` (finite for
constant background patches).

**Score.** A patch's Mahalanobis distance ``√((x − μ)ᵀ Σ⁻¹ (x − μ))`` (unitless, in reference SDs) from the
reference, averaged per position over the samples (at most ``MAX_SAMPLES``). The marks are the positions in
descending score, each suppressing the others within ``separation`` px (Chebyshev, as the map detectors' local
maxima), at most ``per_case`` a case, rated by the score: the (row, col, rating) format of
``scoring.marks_from_map``, scored by FROC in ``readerstudy.probe_detectors``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scoring import MARK_SEPARATION, MARKS_PER_CASE

PATCH_PX = 11
STRIDE_PX = 5
REFERENCE_PATCHES = 5000
MAX_SAMPLES = 4
RIDGE = 1e-3
FEATURES = (
    "original_firstorder_mean",
    "original_firstorder_var",
    "original_firstorder_skew",
    "original_firstorder_kurt",
    "original_firstorder_p10",
    "original_firstorder_p90",
    "original_firstorder_max",
    "original_glcm_contrast",
    "original_glcm_joint_entr",
)


def _starts(length: int, patch: int, stride: int) -> list[int]:
    if length < patch:
        raise ValueError(f"the image ({length} px) is smaller than the patch ({patch} px)")
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:
        starts.append(length - patch)
    return starts


def patch_grid(image, *, patch: int = PATCH_PX, stride: int = STRIDE_PX) -> tuple[np.ndarray, np.ndarray]:
    """Patches of a 2D image ((H, W) or (1, H, W)): (n, patch, patch) float64 and their centres (n, 2) int."""
    image = np.asarray(image, dtype=np.float64)
    image = image.reshape(image.shape[-2:])
    rows, cols = _starts(image.shape[0], patch, stride), _starts(image.shape[1], patch, stride)
    patches = np.stack([image[r : r + patch, c : c + patch] for r in rows for c in cols])
    centres = np.array([(r + patch // 2, c + patch // 2) for r in rows for c in cols], dtype=int)
    return patches, centres


N_GREY_LEVELS = 32
# Half the 2D Chebyshev-1 neighbourhood (radiomics' 2D directions; the sign is irrelevant, the GLCM is symmetric).
_DIRECTIONS = ((-1, -1), (-1, 0), (-1, 1), (0, -1))


def _grey_levels(x: np.ndarray) -> np.ndarray:
    """radiomics' fixed bin number discretisation of each patch (n, p, p) to levels 0..Ng−1 (0-based): Ng bins over
    the patch's own range, the maximum in the top bin, a constant patch in the middle level (ceil(Ng / 2))."""
    flat = x.reshape(len(x), -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    span = hi - lo
    t = np.subtract(flat, lo[:, None])
    t *= N_GREY_LEVELS * 1.0
    t /= np.where(span == 0, 1.0, span)[:, None]
    g = np.minimum(t.astype(np.int64), N_GREY_LEVELS - 1)
    g[span == 0] = -(-N_GREY_LEVELS // 2) - 1
    return g.reshape(x.shape)


def _glcm_contrast_entropy(x: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """GLCM contrast and joint entropy (log2) of patches (n, p, p): distance 1, symmetric, the four 2D directions
    merged into one matrix. With N neighbour pairs (all directions), the symmetric matrix holds each unordered
    pair {i, j} (i ≠ j) twice, as p_ij = p_ji = k_ij / 2N, and p_ii = k_ii / N; contrast = Σ (i − j)² p_ij is the
    mean of (a − b)² over the pairs."""
    n, h, w = x.shape
    g = _grey_levels(x)
    ng = N_GREY_LEVELS
    contrast, entropy = np.empty(n), np.empty(n)
    for start in range(0, n, chunk):
        part = g[start : start + chunk]
        m = len(part)
        base = (np.arange(m, dtype=np.int64) * ng * ng)[:, None]
        codes, squares, pairs = [], np.zeros(m), 0
        for dr, dc in _DIRECTIONS:
            a = part[:, max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)].reshape(m, -1)
            b = part[:, max(0, dr) : h - max(0, -dr), max(0, dc) : w - max(0, -dc)].reshape(m, -1)
            squares += ((a - b) ** 2).sum(axis=1)
            pairs += a.shape[1]
            codes.append(base + np.minimum(a, b) * ng + np.maximum(a, b))
        counts = np.bincount(np.concatenate(codes, axis=1).ravel(), minlength=m * ng * ng)
        where = np.flatnonzero(counts)
        k = counts[where].astype(np.float64)
        cell = where % (ng * ng)
        diagonal = cell // ng == cell % ng
        p = np.where(diagonal, k / pairs, k / (2.0 * pairs))
        terms = np.where(diagonal, 1.0, 2.0) * p * np.log2(p)
        contrast[start : start + m] = squares / pairs
        entropy[start : start + m] = -np.bincount(where // (ng * ng), weights=terms, minlength=m)
    return contrast, entropy


def patch_features(patches) -> np.ndarray:
    """``FEATURES`` of each patch (n, p, p): (n, len(FEATURES)) float64, in that order.

    The radiomics module's definitions (``radiomics.original_features``, equal to 1e-9 in the tests), computed for
    these nine features only: the full feature set's texture run lengths cost ~30× more on small patches."""
    x = np.asarray(patches, dtype=np.float64)
    flat = x.reshape(len(x), -1)
    mean = flat.mean(axis=1)
    d = flat - mean[:, None]
    d2 = d * d
    var = d2.mean(axis=1)
    sd = np.sqrt(var)
    safe = np.where(sd == 0, 1.0, sd)
    skew = np.where(sd == 0, 0.0, (d2 * d).mean(axis=1) / safe**3)
    kurt = np.where(sd == 0, 0.0, (d2 * d2).mean(axis=1) / safe**4 - 3.0)
    p10, p90 = np.percentile(flat, [10.0, 90.0], axis=1)
    contrast, entropy = _glcm_contrast_entropy(x)
    return np.stack([mean, var, skew, kurt, p10, p90, flat.max(axis=1), contrast, entropy], axis=1)


def mahalanobis(x, mean, inverse_covariance) -> np.ndarray:
    """Mahalanobis distances √((x − mean)ᵀ VI (x − mean)) of the rows of x (n, d) (or one (d,) vector)."""
    d = np.atleast_2d(np.asarray(x, dtype=np.float64)) - np.asarray(mean, dtype=np.float64)
    squared = np.einsum("ij,jk,ik->i", d, np.asarray(inverse_covariance, dtype=np.float64), d)
    return np.sqrt(np.maximum(squared, 0.0))


@dataclass(frozen=True)
class Reference:
    """The reference feature distribution: z-scoring (centre, scale) then a Gaussian (inverse covariance)."""

    centre: np.ndarray  # (d,) the reference features' mean
    scale: np.ndarray  # (d,) their SD (1 where constant)
    inverse_covariance: np.ndarray  # (d, d) of the z-scored features, shrunk
    n_patches: int

    def distances(self, features) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.centre) / self.scale
        return mahalanobis(z, np.zeros(len(self.centre)), self.inverse_covariance)


def fit_reference(features, *, ridge: float = RIDGE) -> Reference:
    """The reference distribution of feature rows (n, d), n ≥ 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"a reference needs at least two feature rows (n, d), not shape {features.shape}")
    centre = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (features - centre) / scale
    covariance = np.cov(z, rowvar=False)
    covariance = covariance + ridge * np.diag(np.maximum(np.diag(covariance), 1e-12))
    return Reference(centre, scale, np.linalg.inv(covariance), len(features))


def reference_from_images(images, *, max_patches: int = REFERENCE_PATCHES, seed: int = 0, **grid) -> Reference:
    """The reference distribution of the patch features of real images (each (H, W) or (1, H, W)): every grid
    patch, or a seeded sample of ⌈max_patches / images⌉ per image where there are more (drawn image by image, so
    that only the sample is held)."""
    images = list(images)
    if not images:
        raise ValueError("no reference image")
    rng = np.random.default_rng(seed)
    per_image = -(-max_patches // len(images))
    chosen = []
    for image in images:
        patches, _ = patch_grid(image, **grid)
        if len(patches) > per_image:
            patches = patches[np.sort(rng.choice(len(patches), size=per_image, replace=False))]
        chosen.append(patches)
    return fit_reference(patch_features(np.concatenate(chosen)))


def ood_scores(samples, reference: Reference, *, max_samples: int = MAX_SAMPLES, **grid):
    """Mahalanobis distance per patch of a probe's outputs (each (1, H, W)), averaged over the samples:
    (centres (n, 2), scores (n,))."""
    samples = list(samples)[:max_samples]
    if not samples:
        raise ValueError("no output to score")
    grids = [patch_grid(sample, **grid) for sample in samples]
    centres = grids[0][1]
    features = patch_features(np.concatenate([patches for patches, _ in grids]))
    scores = reference.distances(features).reshape(len(samples), len(centres)).mean(axis=0)
    return centres, scores


def marks_from_scores(
    centres, scores, *, separation: int = MARK_SEPARATION, per_case: int = MARKS_PER_CASE
) -> list[tuple[int, int, float]]:
    """(row, col, rating) of the highest-scoring positions, each suppressing the others within ``separation`` px
    (Chebyshev distance), highest first, at most ``per_case``."""
    centres = np.asarray(centres, dtype=int)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    marks: list[tuple[int, int, float]] = []
    for i in order:
        if len(marks) >= per_case:
            break
        row, col = int(centres[i, 0]), int(centres[i, 1])
        if all(max(abs(row - r), abs(col - c)) > separation for r, c, _ in marks):
            marks.append((row, col, float(scores[i])))
    return marks


def ood_marks(samples, reference: Reference, **options) -> list[tuple[int, int, float]]:
    """The detector's marks on one probe's outputs (see the module docstring)."""
    grid = {k: options.pop(k) for k in ("patch", "stride") if k in options}
    centres, scores = ood_scores(samples, reference, **grid, max_samples=options.pop("max_samples", MAX_SAMPLES))
    return marks_from_scores(centres, scores, **options)
