"""Read medical images and dataset layouts into the platform's canonical form (no Django here).

Canonical form
--------------
``array`` is float32 of shape ``(C, *spatial)``; spatial is ``(H, W)`` for a 2D image and
``(D, H, W)`` for a volume. ``spacing`` is mm per spatial axis, in the same order.
``direction`` is a 3×3 matrix, row-major, whose *columns* are the LPS unit vectors of the
W, H and D axes (the ITK/SimpleITK convention, LPS as in DICOM); ``origin`` is the LPS
position of the first voxel. Formats without geometry get 1 mm, identity and zeros.

Per format
----------
DICOM     Stored values go through the modality LUT or RescaleSlope/RescaleIntercept (RT Dose:
          DoseGridScaling too), so CT is in HU. A single-frame file is 2D ``(1, H, W)``; a
          multi-frame file or a folder holding one series is a volume ``(1, D, H, W)``. Slices
          are ordered along the slice normal (ImageOrientationPatient) by
          ImagePositionPatient, else by InstanceNumber. Colour (RGB, YBR, palette) becomes
          3 channels, ``(3, H, W)`` or ``(3, D, H, W)``. A file without the "DICM" header
          loads when pydicom parses image attributes from it; its transfer syntax is then
          the encoding it parsed with.
NIfTI     nibabel indexes data ``(x, y, z) = (i, j, k)``; canonical is ``(D, H, W) = (k, j, i)``,
          so ``array[0, d, h, w] == data[w, h, d]`` and spacing is ``(zooms[2], zooms[1],
          zooms[0])``. Voxels are not resampled or reoriented: the affine (RAS) becomes
          direction and origin in LPS. A z axis of size 1 gives a 2D image; a 4th axis of
          at most 4 volumes gives channels.
PNG/TIFF  Grayscale → ``(1, H, W)``, RGB → ``(3, H, W)`` (an alpha channel is dropped when
          fully opaque and refused otherwise); 16-bit values are kept; a multi-page TIFF is
          a volume ``(C, D, H, W)``.
NPY/NPZ   The array is taken as already canonical, ``(C, H, W)`` or ``(C, D, H, W)``, as the
          platform stores it; a 2D array is one channel. An NPZ holds one array, or names it
          "image" (with an optional "spacing" array). Pickled object arrays are refused.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

FORMAT_LABELS = {"dicom": "DICOM", "nifti": "NIfTI", "png": "PNG", "tiff": "TIFF", "npy": "NPY", "npz": "NPZ"}
IDENTITY_DIRECTION = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
MAX_CHANNELS_FROM_4D_NIFTI = 4
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


def _parse_dicom(path, *, header_only):
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
    if _parse_dicom(path, header_only=True) is not None:
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


# --- Reading one image -----------------------------------------------------------------


def read_image(path, display_name=None):
    """Read one image file, or a folder holding one DICOM series, into canonical form.

    Raises ImageImportError naming the file (DatasetImportError when several files of a
    series are bad).
    """
    path = Path(path)
    name = display_name or path.name
    with warnings.catch_warnings():
        # pydicom and nibabel warn about every oddity; the errors raised here say what matters.
        warnings.simplefilter("ignore")
        if path.is_dir():
            image = _guarded(_read_dicom_folder, path, name, "a DICOM series")
        elif not path.is_file():
            raise ImageImportError(name, "no such file")
        else:
            try:
                source_format = detect_format(path)
            except OSError as error:
                raise ImageImportError(name, f"cannot be opened: {error.strerror or error}") from error
            if source_format is None:
                if split_name(path.name)[1].lower() in DICOM_EXTENSIONS:
                    raise ImageImportError(name, "not a DICOM file: no 'DICM' header and no DICOM image attributes")
                raise ImageImportError(name, "unrecognised file format: expected DICOM, NIfTI, PNG, TIFF, NPY or NPZ")
            image = _guarded(READERS[source_format], path, name, FORMAT_LABELS[source_format])
    image.original_name = name
    _check_array(image.array, name)
    return image


def _guarded(reader, path, name, format_label):
    """Run a reader, turning library exceptions into an error naming the file."""
    try:
        return reader(path, name)
    except (ImageImportError, MemoryError):
        raise
    except Exception as error:
        raise ImageImportError(name, f"cannot be read as {format_label}: {error}") from error


def _check_array(array, name):
    if array.size == 0:
        raise ImageImportError(name, f"image is empty (shape {tuple(array.shape)})")
    if array.ndim not in (3, 4):
        raise ImageImportError(name, f"unsupported shape {tuple(array.shape)}: expected (C, H, W) or (C, D, H, W)")
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ImageImportError(name, f"image contains {bad} NaN or infinite values")


def _as_float32(array, name):
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageImportError(name, f"unsupported pixel type {array.dtype}: expected integers or real numbers")
    return np.ascontiguousarray(array, dtype=np.float32)


# --- NumPy ----------------------------------------------------------------------------


PICKLE_REFUSED = "holds Python objects (a pickled object array), which are refused: save a numeric array"


def _read_npy(path, name):
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ImageImportError(name, PICKLE_REFUSED) from error
        raise
    return _canonical_from_numpy(array, name, "npy")


def _read_npz(path, name):
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
    array = _as_float32(array, name)
    return ImportedImage(array=array, spacing=[1.0] * (array.ndim - 1), source_format=source_format)


# --- PNG and TIFF ---------------------------------------------------------------------


def _read_pillow(path, name):
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
    array = _as_float32(array, name)
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


# --- NIfTI ----------------------------------------------------------------------------


def _read_nifti(path, name):
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
        array=_as_float32(array, name),
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


# --- DICOM ----------------------------------------------------------------------------


def _read_dicom_file(path, name):
    dataset = _load_dicom(path, name)
    values = _dicom_values(dataset, name)  # (C, F, H, W)
    row_cosine, column_cosine, pixel_spacing = _plane_geometry(dataset, name)
    normal = np.cross(row_cosine, column_cosine)
    frames = values.shape[1]
    meta = _dicom_meta(dataset)
    if frames == 1:
        position = _dicom_floats(dataset, "ImagePositionPatient", name, 3)
        return ImportedImage(
            array=values[:, 0],
            spacing=pixel_spacing,
            direction=_direction(row_cosine, column_cosine, normal),
            origin=position or [0.0, 0.0, 0.0],
            source_format="dicom",
            meta=meta,
        )
    positions = _frame_positions(dataset, name, frames)
    if positions is not None:
        order, slice_spacing = _order_along_normal(positions, normal, name)
        values = values[:, order]
        origin = [float(value) for value in positions[order[0]]]
    else:
        slice_spacing = _frame_spacing(dataset, name)
        origin = _dicom_floats(dataset, "ImagePositionPatient", name, 3) or [0.0, 0.0, 0.0]
    return ImportedImage(
        array=values,
        spacing=[slice_spacing, *pixel_spacing],
        direction=_direction(row_cosine, column_cosine, normal),
        origin=origin,
        source_format="dicom",
        meta=meta | {"frames": frames},
    )


def _read_dicom_folder(folder, name):
    files = sorted(_visible_files(folder))
    if not files:
        raise ImageImportError(name, "empty folder: expected the DICOM files of one series")
    if len(files) == 1:
        return _read_dicom_file(files[0], f"{name}/{files[0].relative_to(folder).as_posix()}")
    errors, slices = [], []
    for path in files:
        display = f"{name}/{path.relative_to(folder).as_posix()}"
        try:
            dataset = _load_dicom(path, display)
            values = _dicom_values(dataset, display)
            if values.shape[1] != 1:
                raise ImageImportError(display, "a multi-frame file cannot be part of a series of slices")
            slices.append((display, dataset, values[:, 0]))
        except ImageImportError as error:
            errors.append(error)
    if errors:
        raise errors[0] if len(errors) == 1 else DatasetImportError(errors)
    return _stack_series(slices, name)


def _stack_series(slices, name):
    series_uids = sorted({str(dataset.get("SeriesInstanceUID", "")) for _, dataset, _ in slices})
    if len(series_uids) > 1:
        raise ImageImportError(
            name,
            f"files from {len(series_uids)} different series (SeriesInstanceUID {', '.join(series_uids[:3])}"
            f"{', …' if len(series_uids) > 3 else ''}): put each series in its own folder",
        )
    first_name, first, first_values = slices[0]
    for display, _, values in slices[1:]:
        if values.shape != first_values.shape:
            raise ImageImportError(
                name,
                f"slices differ in shape: {first_name} is {first_values.shape[1:]}, {display} is {values.shape[1:]}",
            )
    row_cosine, column_cosine, pixel_spacing = _plane_geometry(first, first_name)
    normal = np.cross(row_cosine, column_cosine)
    positions = [_dicom_floats(dataset, "ImagePositionPatient", display, 3) for display, dataset, _ in slices]
    orientations = [_dicom_floats(dataset, "ImageOrientationPatient", display, 6) for display, dataset, _ in slices]
    if all(positions) and all(orientations):
        reference = np.asarray(orientations[0])
        for (display, _, _), orientation in zip(slices, orientations, strict=True):
            if not np.allclose(orientation, reference, atol=1e-3):
                raise ImageImportError(name, f"slices differ in orientation: {display} is not parallel to {first_name}")
        order, slice_spacing = _order_along_normal(np.asarray(positions, dtype=np.float64), normal, name)
        origin = [float(value) for value in positions[order[0]]]
        ordered_by = "ImagePositionPatient"
    else:
        numbers = [_dicom_int(dataset, "InstanceNumber", display) for display, dataset, _ in slices]
        if None in numbers:
            raise ImageImportError(name, "cannot order the slices: they lack ImagePositionPatient and InstanceNumber")
        if len(set(numbers)) != len(numbers):
            raise ImageImportError(name, "cannot order the slices: InstanceNumber repeats and there is no position")
        order = np.argsort(numbers, kind="stable")
        slice_spacing = _frame_spacing(first, first_name)
        origin = positions[order[0]] or [0.0, 0.0, 0.0]
        ordered_by = "InstanceNumber"
    volume = np.stack([slices[index][2] for index in order], axis=1)
    return ImportedImage(
        array=volume,
        spacing=[slice_spacing, *pixel_spacing],
        direction=_direction(row_cosine, column_cosine, normal),
        origin=origin,
        source_format="dicom",
        meta=_dicom_meta(first) | {"files": len(slices), "ordered_by": ordered_by},
    )


def _order_along_normal(positions, normal, name):
    """Slice order and spacing from positions projected on the slice normal."""
    distances = np.asarray(positions, dtype=np.float64) @ normal
    order = np.argsort(distances, kind="stable")
    gaps = np.diff(distances[order])
    if not len(gaps):
        return order, 1.0
    if np.any(gaps < 1e-4):
        raise ImageImportError(
            name, "several slices share a position: one folder must hold one volume (not time points or echoes)"
        )
    spacing = float(np.median(gaps))
    # Tolerate rounding in the stored positions but not a missing slice.
    if np.max(np.abs(gaps - spacing)) > max(0.05 * spacing, 0.01):
        raise ImageImportError(
            name, f"slice spacing is not uniform ({gaps.min():.4g} to {gaps.max():.4g} mm): are slices missing?"
        )
    return order, spacing


def _frame_spacing(dataset, name):
    offsets = _dicom_floats(dataset, "GridFrameOffsetVector", name)  # RT Dose
    if offsets and len(offsets) > 1:
        gaps = np.abs(np.diff(offsets))
        if np.all(gaps > 0):
            return float(np.median(gaps))
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _dicom_float(dataset, keyword, name)
        if value:
            return abs(value)
    return 1.0


def _frame_positions(dataset, name, frames):
    """Per-frame ImagePositionPatient of an enhanced multi-frame file, or None."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if not per_frame or len(per_frame) != frames:
        return None
    positions = []
    for item in per_frame:
        plane = item.get("PlanePositionSequence")
        position = _dicom_floats(plane[0], "ImagePositionPatient", name, 3) if plane else None
        if position is None:
            return None
        positions.append(position)
    return np.asarray(positions, dtype=np.float64)


def _load_dicom(path, name):
    dataset = _parse_dicom(path, header_only=False)
    if dataset is None:
        raise ImageImportError(name, "not a DICOM file: no 'DICM' header and no DICOM image attributes")
    return dataset


def _transfer_syntax(dataset, name):
    from pydicom import uid
    from pydicom.dataset import FileMetaDataset

    file_meta = getattr(dataset, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax:
        return uid.UID(str(syntax))
    # No syntax recorded: the data set parsed, so its encoding is known.
    implicit, little_endian = dataset.original_encoding
    if implicit is None:
        raise ImageImportError(name, "transfer syntax is missing and the encoding cannot be inferred")
    if implicit:
        syntax = uid.ImplicitVRLittleEndian
    else:
        syntax = uid.ExplicitVRLittleEndian if little_endian else uid.ExplicitVRBigEndian
    if file_meta is None:
        dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    return syntax


def _syntax_label(syntax):
    return f"{syntax} ({syntax.name if syntax.name != str(syntax) else 'unknown'})"


PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _decode_pixels(dataset, name):
    """Pixel values as pydicom gives them: (H, W), (F, H, W), or with a trailing colour axis."""
    from pydicom.pixels import get_decoder

    keyword = next((keyword for keyword in PIXEL_KEYWORDS if keyword in dataset), None)
    if keyword is None:
        modality = dataset.get("Modality") or "non-image"
        raise ImageImportError(name, f"no pixel data: this {modality} object is not an image")
    required = ["Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation"]
    if keyword == "PixelData":
        required += ["BitsStored", "PixelRepresentation"]
    missing = [keyword for keyword in required if dataset.get(keyword) in (None, "")]
    if missing:
        raise ImageImportError(name, f"missing attributes needed to decode the pixel data: {', '.join(missing)}")
    for integer_keyword in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated"):
        _dicom_int(dataset, integer_keyword, name)
    syntax = _transfer_syntax(dataset, name)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        raise ImageImportError(name, f"transfer syntax {_syntax_label(syntax)} cannot be decoded here")
    try:
        return dataset.pixel_array
    except ValueError as error:
        sizes = re.search(r"\((\d+) vs (\d+) bytes\)", str(error))
        if sizes and "less than expected" in str(error):
            found, expected = sizes.groups()
            message = f"pixel data is truncated: expected {expected} bytes, found {found}"
            raise ImageImportError(name, message) from error
        raise ImageImportError(name, f"pixel data cannot be decoded: {error}") from error
    except RuntimeError as error:  # every installed plugin refused (e.g. 12-bit JPEG and Pillow)
        detail = str(error).strip().splitlines()[-1].strip()
        raise ImageImportError(
            name, f"transfer syntax {_syntax_label(syntax)} cannot be decoded here ({detail})"
        ) from error


def _dicom_values(dataset, name):
    """Modality values (HU for CT) as float32 (C, F, H, W)."""
    pixels = _decode_pixels(dataset, name)
    frames = _dicom_int(dataset, "NumberOfFrames", name) or 1
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        pixels = apply_color_lut(pixels, dataset)
    colour = pixels.ndim == (4 if frames > 1 else 3)
    if frames == 1:
        pixels = pixels[np.newaxis]
    if colour:  # (F, H, W, 3); no modality LUT for colour images
        return _as_float32(np.moveaxis(pixels, -1, 0), name)
    return _apply_rescale(pixels, dataset, name)[np.newaxis]


def _apply_rescale(pixels, dataset, name):
    from pydicom.pixels import apply_modality_lut

    if dataset.get("ModalityLUTSequence"):
        return _as_float32(apply_modality_lut(pixels, dataset), name)
    dose_scaling = _dicom_float(dataset, "DoseGridScaling", name) if dataset.get("Modality") == "RTDOSE" else None
    shared = _functional_group(dataset.get("SharedFunctionalGroupsSequence"), 0, "PixelValueTransformationSequence")
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence") or []
    values = pixels.astype(np.float64)
    for frame in range(values.shape[0]):
        item = _functional_group(per_frame, frame, "PixelValueTransformationSequence") if per_frame else None
        slope, intercept = _rescale(item or shared or dataset, name)
        if dose_scaling:
            slope *= dose_scaling
        if slope != 1.0 or intercept != 0.0:
            values[frame] = values[frame] * slope + intercept
    return _as_float32(values, name)


def _functional_group(sequence, index, macro):
    if not sequence or index >= len(sequence):
        return None
    inner = sequence[index].get(macro)
    return inner[0] if inner else None


def _rescale(item, name):
    slope = _dicom_float(item, "RescaleSlope", name)
    intercept = _dicom_float(item, "RescaleIntercept", name)
    return (1.0 if slope is None else slope), (0.0 if intercept is None else intercept)


def _plane_geometry(dataset, name):
    """Row and column direction cosines and pixel spacing (between rows, between columns)."""
    orientation = _dicom_floats(dataset, "ImageOrientationPatient", name, 6)
    if orientation is None:
        item = _functional_group(dataset.get("SharedFunctionalGroupsSequence"), 0, "PlaneOrientationSequence")
        orientation = _dicom_floats(item, "ImageOrientationPatient", name, 6) if item else None
    orientation = orientation or [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    row_cosine = np.asarray(orientation[:3], dtype=np.float64)
    column_cosine = np.asarray(orientation[3:], dtype=np.float64)
    if np.linalg.norm(row_cosine) == 0 or np.linalg.norm(column_cosine) == 0:
        raise ImageImportError(name, f"bad ImageOrientationPatient {orientation}: zero-length direction")
    row_cosine /= np.linalg.norm(row_cosine)
    column_cosine /= np.linalg.norm(column_cosine)
    spacing = _dicom_floats(dataset, "PixelSpacing", name, 2)
    if spacing is None:
        item = _functional_group(dataset.get("SharedFunctionalGroupsSequence"), 0, "PixelMeasuresSequence")
        spacing = _dicom_floats(item, "PixelSpacing", name, 2) if item else None
    spacing = spacing or _dicom_floats(dataset, "ImagerPixelSpacing", name, 2) or [1.0, 1.0]
    if any(value <= 0 for value in spacing):
        raise ImageImportError(name, f"bad PixelSpacing {spacing}: must be positive")
    return row_cosine, column_cosine, [float(value) for value in spacing]


def _direction(row_cosine, column_cosine, normal):
    # Columns are the W (along a row), H (down a column) and D (slice normal) axes.
    matrix = np.column_stack([row_cosine, column_cosine, normal])
    return [float(value) + 0.0 for value in matrix.ravel()]  # + 0.0 turns -0.0 into 0.0


def _dicom_meta(dataset):
    meta = {"modality": str(dataset.get("Modality", "") or "")}
    syntax = getattr(dataset, "file_meta", None) and dataset.file_meta.get("TransferSyntaxUID")
    if syntax:
        meta["transfer_syntax"] = str(syntax)
    photometric = dataset.get("PhotometricInterpretation")
    if photometric:
        meta["photometric"] = str(photometric)
    return meta


def _element_label(dataset, keyword):
    element = dataset[keyword]
    return f"{keyword} {element.tag} (VR {element.VR})"


def _raw_value(dataset, keyword):
    return dataset.get(keyword) if keyword in dataset else None


def _dicom_int(dataset, keyword, name):
    value = _raw_value(dataset, keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ImageImportError(
            name, f"bad value {str(value)!r} for {_element_label(dataset, keyword)}: not an integer"
        ) from None


def _dicom_float(dataset, keyword, name):
    values = _dicom_floats(dataset, keyword, name, 1)
    return values[0] if values else None


def _dicom_floats(dataset, keyword, name, count=None):
    """The numbers of a DS/FD element, None when absent or empty."""
    value = _raw_value(dataset, keyword)
    if value is None or value == "":
        return None
    items = [value] if isinstance(value, str | bytes) or not hasattr(value, "__iter__") else list(value)
    try:
        numbers = [float(item) for item in items]
    except (TypeError, ValueError):
        raise ImageImportError(
            name, f"bad value {str(value)!r} for {_element_label(dataset, keyword)}: not a number"
        ) from None
    if count is not None and len(numbers) != count:
        raise ImageImportError(
            name, f"bad value for {_element_label(dataset, keyword)}: expected {count} numbers, found {len(numbers)}"
        )
    if not all(np.isfinite(numbers)):
        raise ImageImportError(name, f"bad value for {_element_label(dataset, keyword)}: not finite")
    return numbers


READERS = {
    "dicom": _read_dicom_file,
    "nifti": _read_nifti,
    "png": _read_pillow,
    "tiff": _read_pillow,
    "npy": _read_npy,
    "npz": _read_npz,
}


# --- Archives -------------------------------------------------------------------------

COPY_CHUNK_BYTES = 1024 * 1024


def safe_extract_zip(zip_path, dest_dir, max_bytes, max_entries, *, display_name=None):
    """Extract a zip archive into `dest_dir`, refusing anything that could escape it or explode.

    Checks every entry before writing anything, then counts the bytes actually written
    (the sizes in the archive are the uploader's claim). Returns the extracted files.
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    label = display_name or zip_path.name
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"not a readable zip archive ({error})", label) from error
    with archive:
        entries = archive.infolist()
        if len(entries) > max_entries:
            raise ArchiveError(f"archive has {len(entries)} entries; the limit is {max_entries}", label)
        declared = sum(entry.file_size for entry in entries)
        if declared > max_bytes:
            raise ArchiveError(f"archive would expand to {declared} bytes; the limit is {max_bytes}", label)
        seen = set()
        for entry in entries:
            _check_entry(entry, label)
            if entry.filename in seen:
                raise ArchiveError(f"entry '{entry.filename}' appears twice", label)
            seen.add(entry.filename)
        root = dest_dir.resolve()
        root.mkdir(parents=True, exist_ok=True)
        written_total, extracted = 0, []
        for entry in entries:
            target = (root / entry.filename).resolve()
            if not target.is_relative_to(root):
                raise ArchiveError(f"entry '{entry.filename}' would be written outside the archive folder", label)
            if entry.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with archive.open(entry) as source, open(target, "wb") as sink:
                    while chunk := source.read(COPY_CHUNK_BYTES):
                        written += len(chunk)
                        written_total += len(chunk)
                        if written_total > max_bytes:
                            raise ArchiveError(f"archive expands past the limit of {max_bytes} bytes", label)
                        if written > entry.file_size:
                            raise ArchiveError(f"entry '{entry.filename}' is larger than the archive declares", label)
                        sink.write(chunk)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
                raise ArchiveError(f"entry '{entry.filename}' is corrupt ({error})", label) from error
            extracted.append(target)
    return extracted


def _check_entry(entry, label):
    name = entry.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"entry '{name}' has an absolute path", label)
    if ".." in re.split(r"[\\/]", name):
        raise ArchiveError(f"entry '{name}' points outside the archive folder ('..')", label)
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise ArchiveError(f"entry '{name}' is a symbolic link", label)
    if entry.flag_bits & 0x1:
        raise ArchiveError(f"entry '{name}' is encrypted", label)


# --- Dataset layouts ------------------------------------------------------------------

ROLE_ORDER = {"input": 0, "reference": 1, "label": 2}
METADATA_FILE = "metadata.json"
MAX_CASE_ID_LENGTH = 200


def _is_visible(path):
    return not path.name.startswith(".") and path.name not in IGNORED_NAMES


def _visible_children(folder):
    return sorted(child for child in folder.iterdir() if _is_visible(child))


def _visible_files(folder):
    for child in _visible_children(folder):
        if child.is_dir():
            yield from _visible_files(child)
        elif child.is_file():
            yield child


def role_of(entry):
    """(role, index) for an entry named input, input_N, reference or label; None otherwise."""
    stem = entry.name if entry.is_dir() else split_name(entry.name)[0]
    match = re.fullmatch(r"(input)(?:_(\d+))?|(reference)|(label)", stem.lower())
    if not match:
        return None
    if match.group(1):
        return "input", int(match.group(2) or 0)
    return match.group(3) or match.group(4), 0


def _is_case_folder(folder):
    return any(child.name.lower() == METADATA_FILE or role_of(child) for child in _visible_children(folder))


def _dicom_series_uid(path):
    dataset = _parse_dicom(path, header_only=True)
    return None if dataset is None else str(dataset.get("SeriesInstanceUID", ""))


def _is_series_folder(folder):
    """A folder of several DICOM files, all of one series, and nothing else."""
    children = _visible_children(folder)
    if len(children) < 2 or not all(child.is_file() for child in children):
        return False
    uids = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for child in children:
            uid = _dicom_series_uid(child)
            if uid is None:
                return False
            uids.add(uid)
    return len(uids) == 1


@dataclass
class _PlannedCase:
    case_id: str
    display: str
    images: dict = field(default_factory=dict)  # (role, index) → Path
    metadata_path: Path | None = None


def scan_dataset(root, *, root_name=None):
    """Read every case under `root` (a folder, or a single image file) without touching the database.

    Case layout: each top-level folder is a case, holding input (or input_0, input_1, …),
    reference and label images and an optional metadata.json. Otherwise the flat layout:
    each image file or DICOM series folder is a case with one input, named by its stem.
    A folder holding one series, or a single file, is one case. A lone wrapping folder
    (how zipping a folder often comes out) is looked through.

    Raises DatasetImportError listing every problem found.
    """
    root = Path(root)
    base = root
    root_name = root_name or root.name
    errors = []

    def display(path):
        return root_name if path == base else path.relative_to(base).as_posix()

    if not root.exists():
        raise DatasetImportError([ImageImportError(root_name, "not found")])
    planned = _plan_cases(root, display, errors)
    cases = _read_cases(planned, display, errors)
    seen = {}
    for plan in planned:
        if plan.case_id in seen:
            errors.append(
                ImageImportError(
                    plan.display, f"case id '{plan.case_id}' is also used by '{seen[plan.case_id]}': rename one"
                )
            )
        seen.setdefault(plan.case_id, plan.display)
    if errors:
        raise DatasetImportError(errors)
    if not cases:
        raise DatasetImportError([ImageImportError(root_name, "no images found")])
    return cases


def _plan_cases(root, display, errors):
    if root.is_file():
        return [_PlannedCase(split_name(root.name)[0], display(root), {("input", 0): root})]
    while True:
        entries = _visible_children(root)
        lone = entries[0] if len(entries) == 1 else None
        if lone is None or not lone.is_dir() or _is_case_folder(lone) or _is_series_folder(lone):
            break
        root = lone
    if _is_series_folder(root) and not _is_case_folder(root):
        case_id = display(root).rsplit("/", 1)[-1]
        return [_PlannedCase(case_id, display(root), {("input", 0): root})]
    if any(entry.is_dir() and _is_case_folder(entry) for entry in entries):
        planned = []
        for entry in entries:
            if entry.is_dir():
                planned.append(_plan_case_folder(entry, display, errors))
            else:
                errors.append(
                    ImageImportError(
                        display(entry), "file outside the case folders: put each case's images in a folder named by it"
                    )
                )
        return planned
    planned = []
    for entry in entries:
        case_id = entry.name if entry.is_dir() else split_name(entry.name)[0]
        planned.append(_PlannedCase(case_id, display(entry), {("input", 0): entry}))
    return planned


def _plan_case_folder(folder, display, errors):
    plan = _PlannedCase(folder.name, display(folder))
    for child in _visible_children(folder):
        if child.name.lower() == METADATA_FILE and child.is_file():
            plan.metadata_path = child
            continue
        key = role_of(child)
        if key is None:
            errors.append(
                ImageImportError(
                    display(child),
                    f"unexpected entry in case '{plan.case_id}': name images input (or input_0, input_1, …), "
                    "reference or label",
                )
            )
        elif key in plan.images:
            errors.append(
                ImageImportError(
                    display(child),
                    f"case '{plan.case_id}' has two entries for {_image_label(*key)}: "
                    f"'{plan.images[key].name}' and '{child.name}'",
                )
            )
        else:
            plan.images[key] = child
    input_indices = sorted(index for role, index in plan.images if role == "input")
    if not input_indices:
        errors.append(ImageImportError(plan.display, f"case '{plan.case_id}' has no input image (name it input.<ext>)"))
    elif input_indices != list(range(len(input_indices))):
        found = ", ".join(f"input_{index}" for index in input_indices)
        errors.append(
            ImageImportError(
                plan.display, f"case '{plan.case_id}': number inputs input_0, input_1, … without gaps (found {found})"
            )
        )
    return plan


def _image_label(role, index):
    return f"input_{index}" if role == "input" else role


def _read_cases(planned, display, errors):
    cases = []
    for plan in planned:
        if not plan.case_id or len(plan.case_id) > MAX_CASE_ID_LENGTH:
            errors.append(ImageImportError(plan.display, f"case id must be 1 to {MAX_CASE_ID_LENGTH} characters"))
        images = []
        for (role, index), path in sorted(plan.images.items(), key=lambda item: (ROLE_ORDER[item[0][0]], item[0][1])):
            try:
                image = read_image(path, display(path))
            except DatasetImportError as error:
                errors.extend(error.errors)
                continue
            except ImageImportError as error:
                errors.append(error)
                continue
            images.append(ImportedCaseImage(role, index, image, path))
        metadata = _read_metadata(plan, display, errors)
        if len(images) == len(plan.images) and _check_case(plan, images, display, errors):
            cases.append(ImportedCase(plan.case_id, images, metadata))
    return cases


def _read_metadata(plan, display, errors):
    if plan.metadata_path is None:
        return {}
    try:
        metadata = json.loads(plan.metadata_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        errors.append(ImageImportError(display(plan.metadata_path), f"not valid JSON: {error}"))
        return {}
    if not isinstance(metadata, dict):
        errors.append(ImageImportError(display(plan.metadata_path), "must hold a JSON object ({...})"))
        return {}
    return metadata


def _check_case(plan, images, display, errors):
    ok = True
    inputs = [item for item in images if item.role == "input"]
    if not inputs:
        return False
    expected = inputs[0].image.spatial_shape
    for item in images[1:]:
        shape = item.image.spatial_shape
        if shape != expected:
            errors.append(
                ImageImportError(
                    display(item.original_path),
                    f"case '{plan.case_id}': {_image_label(item.role, item.index)} shape {shape} "
                    f"does not match input shape {expected}",
                )
            )
            ok = False
        if item.role == "label":
            array = item.image.array
            fractional = array[array != np.round(array)]
            if fractional.size:
                errors.append(
                    ImageImportError(
                        display(item.original_path),
                        f"case '{plan.case_id}': label has non-integer values (e.g. {float(fractional[0]):g}); "
                        "a label mask holds class numbers",
                    )
                )
                ok = False
    return ok


def zip_folder(folder, zip_path):
    """Zip the visible files of `folder` (a DICOM series kept as the original upload)."""
    folder, zip_path = Path(folder), Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _visible_files(folder):
            with open(path, "rb") as source, archive.open(path.relative_to(folder).as_posix(), "w") as sink:
                shutil.copyfileobj(source, sink, COPY_CHUNK_BYTES)
    return zip_path
