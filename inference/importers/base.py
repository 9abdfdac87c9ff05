"""What every importer module shares: errors, the imported-image dataclasses, format sniffing.

Canonical form
--------------
``array`` is float32 of shape ``(C, *spatial)``; spatial is ``(H, W)`` for a 2D image and
``(D, H, W)`` for a volume. ``spacing`` is mm per spatial axis, in the same order.
``direction`` is a 3×3 matrix, row-major, whose *columns* are the LPS unit vectors of the
W, H and D axes (the ITK/SimpleITK convention, LPS as in DICOM); ``origin`` is the LPS
position of the first voxel. Formats without geometry get 1 mm, identity and zeros.

Format detection is by content (the extension only for gzipped NIfTI): see ``detect_format``.

Limits
------
Every reader takes a ``Limits``: how many voxels one image may have (checked from the header,
before anything is allocated), how many bytes one compressed input may expand to, and what one
import may cost in all (time, decoded bytes, problems listed). The services build it from
settings; this package never reads them.
"""

from __future__ import annotations

import re
import time
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from math import prod
from pathlib import Path, PurePosixPath

import numpy as np

# pydicom, nibabel and Pillow are imported where they are used (heavy: pydicom and nibabel take
# ~0.15-0.2 s each), so a process that never reads an upload never loads them.

FORMAT_LABELS = {"dicom": "DICOM", "nifti": "NIfTI", "png": "PNG", "tiff": "TIFF", "npy": "NPY", "npz": "NPZ"}
IDENTITY_DIRECTION = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
# Index files and OS litter, never images.
IGNORED_NAMES = {"__MACOSX", "DICOMDIR", "Thumbs.db", "desktop.ini"}


MAX_MESSAGE_CHARS = 500
MAX_PATH_CHARS = 300


def _clip(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ImageImportError(Exception):
    """A problem with one file, named as the user knows it (relative within the upload).

    Path and message are clipped (to 300 and 500 characters), so that no upload can make
    an error list, and the response that carries it, arbitrarily long.
    """

    def __init__(self, path, message):
        path, message = _clip(str(path), MAX_PATH_CHARS), _clip(str(message), MAX_MESSAGE_CHARS)
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self):
        return f"{self.path}: {self.message}" if self.path else self.message


class LimitExceeded(ImageImportError):
    """One file is past a limit of `Limits` (voxels, decompressed bytes, metadata size)."""


class ImportStopped(ImageImportError):
    """The whole import is past a limit (time, decoded bytes in all): nothing more is read."""


class ArchiveError(ImageImportError):
    """An archive that is unsafe or broken; nothing from it should be used."""

    def __init__(self, message, path=""):
        super().__init__(path, message)
        self.args = (message, path)


class DatasetImportError(ImageImportError):
    """Everything wrong with an upload, so the user can fix it all in one go.

    `problems` are the errors listed (at most `Limits.max_errors` when built by a scan),
    `more` how many further ones were found but not listed, `note` why checking stopped
    early, if it did. `errors` is what to show: the problems, then a line for each of the
    other two.
    """

    def __init__(self, errors, *, more=0, note=""):
        self.problems = list(errors)
        self.more = more
        self.note = note
        count = len(self.problems) + more
        super().__init__("", f"{count} problem{'s' if count != 1 else ''} found")
        self.errors = list(self.problems)
        if more:
            self.errors.append(
                ImageImportError("", f"… and {more:,} more (only the first {len(self.problems)} are listed)")
            )
        if note:
            self.errors.append(ImageImportError("", note))
        self.args = (self.errors,)

    def __str__(self):
        return "\n".join([self.message, *(f"- {error}" for error in self.errors)])


class Problems:
    """The problems of an upload as a scan finds them: the first `limit` are kept, the rest counted."""

    def __init__(self, limit):
        self.limit = limit
        self.listed = []
        self.more = 0

    def __bool__(self):
        return bool(self.listed or self.more)

    def __len__(self):
        return len(self.listed) + self.more

    @property
    def full(self):
        return len(self.listed) >= self.limit

    def append(self, error):
        if isinstance(error, DatasetImportError):
            self.extend(error.problems)
            self.more += error.more
        elif self.full:
            self.more += 1
        else:
            self.listed.append(error)

    def extend(self, errors):
        for error in errors:
            self.append(error)

    def error(self, note=""):
        return DatasetImportError(self.listed, more=self.more, note=note)


# --- Limits ---------------------------------------------------------------------------

# The defaults match medgen_site/settings.py, which has the deployment's values and says why.
DEFAULT_MAX_IMAGE_VOXELS = 512**3
DEFAULT_MAX_DECOMPRESSED_BYTES = 2 * 1024**3
DEFAULT_MAX_IMPORT_BYTES = 8 * 1024**3


@dataclass(frozen=True)
class Limits:
    """What one image, and one import, may cost.

    max_image_voxels        values of one canonical image, C·D·H·W (each channel counts), checked
                            from the file's header before any pixel is read or allocated.
    max_decompressed_bytes  bytes one compressed input may expand to: a gzipped NIfTI, an NPZ
                            member, the decoded pixels of a PNG/TIFF or DICOM, a deflated DICOM
                            data set, one zip entry.
    max_import_bytes        the decoded (float32) images of one scan together: all of them are
                            held in memory until the whole upload has been checked.
    max_errors              problems listed; a scan stops reading images once it has this many.
    max_metadata_bytes, max_metadata_depth
                            a case's metadata.json: its size, and how deeply it may nest.
    seconds                 the time budget of one import (extraction and scan); None: no limit.
    deadline                `time.monotonic()` at which that budget ends; `started()` sets it.
    """

    max_image_voxels: int = DEFAULT_MAX_IMAGE_VOXELS
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_import_bytes: int = DEFAULT_MAX_IMPORT_BYTES
    max_errors: int = 50
    max_metadata_bytes: int = 1024**2
    max_metadata_depth: int = 32
    seconds: float | None = None
    deadline: float | None = None

    def started(self):
        """These limits with the time budget running from now (unchanged if it already runs)."""
        if self.seconds is None or self.deadline is not None:
            return self
        return replace(self, deadline=time.monotonic() + self.seconds)

    def check_time(self):
        """Raise ImportStopped once the time budget is spent."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ImportStopped("", f"the import took longer than its limit of {self.seconds:g} s")

    def check_voxels(self, name, shape, *, what="image"):
        """Refuse an image of `shape` (as its header gives it: the message shows it) past `max_image_voxels`."""
        shape = tuple(int(size) for size in shape)
        if any(size < 0 for size in shape):
            raise ImageImportError(name, f"the header declares a negative size: {shape}")
        count = prod(shape)
        if count > self.max_image_voxels:
            raise LimitExceeded(
                name, f"{what} of shape {shape} has {count:,} voxels; the limit is {self.max_image_voxels:,} per image"
            )
        return count

    def check_decompressed(self, name, size, *, what="decompresses to"):
        """Refuse `size` bytes (to be decompressed or decoded) past `max_decompressed_bytes`."""
        if size > self.max_decompressed_bytes:
            raise LimitExceeded(name, f"{what} {size:,} bytes; the limit is {self.max_decompressed_bytes:,} per image")


DEFAULT_LIMITS = Limits()


# --- Messages from libraries ----------------------------------------------------------

# An absolute path in a library's message (not one inside a relative name such as c1/input.nii).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"<>]+)+[/\\]?")


def describe(error):
    """A library exception as text for the user: absolute (server) paths become their last part."""
    text = str(error).strip() or type(error).__name__
    return _ABSOLUTE_PATH.sub(lambda match: re.split(r"[/\\]", match.group(0).rstrip("/\\"))[-1], text)


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


def parse_dicom(path, *, header_only, limits=DEFAULT_LIMITS):
    """A pydicom Dataset, or None when the file is not DICOM.

    Raises LimitExceeded for a deflated data set that inflates past the limit (pydicom would
    inflate it whole, into memory, even for the header alone).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    _check_deflated(path, limits)
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


DEFLATED_TRANSFER_SYNTAX = "1.2.840.10008.1.2.1.99"
# Inflated a MiB at a time from 64 KiB of input: little memory, and no large unconsumed tail to copy.
INFLATE_INPUT_BYTES, INFLATE_OUTPUT_BYTES = 64 * 1024, 1024**2


def _check_deflated(path, limits):
    """Inflate a deflated data set chunk by chunk, counting, and refuse it past the limit."""
    # pydicom has no public way to read the file meta and stay where it ends.
    from pydicom.filereader import _read_file_meta_info, read_preamble

    path = Path(path)
    with open(path, "rb") as handle:
        try:
            read_preamble(handle, True)
            syntax = _read_file_meta_info(handle).get("TransferSyntaxUID")
        except Exception:  # not DICOM, or broken: the real parse says so
            return
        if str(syntax or "") != DEFLATED_TRANSFER_SYNTAX:
            return
        inflater, total = zlib.decompressobj(-zlib.MAX_WBITS), 0
        try:
            while (chunk := handle.read(INFLATE_INPUT_BYTES)) and not inflater.eof:
                while chunk:
                    total += len(inflater.decompress(chunk, INFLATE_OUTPUT_BYTES))
                    chunk = inflater.unconsumed_tail
                    limits.check_decompressed(path.name, total, what="deflated data set inflates to at least")
        except zlib.error:  # corrupt: pydicom's own inflate reports it
            return


def detect_format(path, limits=DEFAULT_LIMITS):
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
    if parse_dicom(path, header_only=True, limits=limits) is not None:
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
    # Siblings sort by name as paths do, without pathlib's slow comparisons (100k entries: seconds).
    return sorted((child for child in folder.iterdir() if is_visible(child)), key=lambda child: child.name)


def visible_files(folder):
    for child in visible_children(folder):
        if child.is_dir():
            yield from visible_files(child)
        elif child.is_file():
            yield child
