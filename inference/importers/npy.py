"""NPY and NPZ files.

The array is taken as already canonical, ``(C, H, W)`` or ``(C, D, H, W)``, as the
platform stores it; a 2D array is one channel. An NPZ holds one array, or names it
"image" (with an optional "spacing" array). Pickled object arrays are refused.
"""

from __future__ import annotations

import numpy as np

from .base import ImageImportError, ImportedImage, as_float32

PICKLE_REFUSED = "holds Python objects (a pickled object array), which are refused: save a numeric array"


def read_npy(path, name):
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ImageImportError(name, PICKLE_REFUSED) from error
        raise
    return _canonical_from_numpy(array, name, "npy")


def read_npz(path, name):
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        candidates = [key for key in keys if key != "spacing"]
        if "image" in keys:
            key = "image"
        elif len(candidates) == 1:
            key = candidates[0]
        else:
            raise ImageImportError(
                name, f"holds arrays {', '.join(keys) or '(none)'}: name the image array 'image' or store only one"
            )
        try:
            array = archive[key]
            spacing = archive["spacing"] if "spacing" in keys else None
        except ValueError as error:
            if "allow_pickle" in str(error):
                raise ImageImportError(name, PICKLE_REFUSED) from error
            raise
    image = _canonical_from_numpy(array, name, "npz")
    if spacing is not None:
        spacing = np.asarray(spacing, dtype=np.float64).ravel()
        if len(spacing) != image.array.ndim - 1 or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise ImageImportError(
                name, f"'spacing' must be {image.array.ndim - 1} positive numbers, one per spatial axis"
            )
        image.spacing = [float(value) for value in spacing]
    return image


def _canonical_from_numpy(array, name, source_format):
    if array.dtype.hasobject:
        raise ImageImportError(name, PICKLE_REFUSED)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim not in (3, 4):
        raise ImageImportError(
            name, f"array has shape {tuple(array.shape)}: expected (H, W), (C, H, W) or (C, D, H, W)"
        )
    array = as_float32(array, name)
    return ImportedImage(array=array, spacing=[1.0] * (array.ndim - 1), source_format=source_format)
