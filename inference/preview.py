"""Server-side PNG previews of canonical arrays for the plain pages (no Django import).

A volume shows its middle slice; a two-channel array (real, imaginary k-space) shows the
log magnitude; intensities are windowed to the 1st–99th percentile.
"""

import numpy as np
from PIL import Image


def middle_plane(array):
    """(C, H, W) or (C, D, H, W) → (C, H, W) at the middle slice."""
    return array[:, array.shape[1] // 2] if array.ndim == 4 else array


def render_png(array, label=False, size=256):
    plane = middle_plane(np.asarray(array, dtype=np.float32))
    plane = np.nan_to_num(plane, nan=0.0, posinf=0.0, neginf=0.0)
    if plane.shape[0] == 2:
        image = np.log1p(np.hypot(plane[0], plane[1]))
    else:
        image = plane[0]
    if label:
        scaled = (image > 0).astype(np.uint8) * 255
    else:
        low, high = np.percentile(image, [1, 99])
        if high <= low:
            low, high = float(image.min()), float(image.max()) or 1.0
        scaled = (np.clip((image - low) / ((high - low) or 1.0), 0, 1) * 255).astype(np.uint8)
    picture = Image.fromarray(scaled, mode="L")
    scale = size / max(picture.size)
    if scale > 1:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.NEAREST)
    return picture
