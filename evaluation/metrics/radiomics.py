"""IBSI radiomics features for the Fréchet Radiomics Distance (FRD).

The FRD (Konz et al. 2024, "Fréchet Radiomic Distance (FRD): A Versatile Metric for Comparing
Medical Imaging Datasets") compares datasets through the Fréchet distance between Gaussians
fitted to per-image radiomics feature vectors. This module computes those vectors: IBSI-defined
features over the whole image (the region of interest is every pixel), on the original image and
on Laplacian-of-Gaussian (LoG) filtered images, vectorised with numpy and batched over images.

Families (every family is computed for every image: the original and each LoG response map):

- ``firstorder``: IBSI intensity-based statistics on the raw intensities (mean, variance, skewness,
  excess kurtosis, median, minimum, 10th/90th percentile, maximum, interquartile range, range, mean
  / robust mean / median absolute deviation, coefficient of variation, quartile coefficient of
  dispersion, energy, root mean square). Percentiles use numpy's default linear interpolation.
- ``histogram``: IBSI intensity-histogram features on the discretised intensities.
- ``glcm``: IBSI grey-level co-occurrence matrix features (distance 1, symmetric matrix).
- ``glrlm``: IBSI grey-level run-length matrix features.

Settings (see ``SETTINGS``):

- Discretisation: fixed bin number, 32 bins, from the image's own minimum to maximum,
  ``floor(Ng * (X - Xmin) / (Xmax - Xmin)) + 1`` with ``X = Xmax`` mapped to ``Ng``. FRD's original
  code uses pyradiomics' fixed bin *width* of 25, which only makes sense for calibrated units (CT
  Hounsfield units); a fixed bin number makes the texture and histogram features invariant to the
  intensity units and offset, which suits generated images of arbitrary range, and it is the IBSI
  discretisation mirp supports for uncalibrated ("generic") images. A constant image (or response
  map) is put in the middle bin, ``ceil(Ng / 2)``, as mirp does.
- Texture aggregation: 2D images use IBSI "2D, merged by slice" (mirp ``2d_slice_merge``): the four
  in-plane direction matrices are summed into one matrix, from which the features are computed.
  3D volumes use IBSI "3D, merged" (mirp ``3d_volume_merge``) over the 13 3D directions. Merging is
  more stable on small images than averaging per-direction features, and costs one feature
  evaluation instead of four (or thirteen).
- LoG: IBSI / mirp Laplacian of Gaussian with sigma 2, 3, 4 and 5 mm, converted to voxels with the
  image's pixel spacing (the largest resulting in-plane sigma is used for the isotropic kernel, as
  mirp does), kernel truncated at 4 sigma (size ``1 + 2 * floor(4 * sigma + 0.5)`` voxels per axis),
  "mirror" boundary condition (numpy ``reflect`` padding), 2D kernels for 2D images and 3D kernels
  for 3D volumes. The response is computed by FFT convolution of the padded image, as in mirp.

Every feature agrees with mirp 2.7.0 (``tests/metrics/test_radiomics.py``) to 1e-6 relative, with
one deliberate exception: GLCM inverse variance is the sum over off-diagonal entries, and where the
matrix has no off-diagonal entries (a constant image) mirp reports NaN; we report 0.0 (the empty
sum) so that the feature matrix stays finite for the Fréchet distance. Constant images are otherwise
supported with mirp's conventions (skewness, kurtosis and coefficient of variation 0; correlation
and information correlation 1 ...). The LoG response of a constant image is set exactly to ``c``
times the sum of the truncated kernel: FFT rounding could otherwise leave ~1e-13 noise, which the
fixed-bin-number discretisation would stretch over all 32 bins. mirp has that noise in some of its
LoG maps of a constant image (e.g. sigma 2 mm on a 32x40 image), so there its LoG features of a
constant image are rounding noise and are not reproduced.

Speed: one forward FFT per image and one inverse per sigma; texture matrices from vectorised run
detection along the four (thirteen) directions, with the off-diagonal co-occurrences taken at run
ends and the diagonal ones from the run lengths; chunks of images run on a few threads.

Public API: ``FEATURE_VERSION``, ``SETTINGS``, ``feature_names()`` and ``radiomics_features()``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

__all__ = ["FEATURE_VERSION", "SETTINGS", "feature_names", "radiomics_features"]

FEATURE_VERSION = "1"  # bump when any feature's math or the settings change

SETTINGS = {
    "roi": "whole image (mask = all pixels)",
    "discretisation_method": "fixed_bin_number",
    "discretisation_n_bins": 32,
    "glcm_distance": 1,
    "glcm_symmetric": True,
    "texture_aggregation_2d": "2d_slice_merge",  # IBSI: 2D, directions merged per slice
    "texture_aggregation_3d": "3d_volume_merge",  # IBSI: 3D, directions merged
    "log_sigmas_mm": (2.0, 3.0, 4.0, 5.0),
    "log_truncate": 4.0,
    "log_boundary_condition": "mirror",
    "percentile_method": "linear",
    "default_spacing_mm": 1.0,
}

_N_BINS = SETTINGS["discretisation_n_bins"]

# Feature short names per family; the order is the output order. Each short name is mirp's
# abbreviation without its family prefix (``stat_``, ``ih_``, ``cm_``, ``rlm_``).
_FIRSTORDER = (
    "mean", "var", "skew", "kurt", "median", "min", "p10", "p90", "max", "iqr", "range",
    "mad", "rmad", "medad", "cov", "qcod", "energy", "rms",
)  # fmt: skip
_HISTOGRAM = (
    "mean", "var", "skew", "kurt", "median", "min", "p10", "p90", "max", "mode", "iqr", "range",
    "mad", "rmad", "medad", "cov", "qcod", "entropy", "uniformity",
    "max_grad", "max_grad_g", "min_grad", "min_grad_g",
)  # fmt: skip
_GLCM = (
    "joint_max", "joint_avg", "joint_var", "joint_entr", "diff_avg", "diff_var", "diff_entr",
    "sum_avg", "sum_var", "sum_entr", "energy", "contrast", "dissimilarity", "inv_diff",
    "inv_diff_norm", "inv_diff_mom", "inv_diff_mom_norm", "inv_var", "corr", "auto_corr",
    "clust_tend", "clust_shade", "clust_prom", "info_corr1", "info_corr2",
)  # fmt: skip
_GLRLM = (
    "sre", "lre", "lgre", "hgre", "srlge", "srhge", "lrlge", "lrhge", "glnu", "glnu_norm",
    "rlnu", "rlnu_norm", "r_perc", "gl_var", "rl_var", "rl_entr",
)  # fmt: skip
_FAMILIES = (("firstorder", _FIRSTORDER), ("histogram", _HISTOGRAM), ("glcm", _GLCM), ("glrlm", _GLRLM))


def _image_prefixes() -> list[str]:
    return ["original"] + [f"log_sigma_{s:g}mm" for s in SETTINGS["log_sigmas_mm"]]


def feature_names() -> list[str]:
    """The feature names, in the column order of ``radiomics_features``.

    ``{image}_{family}_{feature}``: image is ``original`` or ``log_sigma_{2,3,4,5}mm``; family is
    ``firstorder``, ``histogram``, ``glcm`` or ``glrlm``; feature is mirp's abbreviation.
    """
    return [
        f"{prefix}_{family}_{name}" for prefix in _image_prefixes() for family, names in _FAMILIES for name in names
    ]


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _to_numpy(images) -> np.ndarray:
    if hasattr(images, "detach") and hasattr(images, "cpu"):  # torch.Tensor, without importing torch
        images = images.detach().cpu().numpy()
    try:
        arr = np.asarray(images)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"images must be an array or tensor of numbers: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"images must hold real numbers; got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError("images must hold real numbers; got complex values")
    return arr


def _prepare(images, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Return images as float64 (N, H, W) or (N, D, H, W) and per-image spacing (N, ndim)."""
    arr = _to_numpy(images)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"images must have shape (N, H, W), (N, 1, H, W) or (N, D, H, W); got shape {tuple(arr.shape)}"
        )
    if arr.shape[0] == 0:
        raise ValueError("images is empty (N = 0)")
    if min(arr.shape[1:]) < 2:
        raise ValueError(f"every spatial dimension must be at least 2 pixels; got shape {tuple(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
        raise ValueError(f"images contain non-finite values (NaN or inf) in image(s) {bad[:10].tolist()}")

    n, ndim = arr.shape[0], arr.ndim - 1
    if spacing is None:
        sp = np.full((n, ndim), SETTINGS["default_spacing_mm"], dtype=np.float64)
    else:
        sp = _to_numpy(spacing).astype(np.float64)
        if sp.ndim == 0:
            sp = np.full((n, ndim), float(sp))
        elif sp.ndim == 1 and sp.shape[0] == ndim:
            sp = np.broadcast_to(sp, (n, ndim)).copy()
        elif sp.ndim == 2 and sp.shape == (n, ndim):
            sp = sp.copy()
        else:
            raise ValueError(
                f"spacing must be a number, a sequence of {ndim} per-axis spacings (mm) or an array of shape "
                f"({n}, {ndim}); got shape {tuple(sp.shape)}"
            )
        if not (np.isfinite(sp).all() and (sp > 0).all()):
            raise ValueError(f"spacing must be finite and strictly positive; got {sp.tolist()[:4]}")
    return arr, sp


# --------------------------------------------------------------------------------------------
# Laplacian of Gaussian (mirp's LaplacianOfGaussianFilter, IBSI L6PA)
# --------------------------------------------------------------------------------------------


def _log_kernel(sigma_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """mirp's LoG kernel: per-axis size from per-axis sigma, weights from the largest voxel sigma."""
    sigma = np.divide(np.full(len(spacing), sigma_mm), np.asarray(spacing, dtype=np.float64))
    size = 1 + 2 * np.floor(SETTINGS["log_truncate"] * sigma + 0.5)
    grids = np.mgrid[tuple(slice(None, int(s)) for s in size)].astype(np.float64)
    norm_2 = np.zeros(grids.shape[1:])
    for axis in range(len(spacing)):
        g = grids[axis] - (size[axis] - 1.0) / 2.0
        norm_2 = norm_2 + np.power(g, 2.0)
    d = float(len(spacing))
    s = float(np.max(sigma))
    scale = -1.0 / s**2.0 * np.power(1.0 / np.sqrt(2.0 * np.pi * s**2), d) * (d - norm_2 / s**2.0)
    return np.multiply(scale, np.exp(-norm_2 / (2.0 * s**2.0)))


def _log_responses(x: np.ndarray, spacing: tuple[float, ...]) -> list[np.ndarray]:
    """LoG response maps of a batch (N, *S) for every sigma, mirror boundary, via one forward FFT."""
    nd = x.ndim - 1
    shape = x.shape[1:]
    kernels = [_log_kernel(s, spacing) for s in SETTINGS["log_sigmas_mm"]]
    half = [np.array(k.shape) // 2 for k in kernels]
    pmax = np.max(np.stack(half), axis=0)
    padded = np.pad(x, [(0, 0)] + [(int(p), int(p)) for p in pmax], mode="reflect")
    fshape = [sfft.next_fast_len(int(n), real=True) for n in padded.shape[1:]]
    axes = tuple(range(1, nd + 1))
    fx = sfft.rfftn(padded, s=fshape, axes=axes)
    constant = np.ptp(x.reshape(len(x), -1), axis=1) == 0
    out = []
    for kernel, p in zip(kernels, half, strict=True):
        fk = sfft.rfftn(kernel, s=fshape)
        y = sfft.irfftn(fx * fk, s=fshape, axes=axes)
        crop = tuple(slice(int(pm + q), int(pm + q) + n) for pm, q, n in zip(pmax, p, shape, strict=True))
        y = np.ascontiguousarray(y[(slice(None),) + crop])
        if constant.any():  # exact response of a constant image: c * sum(kernel)
            c = x.reshape(len(x), -1)[constant, 0] * kernel.sum()
            y[constant] = c.reshape((-1,) + (1,) * nd)
        out.append(y)
    return out


# --------------------------------------------------------------------------------------------
# Feature families; every function takes a batch (B, n_pixels) or (B, *S) and returns (B, k)
# --------------------------------------------------------------------------------------------


def _lerp_sorted(sorted_x: np.ndarray, q: float) -> np.ndarray:
    """numpy's default ("linear") percentile of each row of an ascending-sorted (B, n) array."""
    n = sorted_x.shape[1]
    h = (n - 1) * q / 100.0
    lo = int(math.floor(h))
    hi = min(lo + 1, n - 1)
    t = h - lo
    a, b = sorted_x[:, lo], sorted_x[:, hi]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1.0 - t), a + diff * t)


def _count_below(s: np.ndarray, values: np.ndarray, side: str) -> np.ndarray:
    """Per ascending-sorted row: entries < value (side "left") or <= value (side "right")."""
    return np.array([np.searchsorted(row, v, side=side) for row, v in zip(s, values, strict=True)], dtype=np.int64)


def _abs_dev_sums(s: np.ndarray, cum: np.ndarray, centre: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """sum(|s[k] - centre|) over k in [lo, hi) of each ascending-sorted row, from its prefix sums."""
    rows = np.arange(len(s))
    # k_mid: number of entries in [lo, hi) below the centre (rows are sorted, so one count per row).
    below = _count_below(s, centre, side="left")
    mid = np.clip(below, lo, hi)
    total_lo = cum[rows, mid] - cum[rows, lo]
    total_hi = cum[rows, hi] - cum[rows, mid]
    return (total_hi - centre * (hi - mid)) + (centre * (mid - lo) - total_lo)


def _firstorder(x: np.ndarray) -> np.ndarray:
    b, n = x.shape
    s = np.sort(x, axis=1)
    # An exactly constant row has mean s[0]; a summed mean may be off by an ulp, which would give a
    # ~1e-38 variance and meaningless skewness / kurtosis.
    mu = np.where(s[:, 0] == s[:, -1], s[:, 0], s.mean(axis=1))
    d = s - mu[:, None]
    d2 = d * d
    var = d2.mean(axis=1)
    sigma = np.sqrt(var)
    zero_sd = sigma == 0.0
    safe_sigma = np.where(zero_sd, 1.0, sigma)
    skew = np.where(zero_sd, 0.0, np.einsum("ij,ij->i", d2, d) / (n * safe_sigma**3.0))
    kurt = np.where(zero_sd, 0.0, np.einsum("ij,ij->i", d2, d2) / (n * safe_sigma**4.0) - 3.0)
    del d, d2
    p10, p25, p50, p75, p90 = (_lerp_sorted(s, q) for q in (10.0, 25.0, 50.0, 75.0, 90.0))
    xmin, xmax = s[:, 0], s[:, -1]
    # Absolute deviations from prefix sums of the sorted values (mean-centred to limit cancellation).
    sc = s - mu[:, None]
    cum = np.zeros((b, n + 1))
    np.cumsum(sc, axis=1, out=cum[:, 1:])
    zeros = np.zeros(b, dtype=np.int64)
    full = np.full(b, n, dtype=np.int64)
    mad = _abs_dev_sums(sc, cum, np.zeros(b), zeros, full) / n
    medad = _abs_dev_sums(sc, cum, p50 - mu, zeros, full) / n
    # Robust MAD: the values within [p10, p90] form a contiguous block of each sorted row.
    lo = _count_below(s, p10, side="left")  # entries < p10
    hi = _count_below(s, p90, side="right")  # entries <= p90
    rows = np.arange(b)
    n_sel = hi - lo
    m_sel = (cum[rows, hi] - cum[rows, lo]) / n_sel
    rmad = _abs_dev_sums(sc, cum, m_sel, lo, hi) / n_sel
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.where(zero_sd, 0.0, sigma / mu)
        denom = p75 + p25
        qcod = np.where(denom == 0.0, 1.0, (p75 - p25) / np.where(denom == 0.0, 1.0, denom))
    energy = np.einsum("ij,ij->i", s, s)
    rms = np.sqrt(energy / n)
    cols = [mu, var, skew, kurt, p50, xmin, p10, p90, xmax, p75 - p25, xmax - xmin]
    cols += [mad, rmad, medad, cov, qcod, energy, rms]
    return np.stack(cols, axis=1)


def _discretise(x: np.ndarray) -> np.ndarray:
    """Fixed bin number discretisation of each image to grey levels 1..Ng (uint8), as in mirp."""
    flat = x.reshape(len(x), -1)
    lo = flat.min(axis=1)
    hi = flat.max(axis=1)
    rng = hi - lo
    const = rng == 0
    shape = (-1,) + (1,) * (x.ndim - 1)
    g = np.floor(_N_BINS * 1.0 * (x - lo.reshape(shape)) / np.where(const, 1.0, rng).reshape(shape)) + 1.0
    g[const] = math.ceil(_N_BINS / 2.0)
    np.clip(g, 1.0, _N_BINS, out=g)
    return g.astype(np.uint8)


def _histogram(counts: np.ndarray) -> np.ndarray:
    """Intensity-histogram features from grey-level counts (B, Ng) (levels 1..Ng)."""
    b, ng = counts.shape
    counts = counts.astype(np.float64)
    n = counts.sum(axis=1)
    g = np.arange(1, ng + 1, dtype=np.float64)
    p = counts / n[:, None]
    mu = (g * p).sum(axis=1)
    dg = g[None, :] - mu[:, None]
    sigma = np.sqrt((dg**2.0 * p).sum(axis=1))
    zero_sd = sigma == 0.0
    safe_sigma = np.where(zero_sd, 1.0, sigma)
    skew = np.where(zero_sd, 0.0, (dg**3.0 * p).sum(axis=1) / safe_sigma**3.0)
    kurt = np.where(zero_sd, 0.0, (dg**4.0 * p).sum(axis=1) / safe_sigma**4.0 - 3.0)

    cum = np.cumsum(counts, axis=1)

    def order_stat(k: np.ndarray) -> np.ndarray:  # value of the k-th (0-based) sorted voxel
        return (cum <= k[:, None]).sum(axis=1) + 1.0

    def pct(q: float) -> np.ndarray:
        h = (n - 1) * q / 100.0
        lo = np.floor(h)
        t = h - lo
        a = order_stat(lo)
        bb = order_stat(np.minimum(lo + 1, n - 1))
        diff = bb - a
        return np.where(t >= 0.5, bb - diff * (1.0 - t), a + diff * t)

    p10, p25, p50, p75, p90 = (pct(q) for q in (10.0, 25.0, 50.0, 75.0, 90.0))
    present = counts > 0
    gmin = np.where(present, g, np.inf).min(axis=1)
    gmax = np.where(present, g, -np.inf).max(axis=1)
    is_mode = counts == counts.max(axis=1, keepdims=True)
    mode = g[np.argmin(np.where(is_mode, np.abs(dg), np.inf), axis=1)]
    mad = (counts * np.abs(dg)).sum(axis=1) / n
    sel = (g[None, :] >= p10[:, None]) & (g[None, :] <= p90[:, None])
    c_sel = np.where(sel, counts, 0.0)
    n_sel = c_sel.sum(axis=1)
    m_sel = (c_sel * g).sum(axis=1) / n_sel
    rmad = (c_sel * np.abs(g[None, :] - m_sel[:, None])).sum(axis=1) / n_sel
    medad = (counts * np.abs(g[None, :] - p50[:, None])).sum(axis=1) / n
    cov = np.where(zero_sd, 0.0, sigma / mu)
    denom = p75 + p25  # grey levels are >= 1, so never 0
    qcod = (p75 - p25) / denom
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(present, p * np.log2(np.where(present, p, 1.0)), 0.0).sum(axis=1)
    uniformity = (p**2.0).sum(axis=1)
    grad = np.gradient(counts, axis=1)
    cols = [mu, sigma**2.0, skew, kurt, p50, gmin, p10, p90, gmax, mode, p75 - p25, gmax - gmin]
    cols += [mad, rmad, medad, cov, qcod, entropy, uniformity]
    cols += [grad.max(axis=1), g[grad.argmax(axis=1)], grad.min(axis=1), g[grad.argmin(axis=1)]]
    return np.stack(cols, axis=1)


def _directions(nd: int) -> list[tuple[int, ...]]:
    """Half of the Chebyshev-1 neighbourhood: 4 directions in 2D, 13 in 3D (sign is irrelevant)."""
    dirs = []
    for offset in np.ndindex(*(3,) * nd):
        d = tuple(int(o) - 1 for o in offset)
        if any(d) and tuple(-v for v in d) not in dirs:
            dirs.append(d)
    return dirs


_GLCM_LINEAR = ("joint_avg", "contrast", "dissimilarity", "inv_diff", "inv_diff_norm", "inv_diff_mom")
_GLCM_LINEAR += ("inv_diff_mom_norm", "inv_var", "auto_corr")


@lru_cache(maxsize=8)
def _glcm_weights(ng: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights (Ng*Ng, k) of the features linear in p, and one-hot maps to |i - j| and i + j."""
    i = np.arange(1, ng + 1, dtype=np.float64)[:, None] * np.ones((1, ng))
    j = i.T.copy()
    ad = np.abs(i - j)
    sq = (i - j) ** 2.0
    inv_var = np.divide(1.0, sq, out=np.zeros_like(sq), where=sq > 0)  # off-diagonal entries only
    linear = [i, sq, ad, 1.0 / (1.0 + ad), 1.0 / (1.0 + ad / ng), 1.0 / (1.0 + sq)]
    linear += [1.0 / (1.0 + sq / ng**2.0), inv_var, i * j]
    weights = np.stack([w.ravel() for w in linear], axis=1)
    diff_onehot = np.zeros((ng * ng, ng))
    diff_onehot[np.arange(ng * ng), ad.astype(int).ravel()] = 1.0
    sum_onehot = np.zeros((ng * ng, 2 * ng - 1))
    sum_onehot[np.arange(ng * ng), (i + j).astype(int).ravel() - 2] = 1.0
    return weights, diff_onehot, sum_onehot


def _xlog2x(p: np.ndarray) -> np.ndarray:
    pos = p > 0
    return np.where(pos, p * np.log2(np.where(pos, p, 1.0)), 0.0)


def _moment(values: np.ndarray, prob: np.ndarray, centre: np.ndarray, power: int) -> np.ndarray:
    """sum_k (values[k] - centre)**power * prob[:, k] for each row."""
    return (((values[None, :] - centre[:, None]) ** float(power)) * prob).sum(axis=1)


def _glcm(counts: np.ndarray) -> np.ndarray:
    """GLCM features (mirp's definitions) from symmetric co-occurrence counts (B, Ng, Ng)."""
    b, ng, _ = counts.shape
    weights, diff_onehot, sum_onehot = _glcm_weights(ng)
    cflat = counts.reshape(b, -1).astype(np.float64)
    pflat = cflat / cflat.sum(axis=1, keepdims=True)
    p = pflat.reshape(b, ng, ng)
    lin = dict(zip(_GLCM_LINEAR, (pflat @ weights).T, strict=True))
    gl = np.arange(1, ng + 1, dtype=np.float64)
    pi = p.sum(axis=2)  # marginal; equal to p.sum(axis=1) as the matrix is symmetric
    mu = lin["joint_avg"]
    mu_marg = pi @ gl
    joint_var = _moment(gl, pi, mu, 2)  # sum_ij (i - mu)^2 p_ij
    hxy = -_xlog2x(pflat).sum(axis=1)

    pimj = pflat @ diff_onehot  # (B, Ng), k = |i - j| = 0..Ng-1
    pipj = pflat @ sum_onehot  # (B, 2Ng-1), k = i + j = 2..2Ng
    k_d = np.arange(ng, dtype=np.float64)
    k_s = np.arange(2, 2 * ng + 1, dtype=np.float64)
    diff_avg = pimj @ k_d
    sum_avg = pipj @ k_s

    # mirp: NaN inverse variance without off-diagonal entries; we keep the empty sum, 0.
    var_marg = _moment(gl, pi, mu_marg, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(var_marg == 0.0, 1.0, (lin["auto_corr"] - mu_marg**2.0) / var_marg)
    # Cluster features: sum_ij (i + j - 2 mu)^m p_ij = sum_k (k - 2 mu)^m p_{i+j=k}.
    clust = [_moment(k_s, pipj, 2.0 * mu_marg, m) for m in (2, 3, 4)]

    # hx = hy (symmetric); sum_ij p_ij log2(p_i p_j) = -(hx + hy), and so is the entropy of p_i p_j.
    hx = -_xlog2x(pi).sum(axis=1)
    hxy_1 = 2.0 * hx
    hxy_2 = 2.0 * hx
    single = np.count_nonzero(pflat, axis=1) == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        info_corr1 = np.where(single | (hx == 0.0), 1.0, (hxy - hxy_1) / hx)
    info_corr2 = np.where(hxy_2 < hxy, 0.0, np.sqrt(np.maximum(1.0 - np.exp(-2.0 * (hxy_2 - hxy)), 0.0)))

    cols = [pflat.max(axis=1), mu, joint_var, hxy, diff_avg, _moment(k_d, pimj, diff_avg, 2), -_xlog2x(pimj).sum(1)]
    cols += [sum_avg, _moment(k_s, pipj, sum_avg, 2), -_xlog2x(pipj).sum(axis=1), np.einsum("ij,ij->i", pflat, pflat)]
    cols += [lin[k] for k in ("contrast", "dissimilarity", "inv_diff", "inv_diff_norm", "inv_diff_mom")]
    cols += [lin["inv_diff_mom_norm"], lin["inv_var"], corr, lin["auto_corr"], *clust, info_corr1, info_corr2]
    return np.stack(cols, axis=1)


def _runs_along_axis1(z: np.ndarray, lmax: int, runs: np.ndarray, pairs: np.ndarray) -> None:
    """Add the runs and neighbour transitions along the columns of z to the per-image counts.

    z: C-contiguous uint8 (B, n + 1, C) whose columns are image lines (pixels in order along the
    direction), with grey level 0 marking "outside the image" and a last row of zeros. ``runs``
    (B, (Ng + 1) * lmax) gets ``g * lmax + length - 1`` for every run; ``pairs`` (B, (Ng + 1)**2)
    gets ``g * (Ng + 1) + g_next`` at every run end (``g_next`` 0: no neighbour). Runs and pairs of
    grey level 0 land in row / column 0 and are dropped by the caller. Pairs of equal neighbours
    follow from the run lengths (a run of length L holds L - 1 of them).

    A run ends where the next element along the column differs; its first position is a running
    maximum of the positions where runs start.
    """
    b, n1, c = z.shape
    ends = np.zeros(z.shape, dtype=bool)
    np.not_equal(z[:, 1:], z[:, :-1], out=ends[:, :-1])
    pos = np.arange(n1, dtype=np.int16).reshape(n1, 1)
    first = np.empty(z.shape, dtype=np.int16)
    first[:, 0] = 0
    np.multiply(ends[:, :-1].view(np.int8), pos[1:], out=first[:, 1:], dtype=np.int16)  # run starts
    for k in range(1, n1):  # running maximum along axis 1 (much faster than np.maximum.accumulate here)
        np.maximum(first[:, k], first[:, k - 1], out=first[:, k])
    np.subtract(pos, first, out=first)  # run length - 1
    del pos
    idx = np.flatnonzero(ends)
    zf = z.reshape(-1)
    grey = zf[idx]
    run_code = np.multiply(grey, lmax, dtype=np.intp)
    run_code += first.reshape(-1)[idx]
    pair_code = np.multiply(grey, _N_BINS + 1, dtype=np.intp)
    idx += c
    pair_code += zf[idx]
    bounds = np.searchsorted(idx, np.arange(1, b + 1) * (n1 * c), side="right")
    lo = 0
    for i, hi in enumerate(bounds.tolist()):
        runs[i] += np.bincount(run_code[lo:hi], minlength=runs.shape[1])
        pairs[i] += np.bincount(pair_code[lo:hi], minlength=pairs.shape[1])
        lo = hi


def _line_layouts_2d(g: np.ndarray):
    """The four 2D directions as (B, n + 1, C) uint8 arrays whose columns are the lines."""
    b, h, w = g.shape
    z = np.zeros((b, h + 1, w), dtype=g.dtype)  # columns: along y
    z[:, :h] = g
    yield z
    z = np.zeros((b, w + 1, h), dtype=g.dtype)  # rows: along x
    z[:, :w] = g.transpose(0, 2, 1)
    yield z
    for anti in (True, False):
        z = np.zeros((b, h + 1, w + h - 1), dtype=g.dtype)
        st = z.strides
        if anti:  # column k holds the pixels with x + y = k, in order of y
            view = np.lib.stride_tricks.as_strided(z, shape=(b, h, w), strides=(st[0], st[1] + st[2], st[2]))
        else:  # column k holds the pixels with x - y = k - (H - 1), in order of y
            view = np.lib.stride_tricks.as_strided(
                z[:, :, h - 1 :], shape=(b, h, w), strides=(st[0], st[1] - st[2], st[2])
            )
        view[...] = g
        yield z


@lru_cache(maxsize=16)
def _line_index(shape: tuple[int, ...], d: tuple[int, ...]) -> np.ndarray:
    """(L + 1, n_lines) flat indices of the voxels along each line in direction d, in order;
    ``prod(shape)`` (a zero voxel) pads short lines and fills the last row."""
    nvox = int(np.prod(shape))
    coords = np.indices(shape).reshape(len(shape), -1)
    back = np.full(nvox, np.iinfo(np.int64).max)  # steps back along -d before leaving the image
    for axis, step in enumerate(d):
        if step == 1:
            back = np.minimum(back, coords[axis])
        elif step == -1:
            back = np.minimum(back, shape[axis] - 1 - coords[axis])
    start = coords - back[None, :] * np.asarray(d)[:, None]
    line_id = np.ravel_multi_index(tuple(start), shape)
    _, line = np.unique(line_id, return_inverse=True)
    out = np.full((int(back.max()) + 2, int(line.max()) + 1), nvox, dtype=np.intp)
    out[back, line.reshape(-1)] = np.arange(nvox)
    return out


def _line_layouts_nd(g: np.ndarray):
    b = len(g)
    shape = tuple(g.shape[1:])
    flat = np.concatenate([g.reshape(b, -1), np.zeros((b, 1), dtype=g.dtype)], axis=1)
    for d in _directions(len(shape)):
        yield flat[:, _line_index(shape, d)]


def _texture_counts(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Co-occurrence counts (B, Ng, Ng) (symmetric, distance 1) and run-length counts (B, Ng, Lmax),
    each summed over all directions (4 in 2D, 13 in 3D), and the number of directions."""
    b, shape = g.shape[0], tuple(g.shape[1:])
    ng = _N_BINS
    lmax = int(max(shape))
    g = np.ascontiguousarray(g)
    runs = np.zeros((b, (ng + 1) * lmax), dtype=np.int64)
    pairs = np.zeros((b, (ng + 1) ** 2), dtype=np.int64)
    layouts = _line_layouts_2d(g) if len(shape) == 2 else _line_layouts_nd(g)
    for z in layouts:
        _runs_along_axis1(z, lmax, runs, pairs)
    runs = runs.reshape(b, ng + 1, lmax)[:, 1:]
    pairs = np.ascontiguousarray(pairs.reshape(b, ng + 1, ng + 1)[:, 1:, 1:])
    # Equal neighbours: a run of length L holds L - 1 of them.
    pairs[:, np.arange(ng), np.arange(ng)] += runs @ np.arange(lmax, dtype=np.int64)
    return pairs + pairs.transpose(0, 2, 1), np.ascontiguousarray(runs), len(_directions(len(shape)))


def _glrlm(counts: np.ndarray, n_voxels: int) -> np.ndarray:
    """GLRLM features (mirp's definitions) from run-length counts (B, Ng, Lmax)."""
    b, ng, lmax = counts.shape
    r = counts.astype(np.float64)
    gi = np.arange(1, ng + 1, dtype=np.float64)
    lj = np.arange(1, lmax + 1, dtype=np.float64)
    ns = r.sum(axis=(1, 2))
    ri = r.sum(axis=2)
    rj = r.sum(axis=1)
    # Joint weights are separable: sum_ij r_ij a(i) b(j) = sum_i a(i) (r @ b)_i.
    by_length = r @ np.stack([lj**-2.0, lj**2.0], axis=1)  # (B, Ng, 2)
    short, long = by_length[:, :, 0], by_length[:, :, 1]
    srlge = short @ gi**-2.0 / ns
    srhge = short @ gi**2.0 / ns
    lrlge = long @ gi**-2.0 / ns
    lrhge = long @ gi**2.0 / ns
    mu_i = ri @ gi / ns
    mu_j = rj @ lj / ns
    rflat = r.reshape(b, -1)
    pos = rflat > 0
    rl_entr = -np.where(pos, rflat * np.log2(np.where(pos, rflat, 1.0) / ns[:, None]), 0.0).sum(axis=1) / ns
    glnu = (ri**2.0).sum(axis=1) / ns
    rlnu = (rj**2.0).sum(axis=1) / ns
    cols = [rj @ lj**-2.0 / ns, rj @ lj**2.0 / ns, ri @ gi**-2.0 / ns, ri @ gi**2.0 / ns, srlge, srhge, lrlge]
    cols += [lrhge, glnu, glnu / ns, rlnu, rlnu / ns, ns / n_voxels]
    cols += [_moment(gi, ri, mu_i, 2) / ns, _moment(lj, rj, mu_j, 2) / ns, rl_entr]
    return np.stack(cols, axis=1)


def _features_of_maps(x: np.ndarray) -> np.ndarray:
    """All families for a batch of maps (B, *S): (B, n_features_per_map)."""
    b = len(x)
    flat = x.reshape(b, -1)
    g = _discretise(x)
    hist = np.bincount(
        (g.reshape(b, -1).astype(np.int64) - 1 + (np.arange(b) * _N_BINS)[:, None]).ravel(),
        minlength=b * _N_BINS,
    ).reshape(b, _N_BINS)
    cm_counts, rl_counts, n_dirs = _texture_counts(g)
    return np.concatenate(
        [
            _firstorder(flat),
            _histogram(hist),
            _glcm(cm_counts),
            _glrlm(rl_counts, n_dirs * flat.shape[1]),
        ],
        axis=1,
    )


def _features_same_spacing(x: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Feature rows of a batch of images sharing one spacing: original image, then each LoG map."""
    maps = np.concatenate([x] + _log_responses(x, spacing), axis=0)  # (n_maps * b, *S), map-major
    feats = _features_of_maps(maps)
    n_maps = 1 + len(SETTINGS["log_sigmas_mm"])
    return feats.reshape(n_maps, len(x), -1).transpose(1, 0, 2).reshape(len(x), -1)


def radiomics_features(
    images, spacing=None, *, chunk_size: int | None = None, num_threads: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """IBSI radiomics features of each image (whole image as region of interest).

    images: (N, H, W) or (N, 1, H, W) 2D slices, or (N, D, H, W) 3D volumes (D > 1); a numpy
        array or torch tensor of real numbers, all finite.
    spacing: pixel spacing in mm per spatial axis ((row, column) for 2D; (slice, row, column) for
        3D), as a number, a sequence, or an (N, ndim) array of per-image spacings; default 1.0 mm.
        It only affects the LoG features (sigma in mm is converted to pixels).
    chunk_size: images processed together (bounds memory; results do not depend on it). Default:
        16 slices of 128x128, fewer for larger images.
    num_threads: chunks computed in parallel (numpy releases the GIL); default min(2, CPU count).

    Returns the (N, len(feature_names())) float64 feature matrix and the feature names.
    Raises ValueError on a bad shape, non-finite values or bad spacing.
    """
    arr, sp = _prepare(images, spacing)
    pixels = int(np.prod(arr.shape[1:]))
    if chunk_size is None:
        chunk_size = max(1, (16 * 128 * 128) // pixels)
    if int(chunk_size) < 1:
        raise ValueError("chunk_size must be at least 1")
    if num_threads is None:
        num_threads = min(2, os.cpu_count() or 1)
    names = feature_names()
    result = np.empty((len(arr), len(names)), dtype=np.float64)
    uniq, inverse = np.unique(sp, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    jobs = []
    for u, spacing_row in enumerate(uniq):
        idx = np.flatnonzero(inverse == u)
        spacing_tuple = tuple(float(s) for s in spacing_row)
        jobs += [(idx[i : i + int(chunk_size)], spacing_tuple) for i in range(0, len(idx), int(chunk_size))]

    def run(job):
        idx, spacing_tuple = job
        result[idx] = _features_same_spacing(arr[idx], spacing_tuple)

    if int(num_threads) > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=int(num_threads)) as pool:
            list(pool.map(run, jobs))
    else:
        for job in jobs:
            run(job)
    return result, names
