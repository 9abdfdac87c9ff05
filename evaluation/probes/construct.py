"""Hallucination probes: controlled changes to a case's input, each recorded as ground truth (no Django).

A *probe* is a copy of a test case with exactly one controlled change, and a *truth* record that says what a
faithful model's output must show there:

- ``inserted_plausible``: a lesion inserted in tissue where lesions occur (white matter, or homogeneous tissue
  inside the body); expected **present**.
- ``inserted_csf``: a lesion inserted in CSF / the ventricles (needs a tissue map), the smallest size, centred
  among the deepest CSF pixels (CSF spaces are narrow); expected **present**.
- ``inserted_outside``: a lesion inserted outside the body (in the air around the head); expected **present**.
- ``removed``: a real lesion (a connected component of the label mask) inpainted with surrounding tissue;
  expected **absent** — if the output shows it, the model recalled it from its prior, not from the input.
- ``control``: nothing changed, a lesion-sized region of plausible tissue; expected **absent**.

Both the input and the reference change: the probe's reference is the *truth image* (what the output should be),
with the inserted lesion in the output contrast, or the removed lesion gone. For a reconstruction task (the input is
the 2-channel (real, imaginary) centred k-space of the reference) the change is made in image space, on the
reference, and the probe's k-space is re-sampled from it: measured locations (stored k-space not exactly zero, as
``inference.sampling.measured_kspace`` reads them) become ``k + fft2c(reference' − reference)``, with
``inference.sampling.fft2c`` (the platform's one centred orthonormal FFT, the same as ``demo.phantom.fft2c``).
When the stored k-space is ``fft2c(reference)·mask`` (how the demo builds it, ``demo.phantom.undersample``) this is
exactly ``undersample(reference', mask)``; otherwise it keeps the measurement's own phase and noise.

Arrays: inputs are ``(C, H, W)`` float32, the reference ``(1, H, W)``, the label mask and the tissue map ``(H, W)``
(a leading channel of 1 is accepted); 2D only. Coordinates are pixels ``(row, column)``.

Insertion. A lesion is an ellipse of semi-axes drawn in ``radius_px`` (pixels), at a random angle, with a
partial-volume edge outside it (1 on the ellipse, its indicator smoothed by a Gaussian of σ = 0.6 px outside, as
the demo phantoms' edges). Its profile ``w`` ∈ [0, 1] sets the image to the lesion level ``L`` while keeping the
image's texture and noise: ``x' = x + w · (L − G₁.₅(x))`` where ``G₁.₅`` is a Gaussian low-pass (σ = 1.5 px).
``L`` per image is the mean of the dataset's real lesion voxels in that image (``lesion_levels``), or given.

Removal. The lesion's component, dilated by one pixel, is filled by **harmonic inpainting** (the solution of
Laplace's equation with the surrounding pixels as boundary values, solved exactly as a sparse linear system; the
smooth fill is what scikit-image's ``inpaint_biharmonic`` gives up to the order of the operator), then given back
the image's noise: Gaussian noise (seeded) with the standard deviation of the high-pass residual ``x − G₁.₅(x)`` in
the ring around the lesion, so the filled patch is not conspicuously smooth.

Contrast. ``region_contrast(image, region)`` = mean of the image in the region − median of the image in its
ring (pixels 2–4 px outside the region, ``ring_mask``). Each truth records ``contrast``: the lesion's contrast in
reference units (inserted: measured on the truth image; removed: measured on the original reference before
removal; control: ``L_reference`` − the ring median, the contrast a lesion there would have). The scoring
(``evaluation.probes.scoring``) decides presence in an output against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import linalg as sparse_linalg

KINDS = ("inserted_plausible", "inserted_csf", "inserted_outside", "removed", "control")
INSERTED = ("inserted_plausible", "inserted_csf", "inserted_outside")
EXPECTED = {kind: ("present" if kind in INSERTED else "absent") for kind in KINDS}

PARTIAL_VOLUME_SIGMA = 0.6  # px: the lesion edge, as demo.phantom's partial-volume smoothing
LOWPASS_SIGMA = 1.5  # px: the local level an inserted lesion replaces; its residual is the kept texture/noise
RING_INNER = 2  # px: the ring starts this far outside the region (past the partial-volume edge)
RING_OUTER = 4  # px: ... and ends this far out
DEFAULT_RADIUS_PX = (2.5, 4.5)


class ProbeError(ValueError):
    """The case cannot be probed as asked (shapes, no room, no lesion); the message says why."""


@dataclass(frozen=True)
class Regions:
    """Where lesion centres may go, (H, W) bool each: ``plausible`` tissue, ``csf`` (ventricles/CSF) and
    ``outside`` (air around the body); ``body`` is the whole body. Each is where the *whole* lesion and its ring
    fit (callers give the areas; ``choose_centre`` erodes them)."""

    body: np.ndarray
    plausible: np.ndarray
    csf: np.ndarray
    outside: np.ndarray
    source: str  # "tissue" (from a tissue map) or "images" (from the reference's intensities)


@dataclass
class Truth:
    """One probe's ground truth. ``region`` is the truth-mask value of its region (1: one region per probe)."""

    kind: str
    expected: str  # "present" | "absent"
    centre: tuple[float, float]  # (row, column), px: the region's centroid
    extent: tuple[float, float]  # semi-axes (px) of the inserted ellipse; the bounding half-sizes of a removed one
    angle: float  # radians, the ellipse's orientation (0 for removed lesions)
    area_px: int
    contrast: float  # the lesion's contrast in reference units (see the module docstring)
    site: str = ""  # where: "white_matter", "csf", "outside", "lesion" ...
    region: int = 1

    def to_dict(self) -> dict:
        data = asdict(self)
        data["centre"] = [float(v) for v in self.centre]
        data["extent"] = [float(v) for v in self.extent]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Truth:
        values = dict(data)
        values["centre"] = tuple(values["centre"])
        values["extent"] = tuple(values["extent"])
        return cls(**values)


@dataclass
class Probe:
    """A probe case: its input ``(C, H, W)``, truth image ``(1, H, W)`` (the probe's reference), label mask of the
    lesions present in it ``(H, W)`` uint8, truth mask ``(H, W)`` uint8 (1 on the probe's region) and its truth."""

    kind: str
    input: np.ndarray
    reference: np.ndarray
    label: np.ndarray
    truth_mask: np.ndarray
    truth: Truth
    notes: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- small pieces


def _plane(array, name: str) -> np.ndarray:
    """(H, W) from (H, W) or (1, H, W)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ProbeError(f"the {name} must be a 2D image (H, W) or (1, H, W); got shape {tuple(array.shape)}")
    return array


def disk(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return yy**2 + xx**2 <= radius**2


def ring_mask(region: np.ndarray, inner: int = RING_INNER, outer: int = RING_OUTER) -> np.ndarray:
    """Pixels more than ``inner`` and at most ``outer`` px (Euclidean) outside ``region``."""
    distance = ndimage.distance_transform_edt(~region.astype(bool))
    return (distance > inner) & (distance <= outer)


def region_contrast(image: np.ndarray, region: np.ndarray, ring: np.ndarray | None = None) -> float:
    """Mean of ``image`` in ``region`` − median in its ring (``ring_mask`` when not given)."""
    image = _plane(image, "image").astype(np.float64)
    region = region.astype(bool)
    ring = ring_mask(region) if ring is None else ring
    if not region.any() or not ring.any():
        raise ProbeError("the region or its ring is empty")
    return float(image[region].mean() - np.median(image[ring]))


def ellipse(shape, centre, semi_axes, angle: float) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dy, dx = rows - centre[0], cols - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = cos * dx + sin * dy
    v = -sin * dx + cos * dy
    return (u / semi_axes[0]) ** 2 + (v / semi_axes[1]) ** 2 <= 1.0


def choose_centre(allowed: np.ndarray, reach: float, rng: np.random.Generator) -> tuple[int, int] | None:
    """A random pixel of ``allowed`` whose disc of radius ``reach`` lies inside ``allowed``; None if none."""
    room = ndimage.binary_erosion(allowed, structure=disk(reach), border_value=0)
    candidates = np.argwhere(room)
    if len(candidates) == 0:
        return None
    row, col = candidates[rng.integers(len(candidates))]
    return int(row), int(col)


def choose_deepest(allowed: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    """A random pixel of ``allowed`` among those at least 60 % as deep inside it as its deepest (≥ 1 px)."""
    depth = ndimage.distance_transform_edt(allowed)
    if depth.max() < 1:
        return None
    candidates = np.argwhere(depth >= max(1.0, 0.6 * depth.max()))
    row, col = candidates[rng.integers(len(candidates))]
    return int(row), int(col)


# --------------------------------------------------------------------------- regions


def regions_from_tissue(
    tissue, *, plausible_labels, csf_labels=(), background_labels=(0,), lesion_labels=()
) -> Regions:
    """Regions from a tissue label map (e.g. ``demo.phantom``'s ``tissue``: plausible = white matter, csf = CSF)."""
    tissue = _plane(tissue, "tissue map").astype(np.int64)
    body = ~np.isin(tissue, background_labels)
    body = ndimage.binary_fill_holes(body)
    lesions = np.isin(tissue, lesion_labels) if lesion_labels else np.zeros_like(body)
    away = ~ndimage.binary_dilation(lesions, structure=disk(RING_OUTER + 2)) if lesions.any() else ~lesions
    return Regions(
        body=body,
        plausible=np.isin(tissue, plausible_labels) & away,
        csf=np.isin(tissue, csf_labels) & away if csf_labels else np.zeros_like(body),
        outside=~ndimage.binary_dilation(body, structure=disk(2)),
        source="tissue",
    )


def body_from_reference(reference, threshold_fraction: float = 0.1) -> np.ndarray:
    """The body: reference above ``threshold_fraction`` × its 99th percentile, largest component, holes filled."""
    reference = _plane(reference, "reference")
    mask = reference > threshold_fraction * np.percentile(reference, 99)
    labelled, count = ndimage.label(mask)
    if count == 0:
        raise ProbeError("the reference has no body above the threshold")
    sizes = ndimage.sum(mask, labelled, index=range(1, count + 1))
    return ndimage.binary_fill_holes(labelled == 1 + int(np.argmax(sizes)))


def regions_from_images(reference, *, label=None, body_mask=None) -> Regions:
    """Regions without a tissue map: the body from ``body_mask`` (> 0) or ``body_from_reference``; plausible =
    homogeneous tissue inside it (local SD over a σ = 2 px window below the body's median local SD, away from the
    edge and from the case's lesions); no CSF region; outside = more than 2 px outside the body."""
    reference = _plane(reference, "reference").astype(np.float64)
    body = _plane(body_mask, "body mask") > 0 if body_mask is not None else body_from_reference(reference)
    mean = ndimage.gaussian_filter(reference, 2.0)
    local_sd = np.sqrt(np.maximum(ndimage.gaussian_filter(reference**2, 2.0) - mean**2, 0.0))
    inner = ndimage.binary_erosion(body, structure=disk(3))
    plausible = inner & (local_sd < np.median(local_sd[inner])) if inner.any() else inner
    if label is not None:
        lesions = _plane(label, "label") > 0
        if lesions.any():
            plausible &= ~ndimage.binary_dilation(lesions, structure=disk(RING_OUTER + 2))
    return Regions(
        body=body,
        plausible=plausible,
        csf=np.zeros_like(body),
        outside=~ndimage.binary_dilation(body, structure=disk(2)),
        source="images",
    )


# --------------------------------------------------------------------------- levels and image operations


def lesion_levels(inputs, references, labels) -> tuple[list[float] | None, float]:
    """Mean intensity of real lesion voxels over cases: (per input channel or None for k-space inputs, reference).

    ``inputs``: (C, H, W) images or None each (reconstruction); ``references``: (1, H, W); ``labels``: (H, W)."""
    ins, refs = [], []
    for image, reference, label in zip(inputs, references, labels, strict=True):
        lesions = _plane(label, "label") > 0
        if not lesions.any():
            continue
        refs.append(_plane(reference, "reference")[lesions])
        if image is not None:
            ins.append(np.asarray(image)[:, lesions])
    if not refs:
        raise ProbeError("no case has a lesion in its label mask: give the lesion levels explicitly")
    reference_level = float(np.concatenate(refs).mean())
    input_levels = [float(v) for v in np.concatenate(ins, axis=1).mean(axis=1)] if ins else None
    return input_levels, reference_level


def insert(image: np.ndarray, profile: np.ndarray, level: float) -> np.ndarray:
    """``image + profile · (level − G₁.₅(image))`` (H, W): the lesion at ``level``, the texture kept."""
    image = image.astype(np.float64)
    return image + profile * (level - ndimage.gaussian_filter(image, LOWPASS_SIGMA))


def harmonic_inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` (bool (H, W)) with the discrete harmonic function whose boundary values are the image around
    it (4-neighbour Laplacian = 0 inside the hole, Dirichlet outside); exact sparse solve. Image edges are treated
    as reflecting (a missing neighbour is skipped)."""
    image = image.astype(np.float64)
    hole = hole.astype(bool)
    points = np.argwhere(hole)
    if len(points) == 0:
        return image.copy()
    index = -np.ones(image.shape, dtype=np.int64)
    index[hole] = np.arange(len(points))
    rows, cols, values = [], [], []
    rhs = np.zeros(len(points))
    height, width = image.shape
    for k, (r, c) in enumerate(points):
        degree = 0
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            rr, cc = r + dr, c + dc
            if not (0 <= rr < height and 0 <= cc < width):
                continue
            degree += 1
            if hole[rr, cc]:
                rows.append(k)
                cols.append(index[rr, cc])
                values.append(-1.0)
            else:
                rhs[k] += image[rr, cc]
        rows.append(k)
        cols.append(k)
        values.append(float(degree))
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(len(points), len(points)))
    out = image.copy()
    out[hole] = sparse_linalg.spsolve(matrix, rhs)
    return out


def remove(image: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Harmonic fill of ``hole`` plus noise with the SD of the image's high-pass residual in the hole's ring."""
    image = image.astype(np.float64)
    ring = ring_mask(hole, 0, RING_OUTER)
    residual = image - ndimage.gaussian_filter(image, LOWPASS_SIGMA)
    noise_sd = float(residual[ring].std()) if ring.any() else 0.0
    out = harmonic_inpaint(image, hole)
    out[hole] += rng.normal(0.0, noise_sd, size=int(hole.sum()))
    return out


def resample_kspace(kspace2ch: np.ndarray, reference: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The probe's (2, H, W) k-space: measured locations become ``k + fft2c(changed − reference)``."""
    import torch  # noqa: PLC0415 - torch is heavy; only reconstruction probes need it

    from inference.sampling import fft2c  # noqa: PLC0415 - the platform's one centred FFT (imports torch)

    kspace2ch = np.asarray(kspace2ch, dtype=np.float64)
    if kspace2ch.ndim != 3 or kspace2ch.shape[0] != 2:
        raise ProbeError(f"a reconstruction input is (2, H, W) real/imaginary k-space; got {kspace2ch.shape}")
    measured = kspace2ch[0] + 1j * kspace2ch[1]
    mask = measured != 0
    delta = fft2c(torch.from_numpy(changed.astype(np.float64) - reference.astype(np.float64)).to(torch.complex128))
    new = np.where(mask, measured + delta.numpy(), 0.0)
    return np.stack([new.real, new.imag]).astype(np.float32)


# --------------------------------------------------------------------------- probes


def build_probes(
    *,
    input,
    reference,
    label,
    regions: Regions,
    rng: np.random.Generator,
    levels: tuple[list[float] | None, float],
    kinds=KINDS,
    reconstruction: bool = False,
    radius_px: tuple[float, float] = DEFAULT_RADIUS_PX,
) -> tuple[list[Probe], dict[str, str]]:
    """One probe per kind in ``kinds`` for this case (one change each), and why a kind was skipped (no room,
    no lesion to remove, no CSF region). ``levels`` = (input levels per channel, reference level), see
    ``lesion_levels``; input levels are unused for reconstruction (the k-space is re-sampled)."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ProbeError(f"unknown probe kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    image_in = np.asarray(input, dtype=np.float32)
    ref = _plane(reference, "reference").astype(np.float64)
    lab = (_plane(label, "label") > 0) if label is not None else np.zeros(ref.shape, dtype=bool)
    if image_in.ndim != 3 or image_in.shape[1:] != ref.shape or lab.shape != ref.shape:
        raise ProbeError(
            f"input {tuple(image_in.shape)}, reference {ref.shape} and label {lab.shape} do not share (H, W)"
        )
    input_levels, reference_level = levels
    if not reconstruction and (input_levels is None or len(input_levels) != image_in.shape[0]):
        raise ProbeError(f"give one input lesion level per input channel ({image_in.shape[0]})")
    probes, skipped = [], {}
    for kind in kinds:
        if kind == "removed":
            probe = _removal(image_in, ref, lab, rng, reconstruction)
            if probe is None:
                skipped[kind] = "the case has no lesion to remove"
                continue
        else:
            allowed = {
                "inserted_plausible": regions.plausible,
                "inserted_csf": regions.csf,
                "inserted_outside": regions.outside,
                "control": regions.plausible,
            }[kind]
            semi = (float(rng.uniform(*radius_px)), float(rng.uniform(*radius_px)))
            angle = float(rng.uniform(0, np.pi))
            if kind == "inserted_csf":
                # CSF spaces are narrow (a ventricle is a few px wide): the smallest lesion, centred among the
                # deepest CSF pixels; its edge and ring may reach the tissue around.
                semi = (float(radius_px[0]),) * 2
                centre = choose_deepest(allowed, rng)
            else:
                centre = choose_centre(allowed, max(semi) + RING_OUTER + 1, rng)
            if centre is None:
                skipped[kind] = f"no room for a {max(semi):.1f} px lesion and its ring in the {kind} region"
                continue
            probe = _insertion(kind, image_in, ref, lab, centre, semi, angle, levels, reconstruction)
        probes.append(probe)
    return probes, skipped


_SITES = {"inserted_plausible": "tissue", "inserted_csf": "csf", "inserted_outside": "outside", "control": "tissue"}


def _insertion(kind, image_in, ref, lab, centre, semi, angle, levels, reconstruction) -> Probe:
    input_levels, reference_level = levels
    region = ellipse(ref.shape, centre, semi, angle)
    if not region.any():
        region[centre] = True
    ring = ring_mask(region)
    truth_mask = region.astype(np.uint8)
    common = {"centre": tuple(float(v) for v in ndimage.center_of_mass(region)), "extent": semi, "angle": angle}
    if kind == "control":
        contrast = float(reference_level - np.median(ref[ring]))
        truth = Truth(kind, EXPECTED[kind], area_px=int(region.sum()), contrast=contrast, site="tissue", **common)
        return Probe(kind, image_in.copy(), ref[None].astype(np.float32), lab.astype(np.uint8), truth_mask, truth)
    profile = np.maximum(region, ndimage.gaussian_filter(region.astype(np.float64), PARTIAL_VOLUME_SIGMA))
    new_ref = insert(ref, profile, reference_level)
    if reconstruction:
        new_in = resample_kspace(image_in, ref, new_ref)
    else:
        new_in = np.stack(
            [insert(channel, profile, level) for channel, level in zip(image_in, input_levels, strict=True)]
        ).astype(np.float32)
    contrast = region_contrast(new_ref, region, ring)
    truth = Truth(kind, EXPECTED[kind], area_px=int(region.sum()), contrast=contrast, site=_SITES[kind], **common)
    new_label = (lab | region).astype(np.uint8) if kind == "inserted_plausible" else lab.astype(np.uint8)
    return Probe(kind, new_in, new_ref[None].astype(np.float32), new_label, truth_mask, truth)


def _removal(image_in, ref, lab, rng, reconstruction) -> Probe | None:
    labelled, count = ndimage.label(lab)
    if count == 0:
        return None
    sizes = ndimage.sum(lab, labelled, index=range(1, count + 1))
    component = labelled == 1 + int(rng.choice(count, p=sizes / sizes.sum()))
    hole = ndimage.binary_dilation(component, structure=disk(1))
    ring = ring_mask(component)
    contrast = region_contrast(ref, component, ring)
    new_ref = remove(ref, hole, rng)
    if reconstruction:
        new_in = resample_kspace(image_in, ref, new_ref)
    else:
        new_in = np.stack([remove(channel, hole, rng) for channel in image_in]).astype(np.float32)
    rows, cols = np.nonzero(component)
    truth = Truth(
        "removed",
        "absent",
        centre=tuple(float(v) for v in ndimage.center_of_mass(component)),
        extent=((cols.max() - cols.min() + 1) / 2.0, (rows.max() - rows.min() + 1) / 2.0),
        angle=0.0,
        area_px=int(component.sum()),
        contrast=contrast,
        site="lesion",
    )
    new_label = (lab & ~component).astype(np.uint8)
    return Probe("removed", new_in, new_ref[None].astype(np.float32), new_label, component.astype(np.uint8), truth)
