"""NPY and NPZ files.

The array is taken as already canonical, ``(C, H, W)`` or ``(C, D, H, W)``, as the
platform stores it; a 2D array is one channel. An NPZ holds one array, or names it
"image" (with an optional "spacing" array). Pickled object arrays are refused.

Each array's header (shape, type) is checked against `Limits` before its data is read; an
NPZ member's declared size too, before it is decompressed.
"""

from __future__ import annotations

import zipfile
from math import prod

import numpy as np

from .base import NPY_MAGIC, ImageImportError, ImportedImage, as_float32

PICKLE_REFUSED = "holds Python objects (a pickled object array), which are refused: save a numeric array"


def read_npy(path, name, limits):
    with open(path, "rb") as handle:
        _check_header(_read_header(handle, name), name, limits)
    return _canonical_from_numpy(np.load(path, allow_pickle=False), name, "npy")


def read_npz(path, name, limits):
    # Read member by member, not with np.load, so that each header is checked before its data.
    with zipfile.ZipFile(path) as archive:
        members = {_member_key(info.filename): info for info in archive.infolist()}
        keys = list(members)
        candidates = [key for key in keys if key != "spacing"]
        if "image" in keys:
            key = "image"
        elif len(candidates) == 1:
            key = candidates[0]
        else:
            raise ImageImportError(
                name, f"holds arrays {', '.join(keys) or '(none)'}: name the image array 'image' or store only one"
            )
        array = _read_member(archive, members[key], name, limits, _check_header)
        image = _canonical_from_numpy(array, name, "npz")
        if "spacing" not in keys:
            return image
        axes = image.array.ndim - 1
        spacing_error = ImageImportError(name, f"'spacing' must be {axes} positive numbers, one per spatial axis")

        def check_spacing(header, name, limits):
            if prod(header[0]) != axes:
                raise spacing_error

        spacing = _read_member(archive, members["spacing"], name, limits, check_spacing)
    spacing = np.asarray(spacing, dtype=np.float64).ravel()
    if len(spacing) != axes or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise spacing_error
    image.spacing = [float(value) for value in spacing]
    return image


def _member_key(filename):
    """The array name np.savez gave a member ("image" for "image.npy")."""
    return filename[: -len(".npy")] if filename.endswith(".npy") else filename


def _read_member(archive, info, name, limits, check):
    label = f"member '{_member_key(info.filename)}'"
    limits.check_decompressed(name, info.file_size, what=f"{label} would expand to")
    with archive.open(info) as stream:  # zipfile reads no further than the size it declares
        if stream.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise ImageImportError(name, f"{label} is not an NPY array")
        stream.seek(0)
        check(_read_header(stream, name), name, limits)
        stream.seek(0)
        return np.lib.format.read_array(stream, allow_pickle=False)


def _read_header(stream, name):
    """(shape, fortran_order, dtype) from an NPY header, without reading the data."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    # 3.0 only exists for structured types with non-Latin-1 field names, never an image.
    raise ImageImportError(name, f"NPY format version {version[0]}.{version[1]} is not supported: save a numeric array")


def _check_header(header, name, limits):
    shape, _, dtype = header
    if dtype.hasobject:
        raise ImageImportError(name, PICKLE_REFUSED)
    limits.check_voxels(name, shape, what="array")
    limits.check_decompressed(name, prod(shape) * dtype.itemsize, what="array data takes")


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
