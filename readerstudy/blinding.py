"""The one normalisation every study image goes through, real or synthetic (no Django).

A reader must not tell an image's source from its bytes. Stored references and model
outputs differ in ways a script could see: intensity scale and offset, value precision
(integer-valued DICOM against continuous network outputs), channel count, NaN handling.
So each image is reduced to the same form: the shown plane (channel 0, or the log
magnitude of a two-channel image, as the viewer shows it), dithered, clipped to its own
0.5th–99.5th percentiles, scaled to [0, 1] and quantised to 12 bits (4095 steps), stored as
float32 of shape (1, *spatial). Two images of the same case then have the same shape, dtype,
value grid and file size, and their headers the same fields.

Why dither: an integer-valued reference spread over fewer levels than the grid occupies
every second or third level (a comb), while a continuous output fills neighbouring levels;
counting adjacent occupied levels in the bytes would tell them apart. Adding uniform noise
of one source step (the median gap between distinct values: one intensity unit for integer
data, next to nothing for continuous data) makes every image continuous before quantising.

Why one dither for the whole study: dithered by its own step, an integer reference on an exactly
zero background (skull-stripped MRI) spreads that background over several levels while a
continuous output keeps one, which a script separates perfectly. So every image of a study,
real or synthetic, gets the same dither: the largest source step among them relative to each
image's own clipping range (`study_step`), so a reference in scanner units and an output in
[0, 1] are spread over the same number of 12-bit levels. Repeated items are blinded again with fresh noise, so no
two items share bytes.
"""

import numpy as np

from inference import arrays

LEVELS = 4095
CLIP_PERCENTILES = (0.5, 99.5)


class NotShowable(ValueError):
    """An image that cannot enter a study (non-finite values, constant, wrong dimensions)."""


def source_step(plane):
    """The image's own value precision: the median gap between its distinct values (0 if constant)."""
    gaps = np.diff(np.unique(plane))
    return float(np.median(gaps)) if gaps.size else 0.0


def shown_plane(canonical):
    """The plane a reader would see of a (C, *spatial) canonical array, float64; NotShowable if it cannot
    be shown (non-finite or constant values, wrong dimensions)."""
    arrays.check_canonical(canonical)
    plane = arrays.display_plane(canonical).astype(np.float64)
    if not np.isfinite(plane).all():
        raise NotShowable("the image has NaN or infinite values")
    low, high = np.percentile(plane, CLIP_PERCENTILES)
    if not high > low:
        raise NotShowable("the image is constant")
    return plane


def _clip_range(plane):
    low, high = np.percentile(plane, CLIP_PERCENTILES)
    return float(high - low)


def relative_step(plane):
    """The plane's source step as a fraction of its clipping range (the unit its grid is cut in)."""
    return source_step(plane) / _clip_range(plane)


def study_step(relative_steps):
    """The one relative dither step of a study: the largest `relative_step` among its images."""
    return max(relative_steps, default=0.0)


def blind(canonical, rng=None, step=None):
    """(C, *spatial) canonical array → (1, *spatial) float32 on the shared 12-bit grid in [0, 1].

    `rng` draws the dither (seeded by the caller, so a study's build is repeatable); `step` is the
    study's relative dither step (`study_step`); the image's own when None."""
    plane = shown_plane(canonical)
    rng = rng if rng is not None else np.random.default_rng(0)
    width = (relative_step(plane) if step is None else step) * _clip_range(plane)
    return _to_grid(plane + rng.uniform(-width / 2, width / 2, size=plane.shape))


def attention_image(blinded, rng, kind="corrupt"):
    """An attention-check image made from a blinded real image, in the same format.

    kind "corrupt": coarse blocks and heavy noise, so any reader calls it synthetic or poor;
    kind "insert": a bright disc that does not belong to the anatomy, for hallucination
    marking (returns the image and the disc's centre (row, col) and radius in pixels).
    """
    image = np.array(blinded[0], dtype=np.float64)
    if kind == "insert":
        rows, cols = image.shape[-2:]
        radius = max(3, min(rows, cols) // 12)
        centre = (int(rng.integers(radius * 2, rows - radius * 2)), int(rng.integers(radius * 2, cols - radius * 2)))
        yy, xx = np.ogrid[:rows, :cols]
        disc = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
        image[..., disc] = 1.0
        return _to_grid(image), {"centre": centre, "radius": radius}
    block = max(4, min(image.shape[-2:]) // 8)
    coarse = image[..., ::block, ::block]
    blocky = np.repeat(np.repeat(coarse, block, axis=-2), block, axis=-1)[..., : image.shape[-2], : image.shape[-1]]
    noisy = blocky + rng.normal(0, 0.35, size=image.shape)
    return _to_grid(noisy), {}


def _to_grid(plane):
    """The shared form: clipped to its own percentiles, scaled to [0, 1], 12 bits, float32 (1, *spatial)."""
    low, high = np.percentile(plane, CLIP_PERCENTILES)
    if not high > low:
        raise NotShowable("the image is constant")
    scaled = np.clip((plane - low) / (high - low), 0.0, 1.0)
    return (np.round(scaled * LEVELS) / LEVELS).astype(np.float32)[np.newaxis]
