"""Reading one image file (or one DICOM series folder): dispatch by detected format, then shared checks."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .base import (
    DEFAULT_LIMITS,
    DICOM_EXTENSIONS,
    FORMAT_LABELS,
    ImageImportError,
    describe,
    detect_format,
    split_name,
)
from .dicom import read_dicom_file, read_dicom_folder
from .nifti import read_nifti
from .npy import read_npy, read_npz
from .pillow import read_pillow


def read_image(path, display_name=None, *, limits=None):
    """Read one image file, or a folder holding one DICOM series, into canonical form.

    Raises ImageImportError naming the file (DatasetImportError when several files of a
    series are bad; LimitExceeded past one of `limits`, ImportStopped past the import's time).
    """
    path = Path(path)
    name = display_name or path.name
    limits = limits or DEFAULT_LIMITS
    limits.check_time()
    with warnings.catch_warnings():
        # pydicom and nibabel warn about every oddity; the errors raised here say what matters.
        warnings.simplefilter("ignore")
        if path.is_dir():
            image = _guarded(read_dicom_folder, path, name, "a DICOM series", limits)
        elif not path.is_file():
            raise ImageImportError(name, "no such file")
        else:
            try:
                source_format = detect_format(path, limits)
            except OSError as error:
                raise ImageImportError(name, f"cannot be opened: {error.strerror or describe(error)}") from error
            except ImageImportError as error:  # named by the file's own name: say it as the upload does
                raise type(error)(name, error.message) from error
            if source_format is None:
                if split_name(path.name)[1].lower() in DICOM_EXTENSIONS:
                    raise ImageImportError(name, "not a DICOM file: no 'DICM' header and no DICOM image attributes")
                raise ImageImportError(name, "unrecognised file format: expected DICOM, NIfTI, PNG, TIFF, NPY or NPZ")
            image = _guarded(READERS[source_format], path, name, FORMAT_LABELS[source_format], limits)
    image.original_name = name
    _check_array(image.array, name)
    return image


def _guarded(reader, path, name, format_label, limits):
    """Run a reader, turning library exceptions into an error naming the file (and no server path)."""
    try:
        return reader(path, name, limits)
    except (ImageImportError, MemoryError):
        raise
    except Exception as error:
        raise ImageImportError(name, f"cannot be read as {format_label}: {describe(error)}") from error


def _check_array(array, name):
    if array.size == 0:
        raise ImageImportError(name, f"image is empty (shape {tuple(array.shape)})")
    if array.ndim not in (3, 4):
        raise ImageImportError(name, f"unsupported shape {tuple(array.shape)}: expected (C, H, W) or (C, D, H, W)")
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ImageImportError(name, f"image contains {bad} NaN or infinite values")


READERS = {
    "dicom": read_dicom_file,
    "nifti": read_nifti,
    "png": read_pillow,
    "tiff": read_pillow,
    "npy": read_npy,
    "npz": read_npz,
}
