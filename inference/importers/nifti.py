"""NIfTI-1 and NIfTI-2 files (``.nii``, ``.nii.gz``), read with nibabel.

nibabel indexes data ``(x, y, z) = (i, j, k)``; canonical is ``(D, H, W) = (k, j, i)``,
so ``array[0, d, h, w] == data[w, h, d]`` and spacing is ``(zooms[2], zooms[1],
zooms[0])``. Voxels are not resampled or reoriented: the affine (RAS) becomes
direction and origin in LPS. A z axis of size 1 gives a 2D image; a 4th axis of
at most 4 volumes gives channels.
"""

from __future__ import annotations

import numpy as np

from .base import IDENTITY_DIRECTION, ImageImportError, ImportedImage, as_float32

# nibabel is imported where it is used: it is heavy and only needed when an upload holds NIfTI.

MAX_CHANNELS_FROM_4D_NIFTI = 4


def read_nifti(path, name):
    import nibabel

    if path.name.lower().endswith((".nii", ".nii.gz")):
        image = nibabel.load(str(path))
    else:
        image = nibabel.Nifti1Image.from_bytes(path.read_bytes())
    if not isinstance(image, nibabel.Nifti1Image | nibabel.Nifti2Image):
        raise ImageImportError(name, f"not a NIfTI image ({type(image).__name__})")
    data = _nifti_data(image, name)
    shape = data.shape
    if data.ndim == 5 and shape[3] == 1:  # NIfTI vector images keep components on the 5th axis
        data = data[:, :, :, 0, :]
    while data.ndim < 3:
        data = data[..., np.newaxis]
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if data.ndim != 4 or data.shape[3] > MAX_CHANNELS_FROM_4D_NIFTI:
        raise ImageImportError(
            name,
            f"NIfTI of shape {shape} is not supported: expected 2D or 3D, "
            f"or 4D with at most {MAX_CHANNELS_FROM_4D_NIFTI} volumes (taken as channels)",
        )
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


def _nifti_data(image, name):
    dtype = image.get_data_dtype()
    if dtype.fields:  # RGB24/RGBA32: one structured value per voxel
        raw = np.asanyarray(image.dataobj)
        return np.stack([raw[field_name] for field_name in dtype.names if field_name != "A"], axis=-1)
    if np.issubdtype(dtype, np.complexfloating):
        raise ImageImportError(name, "complex-valued NIfTI is not supported: store magnitude (or real and imaginary)")
    return image.get_fdata(dtype=np.float32)
