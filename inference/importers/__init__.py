"""Read medical images and dataset layouts into the platform's canonical form (no Django here).

Every image becomes float32 ``(C, H, W)`` or ``(C, D, H, W)`` with spacing, direction and
origin (the canonical form is described in ``base``).

Modules:
- ``base``: errors, the imported-image dataclasses, ``Limits`` (what one image and one import
  may cost: the services build it from settings), format sniffing (``detect_format``).
- ``reading``: ``read_image``, one file or one DICOM series folder, any format.
- ``dicom``, ``nifti``, ``pillow`` (PNG, TIFF), ``npy`` (NPY, NPZ): one reader per format,
  each module's docstring says how its format maps to the canonical form.
- ``archives``: safe zip extraction (``safe_extract_zip``) and ``zip_folder``.
- ``layout``: ``scan_dataset``, the cases of an upload in the case or flat layout.
"""

from .archives import safe_extract_zip, zip_folder
from .base import (
    FORMAT_LABELS,
    ArchiveError,
    DatasetImportError,
    ImageImportError,
    ImportedCase,
    ImportedCaseImage,
    ImportedImage,
    ImportStopped,
    LimitExceeded,
    Limits,
    detect_format,
    split_name,
)
from .layout import role_of, scan_dataset
from .reading import read_image

__all__ = [
    "FORMAT_LABELS",
    "ArchiveError",
    "DatasetImportError",
    "ImageImportError",
    "ImportedCase",
    "ImportedCaseImage",
    "ImportStopped",
    "ImportedImage",
    "LimitExceeded",
    "Limits",
    "detect_format",
    "read_image",
    "role_of",
    "safe_extract_zip",
    "scan_dataset",
    "split_name",
    "zip_folder",
]
