"""PNG and TIFF files, read with Pillow.

Grayscale → ``(1, H, W)``, RGB → ``(3, H, W)`` (an alpha channel is dropped when fully
opaque and refused otherwise); 16-bit values are kept; a multi-page TIFF is a volume
``(C, D, H, W)``.
"""

from __future__ import annotations

import numpy as np

from .base import ImageImportError, ImportedImage, as_float32


def read_pillow(path, name):
    from PIL import Image

    with Image.open(path) as picture:
        source_format = "png" if picture.format == "PNG" else "tiff"
        frames = []
        for frame_index in range(getattr(picture, "n_frames", 1)):
            picture.seek(frame_index)
            frames.append(_pillow_channels(picture, name))
    if len(frames) == 1:
        array = frames[0]
    else:
        shapes = {frame.shape for frame in frames}
        if len(shapes) > 1:
            raise ImageImportError(name, f"pages of the TIFF differ in size or channels: {sorted(shapes)}")
        array = np.stack(frames, axis=1)
    array = as_float32(array, name)
    return ImportedImage(
        array=array,
        spacing=[1.0] * (array.ndim - 1),
        source_format=source_format,
        meta={"mode": picture.mode, "pages": len(frames)},
    )


def _pillow_channels(picture, name):
    """(C, H, W) of one frame, keeping 16-bit and float values."""
    mode = picture.mode
    if mode in ("P", "PA"):
        picture, mode = picture.convert("RGBA"), "RGBA"
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        picture, mode = picture.convert("RGB"), "RGB"
    array = np.array(picture)
    if array.ndim == 2:
        return array[np.newaxis]
    channels = np.moveaxis(array, -1, 0)
    if mode in ("LA", "RGBA", "La", "RGBa"):
        alpha = channels[-1]
        opaque = np.iinfo(alpha.dtype).max if np.issubdtype(alpha.dtype, np.integer) else 1.0
        if np.any(alpha != opaque):
            raise ImageImportError(name, "has transparent pixels: save it without an alpha channel")
        channels = channels[:-1]
    return channels
