"""Per-sample pixel-fidelity metrics: MSE, MAE, NMSE, PSNR, SSIM and MS-SSIM.

Pure torch + numpy (no Django). Every function takes a prediction and a reference of the same
shape, ``(N, C, H, W)`` for 2D images or ``(N, C, D, H, W)`` for volumes, as torch tensors or
numpy arrays (shared with ``torch.from_numpy`` where possible; any real dtype, computed in
float64), and returns a float64 tensor of shape ``(N,)`` on the inputs' device (CUDA inputs are
computed on CUDA): one value per sample, with multi-channel images averaged over channels (for
MSE, MAE and PSNR the mean over all channels and voxels is the same thing; NMSE uses the whole
sample's norms; see each function). Inputs are never modified.

Non-finite input is not an error: the evaluation job counts non-finite outputs itself before it
calls these functions. A NaN voxel makes its sample's value nan in every metric; an infinite
voxel gives nan for SSIM and MS-SSIM and, for the others, what IEEE arithmetic gives (inf for
MSE and MAE, -inf dB for PSNR). Other samples in the batch are unaffected.

SSIM follows Wang et al. 2004 exactly as scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` does:
the valid region only (borders of radius 5 excluded). MS-SSIM follows MONAI's
``MultiScaleSSIMMetric`` (Wang, Simoncelli & Bovik 2003). The conventions, and how peers
differ, are in the docstrings of :func:`ssim` and :func:`ms_ssim`.

A change here that changes a value for the same input bumps the metric's version in ``catalog``.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MS_SSIM_MIN_SIZE",
    "MS_SSIM_WEIGHTS",
    "SSIM_K1",
    "SSIM_K2",
    "SSIM_SIGMA",
    "SSIM_WIN_SIZE",
    "mae",
    "ms_ssim",
    "ms_ssim_max_scales",
    "ms_ssim_min_size",
    "mse",
    "nmse",
    "psnr",
    "ssim",
    "ssim_map",
]

#: Gaussian window of Wang et al. 2004: sigma 1.5, truncated at 3.5 sigma -> radius 5, 11 taps
#: (scikit-image: ``truncate=3.5``, ``r = int(3.5 * 1.5 + 0.5) = 5``).
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_WIN_SIZE = 2 * SSIM_RADIUS + 1
SSIM_K1 = 0.01
SSIM_K2 = 0.03

#: MS-SSIM scale weights of Wang, Simoncelli & Bovik 2003 (finest scale first), MONAI's default.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Smallest spatial size (every spatial dimension) for the full five-scale MS-SSIM: the coarsest
#: of five scales, after four halvings, must still hold one 11-sample window: 11 * 2**4 = 176.
MS_SSIM_MIN_SIZE = SSIM_WIN_SIZE * 2 ** (len(MS_SSIM_WEIGHTS) - 1)

# Working-set size (elements of the stacked float64 buffer) processed at once: small enough to
# stay in the CPU caches, large enough on a GPU to fill it.
_CHUNK_ELEMENTS = {"cpu": 1 << 20}
_CHUNK_ELEMENTS_DEFAULT = 1 << 26
# Largest stacked buffer for one unit; larger units (a whole CT volume) are cut into slabs.
_SLAB_ELEMENTS = {"cpu": 1 << 25}
_SLAB_ELEMENTS_DEFAULT = 1 << 27
# Outputs per block of the banded filter matrix (see _filter_axis): few flops on a CPU, few
# kernel launches on a GPU.
_BLOCK = {"cpu": 24}
_BLOCK_DEFAULT = 64


# --------------------------------------------------------------------------------------------
# Input handling


def _to_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
            raise TypeError(f"{name} must hold numbers; got a numpy array of dtype {value.dtype}")
        if np.issubdtype(value.dtype, np.complexfloating):
            raise ValueError(f"{name} must be real-valued; got dtype {value.dtype}")
        try:
            value = torch.from_numpy(value if value.flags.writeable else value.copy())
        except (TypeError, ValueError):  # negative strides, or a dtype torch lacks (longdouble)
            value = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float64))
    elif not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or a numpy.ndarray; got {type(value).__name__}")
    if value.is_complex():
        raise ValueError(f"{name} must be real-valued; got dtype {value.dtype}")
    if value.dtype == torch.bool:  # masks: as 0 / 1
        value = value.to(torch.uint8)
    return value


def _check_pair(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate and convert a (pred, target) pair; returns tensors in their original dtype."""
    pred = _to_tensor(pred, "pred")
    target = _to_tensor(target, "target")
    if pred.ndim not in (4, 5):
        raise ValueError(
            "pred must have shape (N, C, H, W) for 2D images or (N, C, D, H, W) for volumes; "
            f"got {pred.ndim} dimensions, shape {tuple(pred.shape)}"
        )
    if target.shape != pred.shape:
        raise ValueError(f"pred and target must have the same shape; got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.device != target.device:
        raise ValueError(f"pred and target must be on the same device; got {pred.device} and {target.device}")
    if pred.shape[1] == 0 or any(size == 0 for size in pred.shape[2:]):
        raise ValueError(f"images must have at least one channel and one voxel; got shape {tuple(pred.shape)}")
    return pred, target


def _check_data_range(data_range) -> float:
    if isinstance(data_range, torch.Tensor) and data_range.numel() == 1:
        data_range = data_range.item()
    elif isinstance(data_range, np.ndarray) and data_range.size == 1:
        data_range = data_range.item()
    if isinstance(data_range, bool) or not isinstance(data_range, numbers.Real):
        raise ValueError(f"data_range must be a positive real number (a scalar); got {data_range!r}")
    value = float(data_range)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"data_range must be finite and > 0; got {value!r}")
    return value


def _f64(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(torch.float64)


# --------------------------------------------------------------------------------------------
# MSE, MAE, NMSE, PSNR


def _difference(pred, target) -> torch.Tensor:
    """``pred - target`` in float64, in a fresh tensor (one temporary; the inputs are untouched)."""
    return pred.to(torch.float64, copy=True).sub_(target)


def _squared_error(pred, target) -> torch.Tensor:
    return _difference(pred, target).square_().flatten(1)


def mse(pred, target) -> torch.Tensor:
    """Mean squared error per sample.

    Args:
        pred, target: ``(N, C, H, W)`` or ``(N, C, D, H, W)``, same shape, any real dtype.

    Returns:
        float64 tensor ``(N,)``: mean over channels and voxels of ``(pred - target)²``, in
        intensity units squared.
    """
    pred, target = _check_pair(pred, target)
    return _squared_error(pred, target).mean(1)


def mae(pred, target) -> torch.Tensor:
    """Mean absolute error per sample.

    Args:
        pred, target: ``(N, C, H, W)`` or ``(N, C, D, H, W)``, same shape, any real dtype.

    Returns:
        float64 tensor ``(N,)``: mean over channels and voxels of ``|pred - target|``, in
        intensity units.
    """
    pred, target = _check_pair(pred, target)
    return _difference(pred, target).abs_().flatten(1).mean(1)


def nmse(pred, target) -> torch.Tensor:
    """Normalised mean squared error per sample: ``‖pred - target‖² / ‖target‖²``.

    The norms are taken over the whole sample (all channels and voxels together), so it is not
    a channel average. Unitless.

    Args:
        pred, target: ``(N, C, H, W)`` or ``(N, C, D, H, W)``, same shape, any real dtype.

    Returns:
        float64 tensor ``(N,)``. A sample whose target is all zero gives ``+inf`` when pred is
        not all zero and ``nan`` when it is (0 / 0); neither raises.
    """
    pred, target = _check_pair(pred, target)
    error = _squared_error(pred, target).sum(1)
    energy = _f64(target).flatten(1).square().sum(1)
    return error / energy


def psnr(pred, target, data_range) -> torch.Tensor:
    """Peak signal-to-noise ratio per sample, ``10 · log10(data_range² / MSE)``, in dB.

    Args:
        pred, target: ``(N, C, H, W)`` or ``(N, C, D, H, W)``, same shape, any real dtype.
        data_range: the intensity range of the reference (e.g. ``max - min`` of a CT's HU
            window, 255 for 8-bit images, 1 for [0, 1]); required, finite and > 0. The MSE is
            over all channels and voxels (as scikit-image's ``peak_signal_noise_ratio``).

    Returns:
        float64 tensor ``(N,)``; ``+inf`` for a sample identical to its reference.
    """
    pred, target = _check_pair(pred, target)
    data_range = _check_data_range(data_range)
    error = _squared_error(pred, target).mean(1)
    return 10.0 * torch.log10(data_range**2 / error)


# --------------------------------------------------------------------------------------------
# Separable Gaussian filtering, valid region only


@functools.lru_cache(maxsize=64)
def _band(n_out: int, device: torch.device) -> torch.Tensor:
    """The ``(n_out + 10, n_out)`` banded matrix whose column j holds the 11 Gaussian taps at rows j..j+10.

    ``x[..., j:j + n + 10] @ band`` is the valid correlation of x with the window (scikit-image's
    ``scipy.ndimage`` Gaussian: ``exp(-x²/2σ²)`` at x = -5..5, normalised to sum 1).
    """
    offsets = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    taps /= taps.sum()
    band = torch.zeros(n_out + 2 * SSIM_RADIUS, n_out, dtype=torch.float64)
    for j in range(n_out):
        band[j : j + SSIM_WIN_SIZE, j] = taps
    return band.to(device)


def _blocks(length: int, device: torch.device) -> list[tuple[int, int]]:
    """Split the ``length - 10`` valid outputs of an axis into blocks of about _BLOCK outputs."""
    n_valid = length - 2 * SSIM_RADIUS
    count = max(1, round(n_valid / _BLOCK.get(device.type, _BLOCK_DEFAULT)))
    size = -(-n_valid // count)
    return [(start, min(size, n_valid - start)) for start in range(0, n_valid, size)]


def _filter_axis(x: torch.Tensor, axis: int, out: torch.Tensor) -> torch.Tensor:
    """Valid Gaussian correlation of x along one axis (length L -> L - 10), written into ``out``.

    Written as matrix products with a banded matrix per block of ~24 outputs on CPUs (about 2·34
    flops per output instead of 2·11 for a direct 11-tap loop, but run by BLAS on every core, and
    each block written in place into its slice of ``out``): on CPUs this is several times
    faster in float64 than ``conv1d``/``conv2d`` (oneDNN has no float64 kernels, so torch falls
    back to im2col), than shifted multiply-adds, and than ``scipy.ndimage.correlate1d`` (one
    core). x and out are contiguous.
    """
    length = x.shape[axis]
    width = 2 * SSIM_RADIUS
    if axis == x.ndim - 1:
        for start, n in _blocks(length, x.device):  # a column slice is a valid BLAS operand (leading dimension)
            torch.matmul(x[..., start : start + n + width], _band(n, x.device), out=out[..., start : start + n])
        return out
    rows, cols = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1 :])
    x3, out3 = x.view(rows, length, cols), out.view(rows, length - width, cols)
    if rows == 1:  # the leading axis: one plain matrix product per block
        x3, out3 = x3[0], out3[0]
    for start, n in _blocks(length, x.device):
        torch.matmul(_band(n, x.device).mT, x3[..., start : start + n + width, :], out=out3[..., start : start + n, :])
    return out


class _Buffers:
    """Work buffers reused from one chunk to the next (fresh large allocations cost page faults)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.flat: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: Sequence[int]) -> torch.Tensor:
        size = math.prod(shape)
        flat = self.flat.get(name)
        if flat is None or flat.numel() < size:
            flat = self.flat[name] = torch.empty(size, dtype=torch.float64, device=self.device)
        return flat[:size].view(*shape)


def _gaussian_valid(x: torch.Tensor, axes: Sequence[int], buffers: _Buffers) -> torch.Tensor:
    """Filter x along each of ``axes`` in turn, keeping the valid region only."""
    for step, axis in enumerate(axes):
        shape = list(x.shape)
        shape[axis] -= 2 * SSIM_RADIUS
        x = _filter_axis(x, axis, buffers.get(f"pass{step}", shape))
    return x


def _check_ssim_size(spatial: Sequence[int]) -> None:
    if any(size < SSIM_WIN_SIZE for size in spatial):
        raise ValueError(
            f"SSIM needs every spatial dimension to be at least {SSIM_WIN_SIZE} (the 11-sample Gaussian "
            f"window, sigma 1.5); got spatial shape {tuple(spatial)}"
        )


def _ssim_units(
    x: torch.Tensor, y: torch.Tensor, data_range: float, *, want_cs: bool = False, map_out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """SSIM (and contrast-structure) means over the valid region of each unit.

    Units (images or volumes, one channel each) are processed a few at a time so that the
    working set stays in cache; a unit too large for memory (e.g. a whole CT) is processed in
    slabs along its first spatial axis, each with a 10-voxel overlap, and the sums combined.

    With ``K = C1 + C2`` folded into the filtered quantities (the window sums to 1):
    ``A1 = 2μxμy + C1``, ``B1 = μx² + μy² + C1``, ``A2 = 2σxy + C2 = (E[2xy] + K) - A1`` and
    ``B2 = σx² + σy² + C2 = (E[x² + y²] + K) - B1``; SSIM = A1·A2 / (B1·B2), cs = A2 / B2.

    Args:
        x, y: ``(U, *spatial)``, any real dtype (each piece is converted to float64).
        map_out: optional float64 ``(U, *valid)`` tensor that receives the SSIM map.

    Returns:
        ``(ssim_mean, cs_mean)``, float64 ``(U,)`` each (cs_mean None unless want_cs).
    """
    units, spatial = x.shape[0], tuple(x.shape[1:])
    n_spatial = len(spatial)
    width = 2 * SSIM_RADIUS
    valid = [size - width for size in spatial]
    device = x.device
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    c1_t = torch.tensor(c1, dtype=torch.float64, device=device)
    k_t = torch.tensor(c1 + c2, dtype=torch.float64, device=device)
    per_unit = 4 * math.prod(spatial)
    slab_cap = _SLAB_ELEMENTS.get(device.type, _SLAB_ELEMENTS_DEFAULT)
    if per_unit <= slab_cap:
        chunk = max(1, _CHUNK_ELEMENTS.get(device.type, _CHUNK_ELEMENTS_DEFAULT) // per_unit)
        slabs = [(0, valid[0])]
    else:
        chunk = 1
        depth = max(width, slab_cap // (4 * math.prod(spatial[1:])) - width)
        slabs = [(start, min(start + depth, valid[0])) for start in range(0, valid[0], depth)]
    buffers = _Buffers(device)
    ssim_sums = torch.zeros(units, dtype=torch.float64, device=device)
    cs_sums = torch.zeros(units, dtype=torch.float64, device=device) if want_cs else None
    for u0 in range(0, units, chunk):
        u1 = min(units, u0 + chunk)
        for o0, o1 in slabs:
            x_piece, y_piece = x[u0:u1, o0 : o1 + width], y[u0:u1, o0 : o1 + width]
            # The four filtered quantities in one batched pass: x, y, x² + y² + K, 2xy + K
            # (σx² and σy² only ever appear as their sum, so one filtered channel serves both),
            # laid out (*leading spatial axes, quantity, unit, last axis) so that every pass is
            # a plain matrix product: the last axis on the right, the first on the left.
            lead = x_piece.shape[1:-1]
            stack = buffers.get("stack", (*lead, 4, u1 - u0, x_piece.shape[-1]))
            quantity = n_spatial - 1  # the quantity axis of stack
            q_x, q_y, q_sq, q_xy = stack.unbind(quantity)
            q_x.copy_(x_piece.movedim(0, -2))  # to float64
            q_y.copy_(y_piece.movedim(0, -2))
            torch.addcmul(k_t, q_x, q_x, out=q_sq)
            q_sq.addcmul_(q_y, q_y)
            torch.addcmul(k_t, q_x, q_y, value=2, out=q_xy)
            axes = (n_spatial + 1, 0) if n_spatial == 2 else (n_spatial + 1, 0, 1)  # last axis first
            mu_x, mu_y, e_sq, e_xy = _gaussian_valid(stack, axes, buffers).unbind(quantity)
            a1 = torch.addcmul(c1_t, mu_x, mu_y, value=2, out=buffers.get("a1", mu_x.shape))
            b1 = torch.addcmul(c1_t, mu_x, mu_x, out=buffers.get("b1", mu_x.shape)).addcmul_(mu_y, mu_y)
            a2 = e_xy.sub_(a1)  # 2σxy + C2
            b2 = e_sq.sub_(b1)  # σx² + σy² + C2 (population variances)
            spatial_dims = [d for d in range(n_spatial + 1) if d != quantity]  # maps: (*lead, unit, last)
            if want_cs:
                cs_sums[u0:u1] += torch.div(a2, b2, out=buffers.get("cs", a2.shape)).sum(spatial_dims)
            ssim_piece = a1.mul_(a2).div_(b1.mul_(b2))
            ssim_sums[u0:u1] += ssim_piece.sum(spatial_dims)
            if map_out is not None:
                map_out[u0:u1, o0:o1] = ssim_piece.movedim(-2, 0)
    count = math.prod(valid)
    return ssim_sums / count, (cs_sums / count if want_cs else None)


# --------------------------------------------------------------------------------------------
# SSIM


def ssim(pred, target, data_range, *, return_map: bool = False):
    """Structural similarity (SSIM) per sample, Wang et al. 2004.

    Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE Trans. Image Process. 13(4):600-612, 2004.

    ``SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`` with local
    statistics under a Gaussian window, σ = 1.5, 11 taps per axis (truncated at radius 5,
    normalised to sum 1), K1 = 0.01, K2 = 0.03, ``C1 = (K1·data_range)²``,
    ``C2 = (K2·data_range)²``, population (co)variances (no N/(N-1) factor), all in float64.
    The map is computed on the valid region only (every output window lies inside the image:
    5 voxels are dropped at each border) and averaged per channel, then over channels.

    Convention: this is scikit-image's
    ``structural_similarity(p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=data_range)`` (it filters with reflection padding, then crops ``(win - 1) // 2 = 5``
    from each border, which leaves exactly the valid region), and equal to it to float rounding
    (tested to 1e-6; multichannel as its ``channel_axis`` mean). It is also MONAI's
    ``SSIMMetric(kernel_type="gaussian")`` (a full non-separable kernel without padding): the same
    definition, but MONAI builds its kernel and computes in float32, which moves values by up to
    a few 1e-5 at data_range 1 (run in float64 it agrees to 1e-12). Peers that differ: torchmetrics ≥ 1.4.2 reflect-pads
    and counts the padded borders in the mean; piq downsamples large images by default. We follow
    scikit-image / MONAI because borders are then not influenced by an invented padding.

    Implementation: the Gaussian is separable, so each axis is filtered in turn (valid
    correlation with the 11 taps written as banded matrix products on the batch), on four
    quantities stacked in one tensor, x, y, x² + y² and 2xy (σx² and σy² enter only as a sum,
    so four filtered channels give all five statistics), a few images at a time so the work
    stays in cache. Large volumes are processed in overlapping slabs (bounded memory).

    Args:
        pred, target: ``(N, C, H, W)`` or ``(N, C, D, H, W)``, same shape, any real dtype;
            every spatial dimension at least 11. Computed on the inputs' device.
        data_range: the intensity range (e.g. ``max - min`` of the reference's HU window, 255,
            1.0); required, finite and > 0.
        return_map: also return the SSIM map.

    Returns:
        float64 tensor ``(N,)`` with values in [-1, 1] (1 for identical images); with
        ``return_map=True`` the tuple ``(values, map)``, map float64 ``(N, C, *[s - 10 for s in
        spatial])``: the per-voxel SSIM over the valid region (index 0 is voxel 5 of the input).
        A non-finite input voxel makes its sample nan (in the map, every output in the same
        filter block, not only within the 11-voxel window).

    Raises:
        ValueError: wrong ndim, mismatched shapes, a spatial dimension below 11, or a bad
            data_range.
    """
    pred, target = _check_pair(pred, target)
    data_range = _check_data_range(data_range)
    n, c, *spatial = pred.shape
    _check_ssim_size(spatial)
    x = pred.reshape(n * c, *spatial)
    y = target.reshape(n * c, *spatial)
    map_out = None
    if return_map:
        valid = [size - 2 * SSIM_RADIUS for size in spatial]
        map_out = torch.empty((n * c, *valid), dtype=torch.float64, device=pred.device)
    means, _ = _ssim_units(x, y, data_range, map_out=map_out)
    values = means.view(n, c).mean(1)
    if return_map:
        return values, map_out.view(n, c, *map_out.shape[1:])
    return values


def ssim_map(pred, target, data_range) -> torch.Tensor:
    """The per-voxel SSIM map over the valid region: ``ssim(..., return_map=True)[1]``.

    Returns:
        float64 tensor ``(N, C, *[s - 10 for s in spatial])``.
    """
    return ssim(pred, target, data_range, return_map=True)[1]


# --------------------------------------------------------------------------------------------
# MS-SSIM


def ms_ssim_min_size(scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Smallest spatial size (every dimension) at which MS-SSIM can use ``scales`` scales.

    The coarsest scale, after ``scales - 1`` halvings (average pooling by 2, rounding down),
    must still hold one 11-sample window: ``11 · 2**(scales - 1)`` (176 for five scales).
    """
    if isinstance(scales, bool) or not isinstance(scales, numbers.Integral) or scales < 1:
        raise ValueError(f"scales must be an integer >= 1; got {scales!r}")
    return SSIM_WIN_SIZE * 2 ** (int(scales) - 1)


def ms_ssim_max_scales(shape: Sequence[int]) -> int:
    """How many MS-SSIM scales an image of this shape allows (0: too small even for SSIM).

    Args:
        shape: the spatial shape ``(H, W)`` / ``(D, H, W)``, or a whole tensor shape
            ``(N, C, H, W)`` / ``(N, C, D, H, W)``.

    Returns:
        the largest ``s`` with every spatial dimension ``>= 11 · 2**(s - 1)``; callers compare
        it with ``len(weights)`` (5 by default) to know in advance whether the full MS-SSIM
        applies.
    """
    shape = tuple(int(size) for size in shape)
    if len(shape) in (4, 5):
        shape = shape[2:]
    elif len(shape) not in (2, 3):
        raise ValueError(f"shape must be (H, W), (D, H, W), (N, C, H, W) or (N, C, D, H, W); got {shape}")
    smallest = min(shape)
    if smallest < SSIM_WIN_SIZE:
        return 0
    return (smallest // SSIM_WIN_SIZE).bit_length()  # largest s with 11 · 2**(s-1) <= smallest


def ms_ssim(pred, target, data_range, *, weights=MS_SSIM_WEIGHTS, scales: int | None = None) -> torch.Tensor:
    """Multi-scale SSIM per sample, Wang, Simoncelli & Bovik 2003, as MONAI computes it.

    Wang, Simoncelli & Bovik, "Multiscale structural similarity for image quality assessment",
    37th Asilomar Conference on Signals, Systems & Computers, 2003, pp. 1398-1402.

    ``MS-SSIM = Π_{i < M} relu(cs_i)^{w_i} · relu(ssim_M)^{w_M}``: at each of the first M - 1
    scales the contrast-structure term ``cs = (2σxy + C2) / (σx² + σy² + C2)`` averaged over the
    valid region and the channels, at the last scale the full SSIM averaged the same way; the
    images are average-pooled by 2 (kernel 2, stride 2, rounding down) between scales. Window,
    constants and float64 as :func:`ssim`. This matches MONAI's ``MultiScaleSSIMMetric(
    kernel_type="gaussian", kernel_size=11, kernel_sigma=1.5)`` term by term (the relu on the
    per-scale means, channel averaging inside each scale, pooling): equal to 1e-12 when MONAI
    runs in float64, and to about 1e-5 (its float32 kernel and arithmetic) as it ships.

    Small images (a deliberate extension; MONAI raises): the default five scales need every
    spatial dimension ``>= MS_SSIM_MIN_SIZE`` (176). With ``scales=None`` an image that allows
    fewer scales (:func:`ms_ssim_max_scales`) uses the first (finest) ``s`` weights, rescaled by
    ``sum(weights) / sum(weights[:s])`` so the exponents keep their total (a similarity equal at
    every scale gives the same value); when every weight fits nothing changes. Values computed
    with fewer scales are not comparable with five-scale values: callers that need the full
    definition pass ``scales=len(weights)`` (then smaller images raise) or check
    ``ms_ssim_max_scales(shape)`` first. One scale is SSIM (relu'd) to the power ``sum(weights)``.

    Args:
        pred, target: ``(N, C, H, W)`` or ``(N, C, D, H, W)``, same shape, any real dtype;
            every spatial dimension at least 11.
        data_range: the intensity range; required, finite and > 0.
        weights: per-scale exponents, finest scale first (non-negative, finite).
        scales: how many scales to use (``1..len(weights)``); None: as many as the size allows.

    Returns:
        float64 tensor ``(N,)`` in [0, 1] (1 for identical images; nan for non-finite input).

    Raises:
        ValueError: wrong ndim or shapes, bad data_range or weights, a spatial dimension below
            11, or ``scales`` more than the image size allows (the message gives the minimum).
    """
    pred, target = _check_pair(pred, target)
    data_range = _check_data_range(data_range)
    weights = _check_weights(weights)
    n, c, *spatial = pred.shape
    _check_ssim_size(spatial)
    available = ms_ssim_max_scales(spatial)
    if scales is None:
        scales = min(len(weights), available)
    else:
        if isinstance(scales, bool) or not isinstance(scales, numbers.Integral) or not 1 <= scales <= len(weights):
            raise ValueError(f"scales must be an integer from 1 to len(weights) = {len(weights)}; got {scales!r}")
        scales = int(scales)
        if scales > available:
            raise ValueError(
                f"MS-SSIM with {scales} scales needs every spatial dimension to be at least "
                f"{ms_ssim_min_size(scales)} (11 · 2**{scales - 1}); got spatial shape {tuple(spatial)}. "
                f"This size allows {available} scale(s): pass scales=None to use them."
            )
    used = weights[:scales]
    if scales < len(weights):
        if sum(used) == 0:
            raise ValueError(
                f"the first {scales} MS-SSIM weights are all zero, so they cannot be rescaled; images of at "
                f"least {ms_ssim_min_size(len(weights))} per dimension use all {len(weights)}: got spatial shape "
                f"{tuple(spatial)}"
            )
        used = [w * (sum(weights) / sum(used)) for w in used]

    pool = F.avg_pool2d if len(spatial) == 2 else F.avg_pool3d
    x, y = _f64(pred), _f64(target)
    result = torch.ones(n, dtype=torch.float64, device=pred.device)
    for scale in range(scales):
        last = scale == scales - 1
        size = x.shape[2:]
        ssim_means, cs_means = _ssim_units(
            x.reshape(n * c, *size), y.reshape(n * c, *size), data_range, want_cs=not last
        )
        term = (ssim_means if last else cs_means).view(n, c).mean(1)
        result *= torch.relu(term) ** used[scale]
        if not last:
            x, y = pool(x, kernel_size=2), pool(y, kernel_size=2)
    return result


def _check_weights(weights) -> list[float]:
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"weights must be a sequence of numbers; got {weights!r}") from exc
    if not values or any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ValueError(f"weights must be a non-empty sequence of finite, non-negative numbers; got {weights!r}")
    return values
