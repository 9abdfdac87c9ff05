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

Speed: one forward FFT per image and one inverse per sigma (cached kernel spectra; the inverse is
cropped to the image between its passes, with the same result to the bit as a full inverse); the
texture matrices from one vectorised run detection over all the lines of all four (thirteen)
directions of a few maps at a time, laid out end to end, with the off-diagonal co-occurrences
taken at run ends, the diagonal ones and the histogram from the run lengths, and one bincount
each; small chunks of images (cache-sized temporaries) run on a few threads; no BLAS calls (small
OpenBLAS products would wake its thread pool, which then competes with the chunk threads).

Public API: ``FEATURE_VERSION``, ``SETTINGS``, ``feature_names()``, ``radiomics_features()`` and
``original_features()`` (the original image's features only, no LoG: small patches, e.g. the probes' OOD detector).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

__all__ = ["FEATURE_VERSION", "SETTINGS", "feature_names", "original_features", "radiomics_features"]

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


@lru_cache(maxsize=16)
def _log_kernels(spacing: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """The LoG kernels of every sigma for a pixel spacing (read-only)."""
    kernels = tuple(_log_kernel(s, spacing) for s in SETTINGS["log_sigmas_mm"])
    for kernel in kernels:
        kernel.setflags(write=False)
    return kernels


def _kernel_spectra(spacing: tuple[float, ...], fshape: tuple[int, ...]) -> np.ndarray:
    """DFTs (over ``fshape``, last axis halved) of the LoG kernels: (n_sigmas, *spectrum shape)."""
    spectra = np.stack([sfft.rfftn(kernel, s=fshape) for kernel in _log_kernels(spacing)])
    spectra.setflags(write=False)
    return spectra


_cached_kernel_spectra = lru_cache(maxsize=16)(_kernel_spectra)
_SPECTRA_CACHE_MAX_VALUES = 4 * 256 * 129  # cache the spectra of 2D (and small 3D) images only


def _response_maps(x: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """The image and its LoG response maps for every sigma, mirror boundary: (1 + n_sigmas, N, *S).

    One forward FFT of the padded batch, then per sigma a product with the kernel's spectrum and
    an inverse transform along the leading axes first, cropped to the image before the last (real)
    axis is transformed, which skips the rows of the padding. The 1D transforms are unscaled and
    the scale 1 / prod(fshape) is applied once at the end, as ``irfftn`` does, so the maps are the
    same to the bit as a full ``irfftn`` followed by the crop.
    """
    nd = x.ndim - 1
    shape = x.shape[1:]
    kernels = _log_kernels(spacing)
    half = [np.array(k.shape) // 2 for k in kernels]
    pmax = np.max(half, axis=0)
    padded = np.pad(x, [(0, 0)] + [(int(p), int(p)) for p in pmax], mode="reflect")
    fshape = tuple(sfft.next_fast_len(int(n), real=True) for n in padded.shape[1:])
    fx = sfft.rfftn(padded, s=fshape, axes=tuple(range(1, nd + 1)))
    del padded
    if math.prod(fshape) <= _SPECTRA_CACHE_MAX_VALUES:
        spectra = _cached_kernel_spectra(spacing, fshape)
    else:
        spectra = _kernel_spectra(spacing, fshape)
    scale = 1 / math.prod(fshape)
    constant = np.ptp(x.reshape(len(x), -1), axis=1) == 0
    maps = np.empty((1 + len(kernels),) + x.shape)
    maps[0] = x
    prod = np.empty_like(fx)
    for out, kernel, p, fk in zip(maps[1:], kernels, half, spectra, strict=True):
        crops = [slice(int(o), int(o) + n) for o, n in zip(pmax + p, shape, strict=True)]
        y = np.multiply(fx, fk, out=prod)
        for axis in range(1, nd):
            y = sfft.ifft(y, axis=axis, norm="forward", overwrite_x=True)
            y = y[(slice(None),) * axis + (crops[axis - 1],)]
        y = sfft.irfft(y, n=fshape[-1], axis=nd, norm="forward", overwrite_x=True)
        np.multiply(y[(slice(None),) * nd + (crops[-1],)], scale, out=out)
        if constant.any():  # exact response of a constant image: c * sum(kernel)
            c = x.reshape(len(x), -1)[constant, 0] * kernel.sum()
            out[constant] = c.reshape((-1,) + (1,) * nd)
    return maps


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


def _firstorder(x: np.ndarray) -> np.ndarray:
    b, n = x.shape
    s = np.sort(x, axis=1)
    xmin, xmax = s[:, 0], s[:, -1]
    # An exactly constant row has mean s[0]; a summed mean may be off by an ulp, which would give a
    # ~1e-38 variance and meaningless skewness / kurtosis.
    mu = np.where(xmin == xmax, xmin, s.sum(axis=1) / n)  # = s.mean(axis=1)
    d = s - mu[:, None]
    w = d * d
    var = w.sum(axis=1) / n
    sigma = np.sqrt(var)
    zero_sd = sigma == 0.0
    safe_sigma = np.where(zero_sd, 1.0, sigma)
    skew = np.where(zero_sd, 0.0, np.einsum("ij,ij->i", w, d) / (n * safe_sigma**3.0))
    kurt = np.where(zero_sd, 0.0, np.einsum("ij,ij->i", w, w) / (n * safe_sigma**4.0) - 3.0)
    p10, p25, p50, p75, p90 = (_lerp_sorted(s, q) for q in (10.0, 25.0, 50.0, 75.0, 90.0))
    energy = np.einsum("ij,ij->i", s, s)
    # Mean absolute deviations (from the mean, the median, and robust: of the values in [p10, p90],
    # a contiguous block of each sorted row, from their own mean); w is the scratch array.
    mad = np.abs(d, out=w).sum(axis=1) / n
    medad = np.abs(np.subtract(s, p50[:, None], out=w), out=w).sum(axis=1) / n
    rmad = np.empty(b)
    for i, row in enumerate(s):
        block = row[np.searchsorted(row, p10[i], side="left") : np.searchsorted(row, p90[i], side="right")]
        dev = w[i, : len(block)]
        rmad[i] = np.abs(np.subtract(block, block.sum() / len(block), out=dev), out=dev).sum() / len(block)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.where(zero_sd, 0.0, sigma / mu)
        denom = p75 + p25
        qcod = np.where(denom == 0.0, 1.0, (p75 - p25) / np.where(denom == 0.0, 1.0, denom))
    rms = np.sqrt(energy / n)
    cols = [mu, var, skew, kurt, p50, xmin, p10, p90, xmax, p75 - p25, xmax - xmin]
    cols += [mad, rmad, medad, cov, qcod, energy, rms]
    return np.stack(cols, axis=1)


def _discretise(x: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """Fixed bin number discretisation of each image to grey levels 1..Ng (uint8), as in mirp.

    ``lo`` / ``hi``: each image's minimum / maximum, if known.
    """
    flat = x.reshape(len(x), -1)
    lo = flat.min(axis=1) if lo is None else lo
    hi = flat.max(axis=1) if hi is None else hi
    rng = hi - lo
    const = rng == 0
    # floor(Ng * (x - lo) / range) + 1, clipped to [1, Ng]. The quotient lies in [0, Ng] (exactly Ng
    # at the maximum), so truncation to an integer is the floor.
    t = np.subtract(flat, lo[:, None])
    t *= _N_BINS * 1.0
    t /= np.where(const, 1.0, rng)[:, None]
    g = t.astype(np.uint8)
    np.minimum(g, _N_BINS - 1, out=g)
    g += 1
    g[const] = math.ceil(_N_BINS / 2.0)
    return g.reshape(x.shape)


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


@lru_cache(maxsize=4)
def _directions(nd: int) -> tuple[tuple[int, ...], ...]:
    """Half of the Chebyshev-1 neighbourhood: 4 directions in 2D, 13 in 3D (sign is irrelevant)."""
    dirs = []
    for offset in np.ndindex(*(3,) * nd):
        d = tuple(int(o) - 1 for o in offset)
        if any(d) and tuple(-v for v in d) not in dirs:
            dirs.append(d)
    return tuple(dirs)


@lru_cache(maxsize=8)
def _glcm_groups(ng: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat GLCM entries grouped by k = |i - j| (0..Ng-1) and by k = i + j (2..2Ng): (order, starts)
    of each for ``np.add.reduceat``; and the weights (Ng, 7) on p_{|i-j|=k} of the features that
    depend on |i - j| only (contrast, dissimilarity, inverse difference (normalised), inverse
    difference moment (normalised), inverse variance)."""
    i, j = np.indices((ng, ng)) + 1
    groups = []
    for key in (np.abs(i - j).ravel(), (i + j).ravel()):
        order = np.argsort(key, kind="stable")
        groups += [order, np.flatnonzero(np.diff(key[order], prepend=-1))]
    k = np.arange(ng, dtype=np.float64)
    sq = k**2.0
    inv_var = np.divide(1.0, sq, out=np.zeros_like(sq), where=sq > 0)  # off-diagonal entries only
    weights = np.stack([sq, k, 1.0 / (1.0 + k), 1.0 / (1.0 + k / ng), 1.0 / (1.0 + sq)], axis=1)
    weights = np.concatenate([weights, np.stack([1.0 / (1.0 + sq / ng**2.0), inv_var], axis=1)], axis=1)
    return (*groups, weights)


def _xlog2x(p: np.ndarray) -> np.ndarray:
    pos = p > 0
    return np.where(pos, p * np.log2(np.where(pos, p, 1.0)), 0.0)


def _moment(values: np.ndarray, prob: np.ndarray, centre: np.ndarray, power: int) -> np.ndarray:
    """sum_k (values[k] - centre)**power * prob[:, k] for each row."""
    return (((values[None, :] - centre[:, None]) ** float(power)) * prob).sum(axis=1)


def _glcm(counts: np.ndarray) -> np.ndarray:
    """GLCM features (mirp's definitions) from symmetric co-occurrence counts (B, Ng, Ng).

    No BLAS products here: they are small, and OpenBLAS would start its threads for some of them.
    """
    b, ng, _ = counts.shape
    diff_order, diff_starts, sum_order, sum_starts, diff_weights = _glcm_groups(ng)
    cflat = counts.reshape(b, -1)
    total = cflat.sum(axis=1).astype(np.float64)[:, None]
    pflat = cflat / total
    p = pflat.reshape(b, ng, ng)
    gl = np.arange(1, ng + 1, dtype=np.float64)
    pi = p.sum(axis=2)  # marginal; equal to p.sum(axis=1) as the matrix is symmetric
    mu = np.einsum("bi,i->b", pi, gl)  # joint average = marginal mean
    auto_corr = np.einsum("bi,i->b", np.einsum("bij,j->bi", p, gl), gl)
    joint_var = _moment(gl, pi, mu, 2)  # sum_ij (i - mu)^2 p_ij
    hxy = -_xlog2x(pflat).sum(axis=1)

    # p_{|i-j|=k} (k = 0..Ng-1) and p_{i+j=k} (k = 2..2Ng), from exact integer sums of the counts.
    pimj = np.add.reduceat(cflat[:, diff_order], diff_starts, axis=1) / total
    pipj = np.add.reduceat(cflat[:, sum_order], sum_starts, axis=1) / total
    k_d = np.arange(ng, dtype=np.float64)
    k_s = np.arange(2, 2 * ng + 1, dtype=np.float64)
    diff_avg = np.einsum("bk,k->b", pimj, k_d)
    sum_avg = np.einsum("bk,k->b", pipj, k_s)
    by_diff = np.einsum("bk,kf->fb", pimj, diff_weights)  # contrast ... inverse variance

    # mirp: NaN inverse variance without off-diagonal entries; we keep the empty sum, 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(joint_var == 0.0, 1.0, (auto_corr - mu**2.0) / joint_var)
    # Cluster features: sum_ij (i + j - 2 mu)^m p_ij = sum_k (k - 2 mu)^m p_{i+j=k}.
    clust = [_moment(k_s, pipj, 2.0 * mu, m) for m in (2, 3, 4)]

    # hx = hy (symmetric); sum_ij p_ij log2(p_i p_j) = -(hx + hy), and so is the entropy of p_i p_j.
    hx = -_xlog2x(pi).sum(axis=1)
    hxy_1 = 2.0 * hx
    hxy_2 = 2.0 * hx
    single = np.count_nonzero(cflat, axis=1) == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        info_corr1 = np.where(single | (hx == 0.0), 1.0, (hxy - hxy_1) / hx)
    info_corr2 = np.where(hxy_2 < hxy, 0.0, np.sqrt(np.maximum(1.0 - np.exp(-2.0 * (hxy_2 - hxy)), 0.0)))

    cols = [pflat.max(axis=1), mu, joint_var, hxy, diff_avg, _moment(k_d, pimj, diff_avg, 2), -_xlog2x(pimj).sum(1)]
    cols += [sum_avg, _moment(k_s, pipj, sum_avg, 2), -_xlog2x(pipj).sum(axis=1), np.einsum("ij,ij->i", pflat, pflat)]
    cols += [*by_diff, corr, auto_corr, *clust, info_corr1, info_corr2]
    return np.stack(cols, axis=1)


# Grey levels are packed with the map index into uint16 sequence values: map * _GSPAN + grey level.
_GBITS = _N_BINS.bit_length()
_GSPAN = 1 << _GBITS
# Default images per chunk: 8 slices of 128x128 (see radiomics_features).
_CHUNK_VOXELS = 8 * 128 * 128
# Maps per run-counting pass: small enough for the temporaries to stay in the CPU cache.
_RUN_BATCH_VOXELS = 4 * 128 * 128
# Maps per pass of voxel-level work in _features_of_maps.
_MAP_BATCH_VOXELS = 4 * 128 * 128


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


@lru_cache(maxsize=4)
def _line_sequences(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Flat indices of the voxels of every line in every direction, line after line, each line
    followed by ``prod(shape)`` (a zero voxel, "outside the image"): one array for all four 2D
    directions; one per direction in 3D (which bounds the temporaries of large volumes)."""
    nvox = int(np.prod(shape))
    parts = []
    for d in _directions(len(shape)):
        lines = _line_index(shape, d).T  # (n_lines, L + 1), each line padded with nvox
        keep = lines != nvox
        keep[np.arange(len(lines)), keep.sum(axis=1)] = True  # the first pad: one terminator per line
        parts.append(lines[keep])
    return (np.concatenate(parts),) if len(shape) == 2 else tuple(parts)


def _count_runs(flat: np.ndarray, sequence: np.ndarray, lmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Run-length counts (m, Ng, Lmax) and run-end transitions (m, Ng, Ng) of m maps (m, n_voxels).

    The maps' voxels are laid out line after line (``sequence``), each line ending with grey level
    0, as one uint16 sequence of ``map * _GSPAN + grey level``, so that runs never cross lines or
    maps. A run ends where the next value differs; its length is the distance to the previous run
    end. Each run adds ``(grey, length)`` to the run-length counts and ``(grey, next grey)`` to the
    transitions. Runs and transitions of grey level 0 (the terminators) are dropped.
    """
    m, ng = len(flat), _N_BINS
    z = np.empty((m, flat.shape[1] + 1), dtype=np.uint16)
    z[:, :-1] = flat
    z[:, -1] = 0
    z += (np.arange(m, dtype=np.uint16) << _GBITS)[:, None]
    seq = z.take(sequence, axis=1).reshape(-1)
    ends = np.flatnonzero(seq[1:] != seq[:-1])  # last position of every run but the final terminator
    value = np.empty(len(ends) + 1, dtype=np.uint16)
    np.take(seq, ends, out=value[:-1])
    value[-1] = seq[-1]  # value[k + 1]: the value right after run k
    # Codes in the smallest unsigned type that holds them (less memory traffic; bincount widens).
    n_run_codes = m * _GSPAN * lmax + 1
    n_codes = max(n_run_codes, m * _GSPAN * _GSPAN)
    ctype = np.uint16 if n_codes <= 1 << 16 else np.uint32 if n_codes <= 1 << 32 else np.intp
    code = np.empty(len(ends), dtype=ctype)
    code[0] = ends[0] + 1
    np.subtract(ends[1:], ends[:-1], out=code[1:], casting="unsafe")  # run lengths 1..lmax
    code += value[:-1].astype(ctype, copy=False) * ctype(lmax)  # value * lmax + length: bins shifted by one
    runs = np.bincount(code, minlength=n_run_codes)[1:].reshape(m, _GSPAN, lmax)[:, 1 : ng + 1]
    code[:] = value[:-1]
    code <<= _GBITS
    code |= value[1:] & (_GSPAN - 1)  # value * _GSPAN + next grey level
    pairs = np.bincount(code, minlength=m * _GSPAN * _GSPAN).reshape(m, _GSPAN, _GSPAN)[:, 1 : ng + 1, 1 : ng + 1]
    return runs, pairs


def _texture_counts(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Co-occurrence counts (B, Ng, Ng) (symmetric, distance 1) and run-length counts (B, Ng, Lmax),
    each summed over all directions (4 in 2D, 13 in 3D), the grey-level histogram (B, Ng) and the
    number of directions."""
    b, shape = g.shape[0], tuple(g.shape[1:])
    ng = _N_BINS
    lmax = int(max(shape))
    n_dirs = len(_directions(len(shape)))
    sequences = _line_sequences(shape)
    flat = g.reshape(b, -1)
    step = max(1, min(_RUN_BATCH_VOXELS // flat.shape[1], (1 << 16 >> _GBITS) - 1))  # uint16 values
    runs = np.zeros((b, ng, lmax), dtype=np.int64)
    pairs = np.zeros((b, ng, ng), dtype=np.int64)
    for lo in range(0, b, step):
        for sequence in sequences:
            r, p = _count_runs(flat[lo : lo + step], sequence, lmax)
            runs[lo : lo + step] += r
            pairs[lo : lo + step] += p
    # Every voxel lies in exactly one run per direction.
    voxels = runs @ np.arange(1, lmax + 1, dtype=np.int64)  # (B, Ng): n_dirs x the histogram
    # Equal neighbours: a run of length L holds L - 1 of them.
    diag = np.arange(ng)
    pairs[:, diag, diag] += voxels - runs.sum(axis=2)
    return pairs + pairs.transpose(0, 2, 1), runs, voxels // n_dirs, n_dirs


def _glrlm(counts: np.ndarray, n_voxels: int) -> np.ndarray:
    """GLRLM features (mirp's definitions) from run-length counts (B, Ng, Lmax); no BLAS products."""
    b, ng, lmax = counts.shape
    r = counts.astype(np.float64)
    gi = np.arange(1, ng + 1, dtype=np.float64)
    lj = np.arange(1, lmax + 1, dtype=np.float64)
    ri = r.sum(axis=2)
    rj = r.sum(axis=1)
    ns = ri.sum(axis=1)
    # Joint weights are separable: sum_ij r_ij a(i) b(j) = sum_i a(i) (sum_j r_ij b(j)).
    short = np.einsum("bij,j->bi", r, lj**-2.0)
    long = np.einsum("bij,j->bi", r, lj**2.0)
    gi_m2, gi_p2 = gi**-2.0, gi**2.0
    srlge = np.einsum("bi,i->b", short, gi_m2) / ns
    srhge = np.einsum("bi,i->b", short, gi_p2) / ns
    lrlge = np.einsum("bi,i->b", long, gi_m2) / ns
    lrhge = np.einsum("bi,i->b", long, gi_p2) / ns
    mu_i = np.einsum("bi,i->b", ri, gi) / ns
    mu_j = np.einsum("bj,j->b", rj, lj) / ns
    # Run-length entropy over the non-zero entries only.
    rows, cols = np.nonzero(r.reshape(b, -1))
    nonzero = r.reshape(b, -1)[rows, cols]
    terms = nonzero * np.log2(nonzero / ns[rows])
    rl_entr = -np.bincount(rows, weights=terms, minlength=b) / ns
    glnu = (ri**2.0).sum(axis=1) / ns
    rlnu = (rj**2.0).sum(axis=1) / ns
    cols = [np.einsum("bj,j->b", rj, lj**-2.0) / ns, np.einsum("bj,j->b", rj, lj**2.0) / ns]
    cols += [np.einsum("bi,i->b", ri, gi_m2) / ns, np.einsum("bi,i->b", ri, gi_p2) / ns, srlge, srhge, lrlge]
    cols += [lrhge, glnu, glnu / ns, rlnu, rlnu / ns, ns / n_voxels]
    cols += [_moment(gi, ri, mu_i, 2) / ns, _moment(lj, rj, mu_j, 2) / ns, rl_entr]
    return np.stack(cols, axis=1)


def _features_of_maps(x: np.ndarray) -> np.ndarray:
    """All families for a batch of maps (B, *S): (B, n_features_per_map).

    The voxel-level work (sorting, discretisation, run counting) runs on a few maps at a time, so
    that its temporaries stay small (in the CPU cache, and reused by the allocator rather than
    mapped afresh); the features of the (small) texture matrices are computed for the whole batch.
    """
    b, shape = len(x), tuple(x.shape[1:])
    flat = x.reshape(b, -1)
    ng, lmax = _N_BINS, int(max(shape))
    first = np.empty((b, len(_FIRSTORDER)))
    hist = np.empty((b, ng), dtype=np.int64)
    cm_counts = np.empty((b, ng, ng), dtype=np.int64)
    rl_counts = np.empty((b, ng, lmax), dtype=np.int64)
    step = max(1, _MAP_BATCH_VOXELS // flat.shape[1])
    for lo in range(0, b, step):
        sl = slice(lo, lo + step)
        first[sl] = _firstorder(flat[sl])
        g = _discretise(x[sl], first[sl, _FIRSTORDER.index("min")], first[sl, _FIRSTORDER.index("max")])
        cm_counts[sl], rl_counts[sl], hist[sl], n_dirs = _texture_counts(g)
    return np.concatenate(
        [first, _histogram(hist), _glcm(cm_counts), _glrlm(rl_counts, n_dirs * flat.shape[1])], axis=1
    )


def _features_same_spacing(x: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Feature rows of a batch of images sharing one spacing: original image, then each LoG map."""
    maps = _response_maps(x, spacing).reshape((-1,) + x.shape[1:])  # (n_maps * b, *S), map-major
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
        8 slices of 128x128, fewer for larger images (the voxel-level work runs on a few maps at a
        time whatever the chunk size).
    num_threads: chunks computed in parallel (numpy releases the GIL); default min(2, CPU count).

    Returns the (N, len(feature_names())) float64 feature matrix and the feature names.
    Raises ValueError on a bad shape, non-finite values or bad spacing.
    """
    arr, sp = _prepare(images, spacing)
    pixels = int(np.prod(arr.shape[1:]))
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_VOXELS // pixels)
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


def original_features(images) -> tuple[np.ndarray, list[str]]:
    """The ``original_*`` columns of ``radiomics_features`` (first order, histogram, GLCM, GLRLM of the image
    itself, no LoG maps), about five times faster: for many small patches, where a LoG kernel (up to 41 px at
    5 mm) would be larger than the patch. images: (N, H, W) or (N, 1, H, W), finite reals.

    Returns the (N, 82) float64 feature matrix and its names (``original_{family}_{feature}``)."""
    arr, _ = _prepare(images, None)
    names = [name for name in feature_names() if name.startswith("original_")]
    return _features_of_maps(arr), names
