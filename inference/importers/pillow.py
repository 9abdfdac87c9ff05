"""PNG and TIFF files, read with Pillow.

Grayscale → ``(1, H, W)``, RGB → ``(3, H, W)`` (an alpha channel is dropped when fully
opaque and refused otherwise); 16-bit values are kept; a multi-page TIFF is a volume
``(C, D, H, W)``.

The size the header declares (times the pages) is checked against `Limits` before any pixel
is decoded, then each page again before it is decoded.
"""

from __future__ import annotations

import re

import numpy as np

from .base import ImageImportError, ImportedImage, LimitExceeded, as_float32, describe

# Pillow holds a decoded pixel in at most 4 bytes (RGB too is stored as 4).
PILLOW_BYTES_PER_PIXEL = 4


def read_pillow(path, name, limits):
    from PIL import Image

    try:
        picture = Image.open(path)
    except Image.DecompressionBombError as error:  # Pillow's own check, past 2 × Image.MAX_IMAGE_PIXELS
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        if pixels and int(pixels.group(1)) > limits.max_image_voxels:
            message = f"the header declares {int(pixels.group(1)):,} pixels; the limit is {limits.max_image_voxels:,}"
            raise LimitExceeded(name, message + " per image") from error
        raise LimitExceeded(name, f"too large for Pillow to decode ({describe(error)})") from error
    with picture:
        source_format = "png" if picture.format == "PNG" else "tiff"
        pages = getattr(picture, "n_frames", 1)
        # Refuse from the header (the first page's size, times the pages) before decoding anything...
        width, height = picture.size
        limits.check_voxels(name, (_channels(picture.mode), *([pages] if pages > 1 else []), height, width))
        frames, voxels, decoded = [], 0, 0
        for frame_index in range(pages):
            picture.seek(frame_index)
            # ... and, as pages may differ in size, each page before it is decoded.
            width, height = picture.size
            voxels += _channels(picture.mode) * width * height
            decoded += PILLOW_BYTES_PER_PIXEL * width * height
            if voxels > limits.max_image_voxels:
                raise LimitExceeded(
                    name,
                    f"pages 1 to {frame_index + 1} have {voxels:,} voxels in all; "
                    f"the limit is {limits.max_image_voxels:,} per image",
                )
            limits.check_decompressed(name, decoded, what="decoded pixels take")
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


def _channels(mode):
    """Channels of the canonical array for a Pillow mode (palettes become RGB, alpha is dropped)."""
    from PIL import Image

    if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        return 3
    return Image.getmodebands(mode) - (1 if mode in ("LA", "RGBA", "La", "RGBa") else 0)


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
