"""NIfTI-1 and NIfTI-2 files (``.nii``, ``.nii.gz``), read with nibabel.

nibabel indexes data ``(x, y, z) = (i, j, k)``; canonical is ``(D, H, W) = (k, j, i)``,
so ``array[0, d, h, w] == data[w, h, d]`` and spacing is ``(zooms[2], zooms[1],
zooms[0])``. Voxels are not resampled or reoriented: the affine (RAS) becomes
direction and origin in LPS. A z axis of size 1 gives a 2D image; a 4th axis of
at most 4 volumes gives channels.

The header is read alone first: the voxel count, the shape and the bytes it declares are
checked against `Limits` before any data is decompressed, and no more than that is read.
"""

from __future__ import annotations

import gzip
import struct
from math import prod

import numpy as np

from .base import IDENTITY_DIRECTION, ImageImportError, ImportedImage, as_float32

# nibabel is imported where it is used: it is heavy and only needed when an upload holds NIfTI.

MAX_CHANNELS_FROM_4D_NIFTI = 4
GZIP_MAGIC = b"\x1f\x8b"


def read_nifti(path, name, limits):
    import nibabel

    gzipped = _is_gzip(path)
    header = _read_header(path, gzipped, name)
    shape = header.get_data_shape()
    try:
        dtype = header.get_data_dtype()
    except KeyError:
        raise ImageImportError(name, f"unknown NIfTI datatype code {int(header['datatype'])}") from None
    channels = [field_name for field_name in dtype.names or () if field_name != "A"]
    data_shape = (*shape, len(channels)) if dtype.fields else tuple(shape)
    limits.check_voxels(name, data_shape, what="NIfTI")
    _check_shape(data_shape, name)
    # Everything nibabel reads lies before the data's end, so this bounds what is decompressed.
    size = max(int(header.get_data_offset()), len(header.binaryblock) + 4) + prod(shape) * dtype.itemsize
    limits.check_decompressed(name, size, what="the header declares")
    if not gzipped and path.name.lower().endswith(".nii"):
        image = nibabel.load(str(path))  # memory-mapped: no copy of the file in memory
    else:
        with _open(path, gzipped) as stream:
            content = stream.read(size)
        if len(content) < size:
            raise ImageImportError(
                name, f"data is truncated: the header declares {size:,} bytes, the file holds {len(content):,}"
            )
        image_class = nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else nibabel.Nifti1Image
        image = image_class.from_bytes(content)
    if not isinstance(image, nibabel.Nifti1Image | nibabel.Nifti2Image):
        raise ImageImportError(name, f"not a NIfTI image ({type(image).__name__})")
    data = _nifti_data(image, name)
    if data.ndim == 5 and data.shape[3] == 1:  # NIfTI vector images keep components on the 5th axis
        data = data[:, :, :, 0, :]
    while data.ndim < 4:
        data = data[..., np.newaxis]
    array = np.ascontiguousarray(data.transpose(3, 2, 1, 0))  # (x, y, z, c) → (c, z, y, x) = (C, D, H, W)
    zooms = [float(zoom) for zoom in image.header.get_zooms()[:3]] + [1.0] * 3
    spacing = [zooms[2], zooms[1], zooms[0]]
    if array.shape[1] == 1:
        array, spacing = array[:, 0], spacing[1:]
    affine = np.asarray(image.affine, dtype=np.float64)
    rotation = affine[:3, :3]
    norms = np.linalg.norm(rotation, axis=0)
    if np.all(norms > 0) and np.all(np.isfinite(rotation)):
        direction = rotation / norms
        direction[:2] *= -1  # RAS → LPS
        direction = [float(value) + 0.0 for value in direction.ravel()]
    else:
        direction = list(IDENTITY_DIRECTION)
    origin = [float(-affine[0, 3]) + 0.0, float(-affine[1, 3]) + 0.0, float(affine[2, 3])]
    return ImportedImage(
        array=as_float32(array, name),
        spacing=spacing,
        direction=direction,
        origin=origin,
        source_format="nifti",
        meta={"stored_dtype": str(image.get_data_dtype())},
    )


def _is_gzip(path):
    with open(path, "rb") as handle:
        return handle.read(len(GZIP_MAGIC)) == GZIP_MAGIC


def _open(path, gzipped):
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _read_header(path, gzipped, name):
    """The NIfTI-1 or NIfTI-2 header (nibabel's), read alone: nothing past it is decompressed."""
    import nibabel

    with _open(path, gzipped) as stream:
        head = stream.read(540)
    sizes = {struct.unpack(f"{order}i", head[:4])[0] for order in "<>"} if len(head) >= 4 else set()
    if 540 in sizes and len(head) >= 540:
        return nibabel.Nifti2Header(binaryblock=head[:540], check=False)
    if 348 in sizes and len(head) >= 348:
        return nibabel.Nifti1Header(binaryblock=head[:348], check=False)
    raise ImageImportError(name, "not a NIfTI file: no NIfTI-1 (348 bytes) or NIfTI-2 (540 bytes) header")


def _check_shape(data_shape, name):
    """Refuse, from the header, shapes that are no image: (x, y, z), (x, y, z, c ≤ 4) or a vector image."""
    squeezed = data_shape
    if len(squeezed) == 5 and squeezed[3] == 1:
        squeezed = squeezed[:3] + squeezed[4:]
    if len(squeezed) > 4 or (len(squeezed) == 4 and squeezed[3] > MAX_CHANNELS_FROM_4D_NIFTI):
        raise ImageImportError(
            name,
            f"NIfTI of shape {data_shape} is not supported: expected 2D or 3D, "
            f"or 4D with at most {MAX_CHANNELS_FROM_4D_NIFTI} volumes (taken as channels)",
        )


def _nifti_data(image, name):
    dtype = image.get_data_dtype()
    if dtype.fields:  # RGB24/RGBA32: one structured value per voxel
        raw = np.asanyarray(image.dataobj)
        return np.stack([raw[field_name] for field_name in dtype.names if field_name != "A"], axis=-1)
    if np.issubdtype(dtype, np.complexfloating):
        raise ImageImportError(name, "complex-valued NIfTI is not supported: store magnitude (or real and imaginary)")
    return image.get_fdata(dtype=np.float32)
