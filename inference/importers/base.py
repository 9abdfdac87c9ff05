"""What every importer module shares: errors, the imported-image dataclasses, format sniffing.

Canonical form
--------------
``array`` is float32 of shape ``(C, *spatial)``; spatial is ``(H, W)`` for a 2D image and
``(D, H, W)`` for a volume. ``spacing`` is mm per spatial axis, in the same order.
``direction`` is a 3×3 matrix, row-major, whose *columns* are the LPS unit vectors of the
W, H and D axes (the ITK/SimpleITK convention, LPS as in DICOM); ``origin`` is the LPS
position of the first voxel. Formats without geometry get 1 mm, identity and zeros.

Format detection is by content (the extension only for gzipped NIfTI): see ``detect_format``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

# pydicom, nibabel and Pillow are imported where they are used (heavy: pydicom and nibabel take
# ~0.15-0.2 s each), so a process that never reads an upload never loads them.

FORMAT_LABELS = {"dicom": "DICOM", "nifti": "NIfTI", "png": "PNG", "tiff": "TIFF", "npy": "NPY", "npz": "NPZ"}
IDENTITY_DIRECTION = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
# Index files and OS litter, never images.
IGNORED_NAMES = {"__MACOSX", "DICOMDIR", "Thumbs.db", "desktop.ini"}


class ImageImportError(Exception):
    """A problem with one file, named as the user knows it (relative within the upload)."""

    def __init__(self, path, message):
        super().__init__(str(path), message)
        self.path = str(path)
        self.message = message

    def __str__(self):
        return f"{self.path}: {self.message}" if self.path else self.message


class ArchiveError(ImageImportError):
    """An archive that is unsafe or broken; nothing from it should be used."""

    def __init__(self, message, path=""):
        super().__init__(path, message)
        self.args = (message, path)


class DatasetImportError(ImageImportError):
    """Everything wrong with an upload, so the user can fix it all in one go."""

    def __init__(self, errors):
        self.errors = list(errors)
        count = len(self.errors)
        super().__init__("", f"{count} problem{'s' if count != 1 else ''} found")
        self.args = (self.errors,)

    def __str__(self):
        return "\n".join([self.message, *(f"- {error}" for error in self.errors)])


@dataclass
class ImportedImage:
    array: np.ndarray
    spacing: list[float]
    direction: list[float] = field(default_factory=lambda: list(IDENTITY_DIRECTION))
    origin: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    source_format: str = ""
    original_name: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def spatial_shape(self):
        return tuple(self.array.shape[1:])


@dataclass
class ImportedCaseImage:
    role: str
    index: int
    image: ImportedImage
    original_path: Path | None = None


@dataclass
class ImportedCase:
    case_id: str
    images: list[ImportedCaseImage]
    metadata: dict = field(default_factory=dict)


# --- Format detection -----------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
DICOM_EXTENSIONS = {".dcm", ".dicom", ".ima"}
# A forced pydicom parse of any file yields *something*; these say it really is DICOM.
DICOM_IDENTIFYING_KEYWORDS = ("SOPClassUID", "Modality", "SeriesInstanceUID", "Rows")


def split_name(name):
    """`("brain", ".nii.gz")` for "brain.nii.gz"; the double suffix NIfTI uses is kept whole."""
    if name.lower().endswith(".nii.gz"):
        return name[: -len(".nii.gz")], name[-len(".nii.gz") :]
    path = PurePosixPath(name)
    return path.stem, path.suffix


def parse_dicom(path, *, header_only):
    """A pydicom Dataset, or None when the file is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except InvalidDicomError:
        pass
    except Exception:
        return None
    try:
        dataset = pydicom.dcmread(path, force=True, stop_before_pixels=header_only)
        if any(keyword in dataset for keyword in DICOM_IDENTIFYING_KEYWORDS):
            return dataset
    except Exception:
        pass
    return None


def detect_format(path):
    """The source format of a file from its content (extension only for gzipped NIfTI), or None."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(352)
    lower = path.name.lower()
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head[:4] in TIFF_MAGICS:
        return "tiff"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if lower.endswith((".nii", ".nii.gz")) or _has_nifti_header(head):
        return "nifti"
    if head.startswith(ZIP_MAGIC) and _is_npz(path):
        return "npz"
    if parse_dicom(path, header_only=True) is not None:
        return "dicom"
    return None


def _has_nifti_header(head):
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return True
    return len(head) >= 8 and head[4:8] == b"n+2\x00"


def _is_npz(path):
    if path.name.lower().endswith(".npz"):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def as_float32(array, name):
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageImportError(name, f"unsupported pixel type {array.dtype}: expected integers or real numbers")
    return np.ascontiguousarray(array, dtype=np.float32)


# --- Visible entries of a folder ------------------------------------------------------


def is_visible(path):
    return not path.name.startswith(".") and path.name not in IGNORED_NAMES


def visible_children(folder):
    return sorted(child for child in folder.iterdir() if is_visible(child))


def visible_files(folder):
    for child in visible_children(folder):
        if child.is_dir():
            yield from visible_files(child)
        elif child.is_file():
            yield child
