"""Evaluation regions: the voxels a task's pixel metrics are computed over, and MedGen Eval's pixel metrics
inside such a region.

Medical benchmarks score inside the body or the brain, not over the black background around it: a model
that gets only the background right must not look good. A task's region is the whole image, a mask that
comes with each case (an ROI or body mask imported beside the reference), or a mask computed from the
reference by :func:`mask_from_reference`. :func:`masked_pixel_metrics` then computes the ``"medgen"``
profile's metrics over the voxels inside; the ``"synthrad2025"`` profile takes the mask itself (see
``profiles``), and ``"fastmri"`` scores whole images only.

Arrays: one case, ``(C, *spatial)`` with spatial ``(H, W)`` or ``(D, H, W)``; a mask is ``(*spatial)``
(boolean, or numbers with > 0 inside) and applies to every channel. Values are Python floats computed in
float64. A pure module (numpy, scipy; the SSIM window is the pixel library's), no Django.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from . import pixel

__all__ = [
    "reaches_ssim_area",
    "inside_of",
    "mask_from_reference",
    "masked_pixel_metrics",
    "masked_ms_ssim",
    "masked_ssim",
]

#: The pixel library's SSIM window: Gaussian σ = 1.5, 11 taps (radius 5), normalised to sum 1.
_RADIUS = pixel.SSIM_RADIUS
_TAPS = np.exp(-(np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64) ** 2) / (2 * pixel.SSIM_SIGMA**2))
_TAPS /= _TAPS.sum()


def mask_from_reference(reference, threshold: float, *, fill_holes: bool = True, largest_component: bool = True):
    """The region computed from a reference image by a fixed, documented rule.

    1. **Threshold**: voxels whose reference intensity is strictly above ``threshold`` (in the
       reference's units, e.g. −500 HU for a CT body, 0.05 for a [0, 1] MR brain).
    2. **Largest component** (``largest_component``): only the largest connected component is kept
       (face connectivity: 4 in 2-D, 6 in 3-D), which drops the table, noise specks and
       labels burnt into the background; ties keep the first component in scan order.
    3. **Hole filling** (``fill_holes``): enclosed holes are filled, slice by slice along the first
       axis for a volume (air in the bowel or sinuses is inside the body although dark), and then in
       the whole image (``scipy.ndimage.binary_fill_holes``).

    Args:
        reference: ``(H, W)`` or ``(D, H, W)``, real, finite.
        threshold: the intensity above which a voxel is foreground.

    Returns:
        A boolean array of the reference's shape, with at least one voxel inside.

    Raises:
        ValueError: wrong dimensionality, non-finite values, or no voxel above the threshold.
    """
    reference = np.asarray(reference)
    if reference.ndim not in (2, 3):
        raise ValueError(f"mask_from_reference takes an (H, W) or (D, H, W) image; got shape {reference.shape}")
    if not math.isfinite(float(threshold)):
        raise ValueError(f"the threshold must be a finite number; got {threshold!r}")
    if not np.isfinite(reference).all():
        raise ValueError("the reference holds NaN or infinite voxels; no region can be computed from it")
    inside = reference > threshold
    if not inside.any():
        raise ValueError(
            f"no voxel of the reference is above the region threshold {threshold:g} "
            f"(its intensities run from {float(reference.min()):g} to {float(reference.max()):g})"
        )
    if largest_component:
        labels, count = ndimage.label(inside)
        if count > 1:
            sizes = np.bincount(labels.ravel())[1:]
            inside = labels == (int(np.argmax(sizes)) + 1)
    if fill_holes:
        if inside.ndim == 3:
            inside = np.stack([ndimage.binary_fill_holes(plane) for plane in inside])
        inside = ndimage.binary_fill_holes(inside)
    return inside


def inside_of(mask, spatial: tuple[int, ...]) -> np.ndarray:
    """The boolean inside of a mask of shape ``spatial`` (boolean as is; numbers: > 0, none negative).

    Raises:
        ValueError: another shape, NaN or infinity, negative values, or no voxel inside.
    """
    mask = np.asarray(mask)
    if mask.shape != tuple(spatial):
        raise ValueError(f"the region mask has shape {mask.shape}; the images' spatial shape is {tuple(spatial)}")
    if mask.dtype != np.bool_:
        if not np.isfinite(mask).all():
            raise ValueError("the region mask holds NaN or infinite values")
        if (mask < 0).any():
            raise ValueError("the region mask holds negative values; give a boolean mask or one with > 0 inside")
        mask = mask > 0
    if not mask.any():
        raise ValueError("the region mask selects no voxel")
    return mask


def _pair(prediction, reference, mask):
    prediction = np.asarray(prediction, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction {prediction.shape} and reference {reference.shape} differ in shape")
    if reference.ndim not in (3, 4):
        raise ValueError(f"give one case as (C, H, W) or (C, D, H, W); got shape {reference.shape}")
    for name, array in (("prediction", prediction), ("reference", reference)):
        if not np.isfinite(array).all():
            raise ValueError(f"the {name} holds NaN or infinite voxels")
    return prediction, reference, inside_of(mask, reference.shape[1:])


def _filter(image: np.ndarray) -> np.ndarray:
    """The 11-tap Gaussian over every axis of a ``(*spatial)`` image, valid region only."""
    for axis in range(image.ndim):
        image = ndimage.correlate1d(image, _TAPS, axis=axis, mode="constant")
    return image[tuple(slice(_RADIUS, size - _RADIUS) for size in image.shape)]


def _maps(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    """(SSIM map, contrast-structure map) of two ``(*spatial)`` images over the valid region: the pixel
    library's definition (Wang et al. 2004, Gaussian window, population (co)variances)."""
    c1 = (pixel.SSIM_K1 * data_range) ** 2
    c2 = (pixel.SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _filter(x), _filter(y)
    var_x = _filter(x * x) - mu_x * mu_x
    var_y = _filter(y * y) - mu_y * mu_y
    cov = _filter(x * y) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return luminance * cs, cs


def _valid(weights: np.ndarray) -> np.ndarray:
    return weights[tuple(slice(_RADIUS, size - _RADIUS) for size in weights.shape)]


def reaches_ssim_area(mask) -> bool:
    """Whether a ``(*spatial)`` boolean mask has a voxel in the SSIM window's valid area (5 voxels in from
    every border): SSIM and MS-SSIM inside a region need one."""
    return bool(_valid(np.asarray(mask, dtype=bool)).any())


def _weighted_mean(values: np.ndarray, weights: np.ndarray, scale: int) -> float:
    total = float(weights.sum())
    if total <= 0:
        raise ValueError(
            f"the region has no voxel left inside the SSIM window's valid area at scale {scale + 1} "
            f"({_RADIUS} voxels are dropped at each border)"
        )
    return float((values * weights).sum() / total)


def masked_ssim(prediction, reference, mask, *, data_range: float) -> float:
    """SSIM inside a region: the pixel library's SSIM map (``pixel.ssim``: Gaussian σ = 1.5, 11 taps,
    borders excluded) averaged over the mask's voxels in the valid region, per channel, then over channels.

    The local statistics near the region's edge still see the voxels just outside it (the window is
    not cut by the mask); what the mask decides is which voxels' SSIM enters the mean. With every voxel
    inside this is ``pixel.ssim``.
    """
    prediction, reference, inside = _pair(prediction, reference, mask)
    pixel._check_ssim_size(reference.shape[1:])
    data_range = pixel._check_data_range(data_range)
    weights = _valid(inside.astype(np.float64))
    means = [_weighted_mean(_maps(p, r, data_range)[0], weights, 0) for p, r in zip(prediction, reference, strict=True)]
    return float(np.mean(means))


def _pool(image: np.ndarray) -> np.ndarray:
    """Average pooling by 2 over every axis (kernel 2, stride 2, rounding down), as the pixel library's."""
    cropped = image[tuple(slice(0, size - size % 2) for size in image.shape)]
    shape = [n for size in cropped.shape for n in (size // 2, 2)]
    return cropped.reshape(shape).mean(axis=tuple(range(1, 2 * image.ndim, 2)))


def masked_ms_ssim(prediction, reference, mask, *, data_range: float) -> float:
    """MS-SSIM inside a region: ``pixel.ms_ssim`` (MONAI's definition: contrast-structure at the finer
    scales, SSIM at the coarsest, relu on each scale's mean, average pooling by 2 between scales; fewer
    scales with renormalised weights for images under 176 per axis) with each scale's map averaged over
    the region instead of the whole valid area.

    The region follows the images down the scales: at each scale a voxel's weight is the share of the
    full-resolution voxels under it that are inside (the mask average-pooled like the images), so the
    finest scale weighs inside voxels 1 and outside 0, and coarser scales weigh edge voxels by how much
    of them is inside. With every voxel inside this is ``pixel.ms_ssim``.
    """
    prediction, reference, inside = _pair(prediction, reference, mask)
    spatial = reference.shape[1:]
    pixel._check_ssim_size(spatial)
    data_range = pixel._check_data_range(data_range)
    weights = list(pixel.MS_SSIM_WEIGHTS)
    scales = min(len(weights), pixel.ms_ssim_max_scales(spatial))
    used = weights[:scales]
    if scales < len(weights):
        used = [w * (sum(weights) / sum(used)) for w in used]
    x, y, share = prediction, reference, inside.astype(np.float64)
    result = 1.0
    for scale in range(scales):
        last = scale == scales - 1
        valid = _valid(share)
        terms = []
        for channel in range(x.shape[0]):
            ssim_map, cs_map = _maps(x[channel], y[channel], data_range)
            terms.append(_weighted_mean(ssim_map if last else cs_map, valid, scale))
        result *= max(float(np.mean(terms)), 0.0) ** used[scale]
        if not last:
            x = np.stack([_pool(channel) for channel in x])
            y = np.stack([_pool(channel) for channel in y])
            share = _pool(share)
    return float(result)


def masked_pixel_metrics(prediction, reference, mask, *, data_range: float, keys) -> dict[str, float]:
    """The ``"medgen"`` profile's pixel metrics of one case over the voxels inside ``mask``.

    * ``mse``, ``mae``: means of ``(p − r)²`` and ``|p − r|`` over the inside voxels of every channel;
    * ``nmse``: ``Σ (p − r)² / Σ r²`` over the inside voxels;
    * ``psnr``: ``10·log10(data_range² / mse)`` with that masked MSE (+inf when it is 0);
    * ``ssim``, ``ms_ssim``: :func:`masked_ssim`, :func:`masked_ms_ssim`.

    Args:
        prediction, reference: ``(C, H, W)`` or ``(C, D, H, W)``, same shape, finite.
        mask: ``(*spatial)``, boolean or non-negative (> 0 inside), at least one voxel inside.
        data_range: the task's intensity range (PSNR, SSIM, MS-SSIM).
        keys: which of ``psnr, ssim, ms_ssim, mse, mae, nmse`` to compute.

    Returns:
        ``{key: value}`` as Python floats.

    Raises:
        ValueError: shapes, NaN or infinity, an empty region, an unknown key, images too small for
            SSIM, or a region with no voxel in the SSIM window's valid area.
    """
    prediction, reference, inside = _pair(prediction, reference, mask)
    difference = (prediction - reference)[:, inside]
    squared = float(np.vdot(difference, difference))
    mse = squared / difference.size
    values = {}
    for key in keys:
        if key == "mse":
            values[key] = mse
        elif key == "mae":
            values[key] = float(np.abs(difference).mean())
        elif key == "nmse":
            energy = float(np.square(reference[:, inside]).sum())
            values[key] = squared / energy if energy else (math.nan if squared == 0 else math.inf)
        elif key == "psnr":
            values[key] = math.inf if mse == 0 else 10.0 * math.log10(float(data_range) ** 2 / mse)
        elif key == "ssim":
            values[key] = masked_ssim(prediction, reference, inside, data_range=data_range)
        elif key == "ms_ssim":
            values[key] = masked_ms_ssim(prediction, reference, inside, data_range=data_range)
        else:
            raise ValueError(f"no masked form of the metric {key!r}; known: psnr, ssim, ms_ssim, mse, mae, nmse")
    return values
