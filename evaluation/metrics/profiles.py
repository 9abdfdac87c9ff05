"""Evaluation profiles: one case scored the way a published challenge's code scores it.

A profile is a named convention for the per-case pixel metrics: which metrics, which window,
which intensity range, which mask. The same pair of images gives three different SSIMs under
MedGen Eval's own convention (Wang et al.'s Gaussian window, ``max − min``), fastMRI's (a 7 × 7
uniform window per slice, ``reference.max()``) and SynthRAD2025's (a masked 3-D MS-SSIM on a
fixed HU range), so a number is only comparable with numbers computed under the same profile.
Each profile here reproduces its published code and is tested against that code, run in the
tests, to 1e-6 relative on real images:

* ``"medgen"`` (the default): MedGen Eval's pixel metrics, exactly as ``evaluation.metrics.pixel``
  computes them for the evaluation job (see ``catalog.PIXEL_METRICS``).
* ``"fastmri"``: ``nmse``, ``psnr``, ``ssim`` of facebookresearch/fastMRI's ``fastmri/evaluate.py``.
* ``"synthrad2025"``: ``mae``, ``psnr``, ``ms_ssim`` of the SynthRAD2025 challenge's
  ``image_metrics.py``, ``ImageMetrics().score_patient(gt, pred, mask)``.

Input (every profile): ``prediction`` and ``reference`` are numpy arrays (or array-likes) of one
case, the same shape, ``(D, H, W)`` or ``(H, W)``, in the reference's intensity units (HU for
CT), any real dtype; values are computed in float64 whatever the dtype and returned as Python
floats. Where the published code is silent or crashes, the profiles decide: a NaN or infinite
voxel anywhere (prediction, reference, mask) and mismatched shapes raise ``ValueError``; see
each profile for the rest. Inputs are never modified.

A pure module: plain numpy, scipy and scikit-image (no Django). A change that changes a value
for the same input bumps the profile's version in :data:`PROFILES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter
from skimage.metrics import structural_similarity

from . import catalog

__all__ = [
    "DEFAULT_PROFILE",
    "FASTMRI_COMMIT",
    "PROFILES",
    "SYNTHRAD2025_COMMIT",
    "SYNTHRAD2025_HU_RANGE",
    "Profile",
    "evaluate",
    "fastmri",
    "get",
    "medgen",
    "synthrad2025",
]

FASTMRI_COMMIT = "91f2df4711adbb6d643df1810f234e4abcf5881b"
SYNTHRAD2025_COMMIT = "17cac47b6288fcb66c5818c9d50eb9534d613fa2"

#: fastMRI's SSIM: scikit-image's default window (7 × 7 uniform, sample covariance, K1 0.01, K2 0.03).
FASTMRI_SSIM_WIN_SIZE = 7

#: SynthRAD2025's fixed CT range in HU: images are clipped to it for PSNR and MS-SSIM, voxels
#: outside the mask are set to its minimum, and PSNR's peak and SSIM's data range are its width.
SYNTHRAD2025_HU_RANGE = (-1024.0, 3071.0)
#: Per-scale exponents of SynthRAD2025's MS-SSIM (Wang, Simoncelli & Bovik 2003, finest first),
#: applied to the luminance, contrast and structure terms alike at every scale.
SYNTHRAD2025_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Every axis shorter than this is edge-padded to it before the MS-SSIM (five scales of a 7-wide window).
SYNTHRAD2025_MS_SSIM_MIN_SIZE = 97
#: SynthRAD2025's SSIM window: 7 voxels per axis, uniform, sample covariance (N / (N − 1)).
SYNTHRAD2025_SSIM_WIN_SIZE = 7
SYNTHRAD2025_K1 = 0.01
SYNTHRAD2025_K2 = 0.03


# --------------------------------------------------------------------------------------------
# Input checks shared by the profiles


def _as_array(value, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued; got dtype {array.dtype}")
    return array


def _check_finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind not in "fc":  # integers and booleans are always finite
        return
    finite = np.isfinite(array)
    if not finite.all():
        nans = int(np.isnan(array).sum())
        infs = int(array.size - finite.sum()) - nans
        raise ValueError(
            f"{name} holds non-finite values ({nans} NaN, {infs} infinite voxels of {array.size}); "
            "a profile scores finite images only"
        )


def _prepare_pair(prediction, reference, *, profile: str, ndims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Check shape, dimensionality and finiteness; return float64 copies (prediction, reference)."""
    prediction = _as_array(prediction, "prediction")
    reference = _as_array(reference, "reference")
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction and reference must have the same shape; got {prediction.shape} and {reference.shape}"
        )
    if reference.ndim not in ndims:
        wanted = " or ".join({2: "(H, W)", 3: "(D, H, W)"}[n] for n in ndims)
        raise ValueError(f"the {profile!r} profile takes {wanted} images; got shape {reference.shape}")
    if reference.size == 0:
        raise ValueError(f"images must hold at least one voxel; got shape {reference.shape}")
    _check_finite(prediction, "prediction")
    _check_finite(reference, "reference")
    return prediction.astype(np.float64), reference.astype(np.float64)


def _refuse_mask(mask, profile: str) -> None:
    if mask is not None:
        raise ValueError(f"the {profile!r} profile takes no mask (it scores every voxel); got one")


def _refuse_data_range(data_range, profile: str) -> None:
    if data_range is not None:
        raise ValueError(f"the {profile!r} profile fixes its own intensity range; data_range cannot be set")


# --------------------------------------------------------------------------------------------
# "medgen": our own pixel metrics


def medgen(prediction, reference, mask=None, *, data_range: float | None = None) -> dict[str, float]:
    """MedGen Eval's pixel metrics for one case, as the evaluation job computes them.

    The functions of ``catalog.PIXEL_METRICS`` (``evaluation.metrics.pixel``): PSNR
    ``10·log10(data_range² / MSE)``, SSIM of Wang et al. 2004 (Gaussian window σ = 1.5, 11 taps,
    population covariance, borders excluded), MS-SSIM as MONAI computes it (fewer scales for
    images under 176 per axis, see ``pixel.ms_ssim``), NMSE, MAE and MSE over all voxels.

    Args:
        prediction, reference: ``(D, H, W)`` or ``(H, W)``, same shape, any real dtype; every axis
            at least 11 (the SSIM window).
        mask: must be None (this profile scores every voxel).
        data_range: the intensity range of PSNR, SSIM and MS-SSIM (the job passes its task's
            window); None: ``reference.max() − reference.min()`` of this case.

    Returns:
        ``{"psnr", "ssim", "ms_ssim", "nmse", "mae", "mse"}`` as Python floats (psnr in dB, +inf
        for an identical prediction; mae in intensity units, mse in units²).

    Raises:
        ValueError: shapes, NaN or infinity, a mask, a constant reference without data_range,
            an axis under 11.
    """
    _refuse_mask(mask, "medgen")
    prediction, reference = _prepare_pair(prediction, reference, profile="medgen", ndims=(2, 3))
    if data_range is None:
        data_range = float(reference.max() - reference.min())
        if not data_range > 0:
            raise ValueError("the reference is constant, so max − min gives no data_range; pass data_range")
    batch = (1, 1, *reference.shape)  # (N, C, *spatial) for the pixel library
    generated, target = prediction.reshape(batch), reference.reshape(batch)
    return {
        key: float(catalog.PIXEL_METRICS[key].compute(generated, target, data_range=data_range)[0])
        for key in MEDGEN_KEYS
    }


MEDGEN_KEYS = tuple(catalog.DEFAULT_PIXEL_METRICS)


# --------------------------------------------------------------------------------------------
# "fastmri"


def fastmri(prediction, reference, mask=None, *, data_range: float | None = None) -> dict[str, float]:
    """NMSE, PSNR and SSIM of one volume as fastMRI's published evaluation computes them.

    Convention: facebookresearch/fastMRI ``fastmri/evaluate.py`` (commit ``FASTMRI_COMMIT``),
    ``nmse(gt, pred)``, ``psnr(gt, pred)`` and ``ssim(gt, pred)`` with gt = reference and
    pred = prediction, maxval left at its default:

    * ``nmse = ‖reference − prediction‖² / ‖reference‖²`` over the whole volume;
    * ``psnr = 10·log10(reference.max()² / MSE)`` in dB, the MSE over the whole volume (the peak
      is the reference's maximum, not a range);
    * ``ssim``: the mean over slices (the first axis) of 2-D SSIM with scikit-image's default
      window, 7 × 7 uniform, sample covariance (49/48), K1 = 0.01, K2 = 0.03, reflect-padded
      filtering with a 3-pixel border cropped, and ``data_range = reference.max()`` of the
      whole volume for every slice. This reuses scikit-image's ``structural_similarity`` (what
      fastMRI calls) on float64 copies of each slice.

    Where fastMRI's code is silent: the inputs are converted to float64 (fastMRI computes in
    the inputs' dtype, so float32 volumes give float32-rounded values there); an ``(H, W)``
    image is a one-slice volume (fastMRI's ssim raises for it); there is no mask; a reference
    whose maximum is 0 raises (fastMRI returns -inf dB and NaN); an identical prediction gives
    ``psnr = +inf`` without a warning.

    Args:
        prediction, reference: ``(D, H, W)`` (slices first) or ``(H, W)``, same shape, any real
            dtype, every slice at least 7 × 7; magnitude images as fastMRI scores them.
        mask, data_range: must be None.

    Returns:
        ``{"nmse", "psnr", "ssim"}`` as Python floats.
    """
    _refuse_mask(mask, "fastmri")
    _refuse_data_range(data_range, "fastmri")
    prediction, reference = _prepare_pair(prediction, reference, profile="fastmri", ndims=(2, 3))
    if reference.ndim == 2:
        prediction, reference = prediction[None], reference[None]
    if min(reference.shape[1:]) < FASTMRI_SSIM_WIN_SIZE:
        raise ValueError(
            f"fastMRI's SSIM needs slices of at least {FASTMRI_SSIM_WIN_SIZE} × {FASTMRI_SSIM_WIN_SIZE} "
            f"(its uniform window); got slices of {reference.shape[1:]}"
        )
    maxval = float(reference.max())
    if maxval == 0:
        raise ValueError("fastMRI's peak is reference.max(), and this reference's maximum is 0")
    difference = reference - prediction
    squared_error = float(np.vdot(difference, difference))
    nmse = squared_error / float(np.vdot(reference, reference))
    mse = squared_error / reference.size
    psnr = math.inf if mse == 0 else 10.0 * math.log10(maxval**2 / mse)
    ssim = math.fsum(
        structural_similarity(reference[s], prediction[s], data_range=maxval) for s in range(reference.shape[0])
    )
    return {"nmse": nmse, "psnr": psnr, "ssim": ssim / reference.shape[0]}


# --------------------------------------------------------------------------------------------
# "synthrad2025"


def _inside(mask, shape: tuple[int, ...]) -> np.ndarray:
    """The boolean 'inside' of a mask: None -> every voxel; boolean as is; numbers: > 0."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = _as_array(mask, "mask")
    if mask.shape != shape:
        raise ValueError(f"mask must have the images' shape {shape}; got {mask.shape}")
    if mask.dtype == np.bool_:
        inside = mask
    else:
        _check_finite(mask, "mask")
        if (mask < 0).any():
            raise ValueError("mask must be boolean or non-negative (voxels > 0 are inside); it holds negative values")
        inside = mask > 0
    if not inside.any():
        raise ValueError("mask selects no voxel; SynthRAD2025's metrics are means over the voxels inside it")
    return inside


def _halve(image: np.ndarray) -> np.ndarray:
    """SynthRAD2025's 2× downsampling: average 2 × 2 × 2 blocks, then keep every other voxel.

    Their ``fftconvolve(im, ones((2, 2, 2)) / 8, mode="same")[::2, ::2, ::2]`` averages, along each
    axis, samples ``2j − 1`` and ``2j``: the output's first sample averages the input's first with
    a zero (outside the image), and an axis of length n keeps ceil(n / 2) samples (an even
    length's last sample is dropped). Computed directly (separably, exact up to float rounding)
    instead of by FFT.
    """
    for axis in range(image.ndim):
        image = np.moveaxis(image, axis, 0)
        halved = image[0::2].copy()  # ceil(n / 2) samples: 2j
        halved[1:] += image[1::2][: halved.shape[0] - 1]  # 2j − 1 for j >= 1; j = 0 pairs with a zero
        halved *= 0.5
        image = np.moveaxis(halved, 0, axis)
    return image


def _crop(image: np.ndarray, width: int) -> np.ndarray:
    return image[tuple(slice(width, size - width) for size in image.shape)]


def _synthrad_ssim_map(x: np.ndarray, y: np.ndarray, data_range: float, weight: float) -> np.ndarray:
    """SynthRAD2025's SSIM map at one scale: ``L^w · C^w · S^w``, each term clipped at 0.

    Local statistics under a 7-voxel uniform window (``scipy.ndimage.uniform_filter``, reflect
    mode) with sample (co)variances (``N / (N − 1)``, N = 7³); ``C1 = (K1·R)²``, ``C2 = (K2·R)²``,
    ``C3 = C2 / 2``; ``L = (2μxμy + C1) / (μx² + μy² + C1)``, ``C = (2σxσy + C2) / (σx² + σy² + C2)``
    and ``S = (σxy + C3) / (σxσy + C3)`` with ``σ = sqrt(max(σ², 0))``. The same exponent w for the
    three terms: in their code the luminance weights (0 except at the coarsest scale) are
    overwritten by the scale weights just before use.
    """
    # In place where possible (a CT volume is hundreds of MB per array), in their order of operations.
    size = SYNTHRAD2025_SSIM_WIN_SIZE
    points = size**x.ndim
    cov_norm = points / (points - 1)
    c1 = (SYNTHRAD2025_K1 * data_range) ** 2
    c2 = (SYNTHRAD2025_K2 * data_range) ** 2
    c3 = c2 / 2
    ux = uniform_filter(x, size=size)
    uy = uniform_filter(y, size=size)
    vx = uniform_filter(x * x, size=size)  # then cov_norm · (E[x²] − μx²)
    vx -= ux * ux
    vx *= cov_norm
    vy = uniform_filter(y * y, size=size)
    vy -= uy * uy
    vy *= cov_norm
    vxy = uniform_filter(x * y, size=size)
    vxy -= ux * uy
    vxy *= cov_norm
    luminance = 2 * ux * uy  # L = (2μxμy + C1) / (μx² + μy² + C1), clipped at 0
    luminance += c1
    ux *= ux
    uy *= uy
    ux += uy
    ux += c1
    luminance /= ux
    np.maximum(luminance, 0.0, out=luminance)
    del ux, uy
    sxsy = np.sqrt(np.maximum(vx, 0.0))  # σxσy with each σ = sqrt(max(σ², 0))
    sxsy *= np.sqrt(np.maximum(vy, 0.0))
    contrast = 2 * sxsy  # C = (2σxσy + C2) / (σx² + σy² + C2), clipped at 0
    contrast += c2
    vx += vy
    vx += c2
    contrast /= vx
    np.maximum(contrast, 0.0, out=contrast)
    del vx, vy
    vxy += c3  # S = (σxy + C3) / (σxσy + C3), clipped at 0
    sxsy += c3
    vxy /= sxsy
    structure = np.maximum(vxy, 0.0, out=vxy)
    del sxsy
    result = luminance**weight
    result *= contrast**weight
    result *= structure**weight
    return result


def _synthrad_ms_ssim(reference: np.ndarray, prediction: np.ndarray, inside: np.ndarray) -> float:
    """SynthRAD2025's masked MS-SSIM (the second value of their ``ImageMetrics.ms_ssim``).

    Both images are clipped to the HU range, voxels outside the mask set to its minimum, shifted
    by it to be non-negative, and every axis under 97 voxels edge-padded to 97 (images and mask,
    the pad split as evenly as possible, the extra voxel after). At each of five scales the SSIM
    map (:func:`_synthrad_ssim_map`, R = 4095) is averaged over the mask's voxels inside the
    3-voxel-cropped region; between scales the images are halved (:func:`_halve`) and the mask
    subsampled (every other voxel). The result is the product of the five means, each clipped
    to [0, 1].
    """
    lo, hi = SYNTHRAD2025_HU_RANGE
    x = np.where(inside, np.clip(reference, lo, hi), lo) - lo
    y = np.where(inside, np.clip(prediction, lo, hi), lo) - lo
    missing = [max(0, SYNTHRAD2025_MS_SSIM_MIN_SIZE - n) for n in x.shape]
    pads = [(m // 2, m - m // 2) for m in missing]
    x, y, inside = (np.pad(a, pads, mode="edge") for a in (x, y, inside))
    border = (SYNTHRAD2025_SSIM_WIN_SIZE - 1) // 2
    means = []
    for scale, weight in enumerate(SYNTHRAD2025_MS_SSIM_WEIGHTS):
        ssim_map = _synthrad_ssim_map(x, y, hi - lo, weight)
        selected = _crop(ssim_map, border)[_crop(inside, border)]
        if selected.size == 0:
            raise ValueError(
                f"the mask has no voxel left at MS-SSIM scale {scale + 1} of {len(SYNTHRAD2025_MS_SSIM_WEIGHTS)} "
                "(after subsampling and cropping the window's border); SynthRAD2025's code gives NaN here"
            )
        means.append(min(max(float(selected.mean(dtype=np.float64)), 0.0), 1.0))
        if scale + 1 < len(SYNTHRAD2025_MS_SSIM_WEIGHTS):
            x, y, inside = _halve(x), _halve(y), inside[::2, ::2, ::2]
    return math.prod(means)


def synthrad2025(prediction, reference, mask=None, *, data_range: float | None = None) -> dict[str, float]:
    """MAE, PSNR and MS-SSIM of one CT volume as the SynthRAD2025 challenge scores it.

    Convention: SynthRAD2025/evaluation ``image_metrics.py`` (commit ``SYNTHRAD2025_COMMIT``),
    ``ImageMetrics().score_patient(gt, pred, mask)`` with gt = reference, pred = prediction:

    * ``mae``: mean ``|reference − prediction|`` over the voxels inside the mask, in HU, on the
      images as given (not clipped);
    * ``psnr``: both images clipped to [−1024, 3071] HU, ``10·log10(4095² / MSE)`` in dB with the
      MSE over the voxels inside the mask (the population range, not the image's);
    * ``ms_ssim``: the masked 3-D MS-SSIM of :func:`_synthrad_ms_ssim`, on images clipped to the
      range whose outside-mask voxels are set to −1024 HU. Two details of their code read
      otherwise than they run, and this follows what runs: the luminance term is weighted like
      the other two at every scale, and the 2× downsampling averages each axis's first sample
      with a zero.

    Where their code is silent or crashes: 3-D only (an ``(H, W)`` image raises); ``mask=None``
    means every voxel is inside (their MS-SSIM crashes on None); a mask is boolean or
    non-negative numbers, voxels > 0 inside (their masking reads ``!= 0`` in one place and
    ``> 0`` in others, which differ only for negative values); an empty mask, or one that
    leaves no voxel at a coarse MS-SSIM scale, raises (they give NaN); float64 throughout.

    Args:
        prediction, reference: ``(D, H, W)``, same shape, any real dtype, in HU.
        mask: None, or ``(D, H, W)`` boolean or non-negative (e.g. the body mask).
        data_range: must be None (the range is fixed at 4095 HU).

    Returns:
        ``{"mae", "psnr", "ms_ssim"}`` as Python floats (psnr +inf for identical images).
    """
    _refuse_data_range(data_range, "synthrad2025")
    prediction, reference = _prepare_pair(prediction, reference, profile="synthrad2025", ndims=(3,))
    inside = _inside(mask, reference.shape)
    mae = float(np.abs(reference[inside] - prediction[inside]).mean(dtype=np.float64))
    lo, hi = SYNTHRAD2025_HU_RANGE
    error = np.clip(reference[inside], lo, hi) - np.clip(prediction[inside], lo, hi)
    mse = float(np.vdot(error, error)) / error.size
    psnr = math.inf if mse == 0 else 10.0 * math.log10((hi - lo) ** 2 / mse)
    return {"mae": mae, "psnr": psnr, "ms_ssim": _synthrad_ms_ssim(reference, prediction, inside)}


# --------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Profile:
    """A named evaluation convention: what the catalogue and the leaderboard show beside its numbers."""

    name: str
    label: str
    keys: tuple[str, ...]
    #: catalog.HIGHER or catalog.LOWER per key.
    directions: Mapping[str, str]
    #: Bumped whenever a value changes for the same input.
    version: str
    #: Where the convention is defined (the published code, pinned to a commit).
    definition_url: str
    description: str
    compute: Callable[..., dict[str, float]]


def _medgen_version() -> str:
    # The profile's own version, then each metric's: a metric's version bump changes the profile's.
    return "1+" + ".".join(f"{key}{catalog.metric_version(key)}" for key in MEDGEN_KEYS)


PROFILES: dict[str, Profile] = {
    "medgen": Profile(
        name="medgen",
        label="MedGen Eval",
        keys=MEDGEN_KEYS,
        directions={key: catalog.PIXEL_METRICS[key].direction for key in MEDGEN_KEYS},
        version=_medgen_version(),
        definition_url="evaluation/metrics/pixel.py",
        description="MedGen Eval's pixel metrics: SSIM of Wang et al. 2004 (Gaussian σ = 1.5), MONAI's MS-SSIM, "
        "PSNR with the task's data range, NMSE, MAE, MSE over all voxels.",
        compute=medgen,
    ),
    "fastmri": Profile(
        name="fastmri",
        label="fastMRI",
        keys=("nmse", "psnr", "ssim"),
        directions={"nmse": catalog.LOWER, "psnr": catalog.HIGHER, "ssim": catalog.HIGHER},
        version="1",
        definition_url=f"https://github.com/facebookresearch/fastMRI/blob/{FASTMRI_COMMIT}/fastmri/evaluate.py",
        description="fastMRI's evaluate.py: NMSE; PSNR with reference.max() as the peak; SSIM per slice with "
        "scikit-image's default 7 × 7 uniform window and data_range = reference.max(), averaged over slices.",
        compute=fastmri,
    ),
    "synthrad2025": Profile(
        name="synthrad2025",
        label="SynthRAD2025",
        keys=("mae", "psnr", "ms_ssim"),
        directions={"mae": catalog.LOWER, "psnr": catalog.HIGHER, "ms_ssim": catalog.HIGHER},
        version="1",
        definition_url=f"https://github.com/SynthRAD2025/evaluation/blob/{SYNTHRAD2025_COMMIT}/image_metrics.py",
        description="SynthRAD2025's image_metrics.py: MAE inside the mask; PSNR inside the mask on [−1024, 3071] HU "
        "with peak 4095; masked 3-D MS-SSIM (7-voxel uniform window) with outside-mask voxels at −1024 HU.",
        compute=synthrad2025,
    ),
}

DEFAULT_PROFILE = "medgen"


def get(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the known profiles otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown evaluation profile {name!r}; known profiles: {', '.join(PROFILES)}") from None


def evaluate(name: str, prediction, reference, mask=None, *, data_range: float | None = None) -> dict[str, float]:
    """Score one case under the profile ``name``: ``{key: value}`` for the profile's keys.

    Args:
        name: a key of :data:`PROFILES` (``"medgen"``, ``"fastmri"``, ``"synthrad2025"``).
        prediction, reference: numpy arrays of one case, the same shape, ``(D, H, W)`` or
            ``(H, W)`` (which the profile accepts: see each), in the reference's intensity units.
        mask: the region scored, where the profile takes one (``"synthrad2025"``); else None.
        data_range: only for ``"medgen"`` (the intensity range of PSNR and SSIM).

    Returns:
        A dict of Python floats, computed in float64, keyed as ``PROFILES[name].keys``.

    Raises:
        ValueError: an unknown profile, NaN or infinite voxels, mismatched shapes, a
            dimensionality or mask the profile does not take.
    """
    return get(name).compute(prediction, reference, mask, data_range=data_range)
