"""Procedural brain MRI phantoms (T1w/T2w with lesions) and Cartesian k-space undersampling.

Everything is generated from a ``numpy.random.Generator``, so a seed fully determines a case and nothing is
downloaded. The anatomy is a layered ellipsoidal head (scalp fat, skull with fatty diploe, CSF rim, folded cortical
grey-matter ribbon, white matter, deep grey nuclei, lateral ventricles, interhemispheric fissure) with 0-3
white-matter lesions. Intensities use relative T1w/T2w tissue contrasts, partial-volume smoothing, a smooth
multiplicative bias field and Rician noise.

Coordinates: arrays are indexed ``[y, x]`` (2D) or ``[z, y, x]`` (3D); row 0 is anterior. Geometry is defined in
normalised head units where the field of view spans [-1, 1] in x and y; the 3D volume covers the whole head with
thick slices (a 32-slice clinical-style acquisition), so z spans about [-1, 1] as well.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Tissue labels of the ``tissue`` map.
BACKGROUND = 0
CSF = 1
GREY_MATTER = 2
WHITE_MATTER = 3
BONE = 4
FAT = 5  # scalp and diploic marrow
LESION = 6
TISSUE_NAMES = ("background", "csf", "grey_matter", "white_matter", "bone", "fat", "lesion")

# Relative signal per label (index = label) for spin-echo-like T1w / T2w contrast at 1.5-3 T:
# T1w: fat > WM > GM > lesion > CSF > bone; T2w: CSF > lesion > GM > fat > WM > bone.
T1_INTENSITY = np.array([0.0, 0.15, 0.52, 0.78, 0.06, 0.95, 0.36], dtype=np.float64)
T2_INTENSITY = np.array([0.0, 1.00, 0.58, 0.40, 0.05, 0.50, 0.85], dtype=np.float64)

_PARTIAL_VOLUME_SIGMA = 0.6  # voxels; smooths label edges like a finite point-spread function


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float | tuple[float, ...]) -> np.ndarray:
    """Low-pass filtered white noise, rescaled to zero mean and unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def _rotation_2d(angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


def _ellipsoid(x, y, z, centre, semi_axes, angle=0.0) -> np.ndarray:
    """Boolean ellipsoid mask; ``angle`` rotates it in the axial (x, y) plane."""
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    cos, sin = np.cos(angle), np.sin(angle)
    u = cos * dx + sin * dy
    v = -sin * dx + cos * dy
    return (u / semi_axes[0]) ** 2 + (v / semi_axes[1]) ** 2 + (dz / semi_axes[2]) ** 2 <= 1.0


def _anatomy(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, z: np.ndarray, voxel_sigma) -> np.ndarray:
    """Hard tissue labels on the grid (x, y, z), which may be a 2D section (constant z) or a 3D volume.

    ``voxel_sigma`` is the voxel count per axis spanning one pixel of a 128-pixel slice; it scales the smoothness
    of the noise fields so that anatomy looks alike at any grid size and slice thickness.
    """
    shape = x.shape
    # Head pose/shape jitter: an ellipsoid of slightly random proportions, rotated and shifted in-plane.
    centre = rng.normal(0.0, 0.03, size=2)
    angle = rng.normal(0.0, np.deg2rad(6.0))
    semi_x, semi_y, semi_z = rng.uniform(0.70, 0.78), rng.uniform(0.86, 0.93), 0.95
    rotation = _rotation_2d(-angle)
    xr = rotation[0, 0] * (x - centre[0]) + rotation[0, 1] * (y - centre[1])
    yr = rotation[1, 0] * (x - centre[0]) + rotation[1, 1] * (y - centre[1])
    zr = z
    # Slightly egg-shaped: the head is wider posteriorly (positive y) than anteriorly.
    semi_x_local = semi_x * (1.0 + 0.07 * yr / semi_y)
    radius = np.sqrt((xr / semi_x_local) ** 2 + (yr / semi_y) ** 2 + (zr / semi_z) ** 2)

    # A slightly lumpy brain surface so that the layers are not perfect ellipses.
    surface_noise = _smooth_noise(rng, shape, [8.0 * s for s in voxel_sigma])
    pial = 0.845 + 0.008 * surface_noise
    labels = np.full(shape, BACKGROUND, dtype=np.uint8)
    labels[radius <= 1.0] = FAT
    labels[radius <= 0.955] = BONE
    labels[(radius <= 0.935) & (radius >= 0.905)] = FAT  # diploe between inner and outer tables
    labels[radius <= 0.88] = CSF
    brain = radius <= pial
    labels[brain] = WHITE_MATTER

    # Gyral folding: an angular wave whose phase is warped by smooth noise, so sulci run inward irregularly.
    # Under gyral crowns (wave = 1) white matter reaches close to the surface; under sulci it starts deeper.
    theta = np.arctan2(yr / semi_y, xr / semi_x)
    n_gyri = rng.integers(20, 27)
    warp = _smooth_noise(rng, shape, [5.0 * s for s in voxel_sigma])
    wave = np.cos(n_gyri * theta + rng.uniform(0, 2 * np.pi) + 3.0 * warp)
    # Towards the vertex and the base the angular pattern would converge into a starburst, so blend into a
    # labyrinthine band-pass noise pattern there (only matters for 3D volumes; axial slices stay angular).
    polar_weight = np.clip((np.abs(zr) / semi_z - 0.45) / 0.3, 0.0, 1.0)
    if polar_weight.any():
        labyrinth = np.tanh(1.5 * _smooth_noise(rng, shape, [2.5 * s for s in voxel_sigma]))
        wave = (1.0 - polar_weight) * wave + polar_weight * labyrinth
    depth = pial - radius
    depth_noise = _smooth_noise(rng, shape, [5.0 * s for s in voxel_sigma])
    sulcal_depth = np.clip(0.14 + 0.04 * depth_noise, 0.06, 0.22)
    cortex_thickness = 0.075
    white_start = cortex_thickness + sulcal_depth * (1.0 - wave) / 2.0
    labels[brain & (depth < white_start)] = GREY_MATTER
    labels[brain & (wave < -0.82) & (depth < sulcal_depth)] = CSF

    # Interhemispheric fissure with its medial cortex, interrupted centrally (corpus callosum level).
    fissure_width = 0.012 + 0.004 * np.abs(depth_noise)
    # The fissure reaches down to the corpus callosum roof centrally and deeper anteriorly/posteriorly.
    callosum_half_length = rng.uniform(0.36, 0.44)
    above_callosum = zr > 0.40
    beside_callosum = (np.abs(yr - 0.03) > callosum_half_length) & (zr > -0.35)
    medial = brain & (above_callosum | beside_callosum)
    labels[medial & (np.abs(xr) < fissure_width + cortex_thickness)] = GREY_MATTER
    labels[medial & (np.abs(xr) < fissure_width)] = CSF

    # Deep grey nuclei (caudate heads and thalami) on both sides.
    for side in (-1.0, 1.0):
        jitter = rng.normal(0.0, 0.01, size=2)
        caudate = _ellipsoid(xr, yr, zr, (side * 0.12 + jitter[0], -0.16 + jitter[1], 0.12), (0.05, 0.09, 0.22))
        thalamus = _ellipsoid(xr, yr, zr, (side * 0.10 + jitter[0], 0.12 + jitter[1], 0.0), (0.08, 0.12, 0.18))
        labels[brain & (caudate | thalamus)] = GREY_MATTER

    # Lateral ventricles (bodies diverging posteriorly), scaled by a random atrophy factor, plus a thin third ventricle.
    atrophy = rng.uniform(0.75, 1.35)
    for side in (-1.0, 1.0):
        ventricle = _ellipsoid(
            xr,
            yr,
            zr,
            (side * (0.015 + 0.06 * atrophy), 0.0, 0.16),
            (0.04 * atrophy, 0.25, 0.22),
            # Negative angle on the right: bodies diverge posteriorly, frontal horns lie close to the septum.
            angle=-side * np.deg2rad(rng.uniform(5.0, 12.0)),
        )
        labels[brain & ventricle] = CSF
    third_ventricle = _ellipsoid(xr, yr, zr, (0.0, 0.10, -0.02), (0.012 * atrophy, 0.10, 0.15))
    labels[brain & third_ventricle] = CSF
    return labels


def _add_lesions(
    rng: np.random.Generator, labels: np.ndarray, x, y, z, count: int, spacing: tuple[float, ...]
) -> np.ndarray:
    """Place ``count`` ellipsoidal lesions centred deep in white matter; return the lesion mask (uint8).

    ``spacing`` is the voxel size per axis in normalised units, for the distance to the white-matter border.
    """
    lesion_mask = np.zeros(labels.shape, dtype=bool)
    white = labels == WHITE_MATTER
    # Centres at least ~2 voxels inside white matter keep lesions surrounded by WM, as in typical MS/SVD lesions.
    depth_in_white = ndimage.distance_transform_edt(white, sampling=spacing)
    candidates = np.argwhere(depth_in_white > 0.035)
    if len(candidates) == 0 or count == 0:
        return lesion_mask.astype(np.uint8)
    for index in rng.choice(len(candidates), size=min(count, len(candidates)), replace=False):
        position = tuple(candidates[index])
        centre = (x[position], y[position], z[position])
        semi_axes = (rng.uniform(0.025, 0.06), rng.uniform(0.025, 0.07), rng.uniform(0.05, 0.12))
        blob = _ellipsoid(x, y, z, centre, semi_axes, angle=rng.uniform(0, np.pi))
        lesion_mask |= blob & ((labels == WHITE_MATTER) | (labels == GREY_MATTER))
    labels[lesion_mask] = LESION
    return lesion_mask.astype(np.uint8)


def _render(
    rng: np.random.Generator, labels: np.ndarray, x, y, smoothing_sigma, texture_sigma, z=None
) -> tuple[np.ndarray, np.ndarray]:
    """Turn labels into T1w/T2w magnitude images with partial volume, texture, bias field and Rician noise.

    ``z`` (3D only) adds a through-slice component to the bias field.
    """
    n_labels = len(TISSUE_NAMES)
    fractions = np.stack(
        [ndimage.gaussian_filter((labels == k).astype(np.float64), smoothing_sigma) for k in range(n_labels)]
    )
    # Mild per-tissue contrast jitter between cases (scanner/protocol variation) and smooth tissue texture.
    t1_values = T1_INTENSITY * rng.uniform(0.95, 1.05, size=n_labels)
    t2_values = T2_INTENSITY * rng.uniform(0.95, 1.05, size=n_labels)
    texture = 1.0 + 0.03 * _smooth_noise(rng, labels.shape, texture_sigma)
    t1 = np.tensordot(t1_values, fractions, axes=1) * texture
    t2 = np.tensordot(t2_values, fractions, axes=1) * texture

    # Receive-coil bias field: a shared low-order polynomial plus a small sequence-specific part, exp() keeps it > 0.
    def polynomial_field(scale: float) -> np.ndarray:
        coefficients = rng.normal(0.0, scale, size=5)
        field = (
            coefficients[0] * x
            + coefficients[1] * y
            + coefficients[2] * x * y
            + coefficients[3] * x**2
            + coefficients[4] * y**2
        )
        if z is not None:
            field = field + rng.normal(0.0, scale) * z + rng.normal(0.0, scale) * z**2
        return field

    shared = polynomial_field(0.10)
    t1 = t1 * np.exp(shared + polynomial_field(0.03))
    t2 = t2 * np.exp(shared + polynomial_field(0.03))

    # Rician noise: magnitude of (signal + complex Gaussian); SNR is relative to white matter (T1w) / grey matter (T2w).
    snr = rng.uniform(25.0, 45.0)

    def rician(image: np.ndarray, reference: float) -> np.ndarray:
        sigma = reference / snr
        real = image + rng.normal(0.0, sigma, size=image.shape)
        imaginary = rng.normal(0.0, sigma, size=image.shape)
        return np.sqrt(real**2 + imaginary**2)

    return rician(t1, t1_values[WHITE_MATTER]).astype(np.float32), rician(t2, t2_values[GREY_MATTER]).astype(np.float32)


def _lesion_count(rng: np.random.Generator) -> int:
    # Most cases carry lesions so that lesion-aware metrics have something to measure.
    return int(rng.choice(4, p=[0.2, 0.3, 0.3, 0.2]))


def make_brain_slice(rng: np.random.Generator, size: int = 128) -> dict[str, np.ndarray]:
    """One axial brain slice at the level of the lateral ventricles.

    Returns float32 ``t1`` and ``t2`` magnitude images (size, size), roughly in [0, 1] (Rician noise and the bias
    field can push a few voxels slightly above 1), a uint8 ``lesion_mask`` and uint8 ``tissue`` labels (see
    ``TISSUE_NAMES``), where lesion voxels carry ``LESION``.
    """
    coordinates = (np.arange(size) - (size - 1) / 2.0) / (size / 2.0)
    y, x = np.meshgrid(coordinates, coordinates, indexing="ij")
    # Random section level near the ventricles; the same 3D model then yields an in-plane ellipse section.
    z = np.full_like(x, rng.uniform(0.02, 0.22))
    scale = size / 128.0
    labels = _anatomy(rng, x, y, z, voxel_sigma=(scale, scale))
    lesion_mask = _add_lesions(rng, labels, x, y, z, _lesion_count(rng), spacing=(2.0 / size,) * 2)
    t1, t2 = _render(rng, labels, x, y, smoothing_sigma=_PARTIAL_VOLUME_SIGMA, texture_sigma=3.0 * scale)
    return {"t1": t1, "t2": t2, "lesion_mask": lesion_mask, "tissue": labels}


def make_brain_volume(rng: np.random.Generator, shape: tuple[int, int, int] = (32, 96, 96)) -> dict[str, np.ndarray]:
    """A whole-head 3D volume (z, y, x) with thick slices; same anatomy and contrasts as ``make_brain_slice``.

    Returns float32 ``t1`` and ``t2``, uint8 ``lesion_mask`` and uint8 ``tissue`` labels.
    """
    depth, height, width = shape
    z_coordinates = np.linspace(-0.97, 0.97, depth)
    y_coordinates = (np.arange(height) - (height - 1) / 2.0) / (height / 2.0)
    x_coordinates = (np.arange(width) - (width - 1) / 2.0) / (width / 2.0)
    z, y, x = np.meshgrid(z_coordinates, y_coordinates, x_coordinates, indexing="ij")
    in_plane_scale = width / 128.0
    # Noise smoothness in voxels per axis: slices are thick, so a given physical scale spans fewer voxels in z.
    z_scale = depth / 2.0 / 0.97 / (128.0 / 2.0)
    voxel_sigma = (z_scale, in_plane_scale, in_plane_scale)
    labels = _anatomy(rng, x, y, z, voxel_sigma=voxel_sigma)
    spacing = (2.0 * 0.97 / (depth - 1), 2.0 / height, 2.0 / width)
    lesion_mask = _add_lesions(rng, labels, x, y, z, _lesion_count(rng), spacing=spacing)
    t1, t2 = _render(
        rng,
        labels,
        x,
        y,
        smoothing_sigma=(0.4, _PARTIAL_VOLUME_SIGMA, _PARTIAL_VOLUME_SIGMA),
        texture_sigma=(3.0 * z_scale, 3.0 * in_plane_scale, 3.0 * in_plane_scale),
        z=z,
    )
    return {"t1": t1, "t2": t2, "lesion_mask": lesion_mask, "tissue": labels}


def make_slice_batch(seeds, size: int = 128) -> dict[str, np.ndarray]:
    """Stack ``make_brain_slice`` outputs for ``seeds`` (one ``default_rng(seed)`` per case) along a new axis 0."""
    cases = [make_brain_slice(np.random.default_rng(seed), size=size) for seed in seeds]
    return {key: np.stack([case[key] for case in cases]) for key in cases[0]}


def undersampling_mask(
    shape: tuple[int, int], acceleration: int = 4, center_fraction: float = 0.08, seed: int | None = 0
) -> np.ndarray:
    """Cartesian random phase-encode mask, as fastMRI's ``RandomMaskFunc``.

    Columns (last axis, phase-encode direction) are kept whole: the central ``round(W * center_fraction)`` columns
    always, and each other column with the probability that makes the expected kept fraction ``1 / acceleration``.
    Returns a float32 (H, W) array of zeros and ones for the centred k-space layout used by ``undersample``.
    """
    height, width = shape
    rng = np.random.default_rng(seed)
    n_center = int(round(width * center_fraction))
    probability = (width / acceleration - n_center) / (width - n_center)
    columns = rng.uniform(size=width) < probability
    start = (width - n_center + 1) // 2
    columns[start : start + n_center] = True
    return np.broadcast_to(columns.astype(np.float32), (height, width)).copy()


def fft2c(image: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D FFT over the last two axes."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=axes), norm="ortho"), axes=axes)


def ifft2c(kspace: np.ndarray) -> np.ndarray:
    """Inverse of ``fft2c``."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=axes), norm="ortho"), axes=axes)


def undersample(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked centred orthonormal k-space of ``image`` (H, W) as a float32 (2, H, W) array (real, imaginary).

    ``mask`` (H, W) is 1 on sampled k-space locations (see ``undersampling_mask``), 0 elsewhere.
    """
    kspace = fft2c(np.asarray(image, dtype=np.float64)) * mask
    return np.stack([kspace.real, kspace.imag], axis=-3).astype(np.float32)


def zero_filled(kspace2ch: np.ndarray) -> np.ndarray:
    """Zero-filled reconstruction: magnitude of the centred inverse FFT of (..., 2, H, W) real/imaginary k-space.

    Returns float32 (..., H, W). Missing lines stay zero, so the image shows undersampling aliasing and blur.
    """
    kspace = np.asarray(kspace2ch, dtype=np.float64)
    return np.abs(ifft2c(kspace[..., 0, :, :] + 1j * kspace[..., 1, :, :])).astype(np.float32)


def make_recon_batch(
    images: np.ndarray, acceleration: int = 4, center_fraction: float = 0.08, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Undersample each image of (N, H, W) with its own random mask; returns (kspaces (N, 2, H, W), masks (N, H, W))."""
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=len(images))
    masks = np.stack(
        [
            undersampling_mask(image.shape, acceleration, center_fraction, int(mask_seed))
            for image, mask_seed in zip(images, seeds, strict=True)
        ]
    )
    kspaces = np.stack([undersample(image, mask) for image, mask in zip(images, masks, strict=True)])
    return kspaces, masks
