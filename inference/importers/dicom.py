"""DICOM files and series folders, read with pydicom.

Stored values go through the modality LUT or RescaleSlope/RescaleIntercept (RT Dose:
DoseGridScaling too), so CT is in HU. A single-frame file is 2D ``(1, H, W)``; a
multi-frame file or a folder holding one series is a volume ``(1, D, H, W)``. Slices
are ordered along the slice normal (ImageOrientationPatient) by ImagePositionPatient,
else by InstanceNumber. Colour (RGB, YBR, palette) becomes 3 channels, ``(3, H, W)`` or
``(3, D, H, W)``. A file without the "DICM" header loads when pydicom parses image
attributes from it; its transfer syntax is then the encoding it parsed with.

Rows × Columns × frames × channels, and the bytes decoding takes, are checked against
`Limits` before the pixel data is decoded (a series: its slices together, as one image); a
deflated data set is inflated chunk by chunk and refused past the limit before pydicom
inflates it.
"""

from __future__ import annotations

import re
from math import prod

import numpy as np

from .base import (
    ImageImportError,
    ImportedImage,
    LimitExceeded,
    Problems,
    as_float32,
    describe,
    parse_dicom,
    visible_files,
)

# pydicom is imported where it is used: it is heavy and only needed when an upload holds DICOM.


def read_dicom_file(path, name, limits):
    dataset = _load_dicom(path, name, limits)
    values = _dicom_values(dataset, name, limits)  # (C, F, H, W)
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


def read_dicom_folder(folder, name, limits):
    files = sorted(visible_files(folder))
    if not files:
        raise ImageImportError(name, "empty folder: expected the DICOM files of one series")
    if len(files) == 1:
        return read_dicom_file(files[0], f"{name}/{files[0].relative_to(folder).as_posix()}", limits)
    problems, slices, voxels, note = Problems(limits.max_errors), [], 0, ""
    for number, path in enumerate(files):
        if problems.full:
            note = f"reading the series stopped there: files not read: {len(files) - number:,}"
            break
        limits.check_time()
        display = f"{name}/{path.relative_to(folder).as_posix()}"
        try:
            dataset = _load_dicom(path, display, limits)
            shape, _ = _pixel_shape(dataset, display)
        except ImageImportError as error:
            problems.append(error)
            continue
        # The slices together are one image: refuse the series before decoding past its limit.
        voxels += prod(shape)
        if voxels > limits.max_image_voxels:
            raise LimitExceeded(
                name,
                f"the first {number + 1} files of the series have {voxels:,} voxels; "
                f"the limit is {limits.max_image_voxels:,} per image",
            )
        try:
            values = _dicom_values(dataset, display, limits)
            if values.shape[1] != 1:
                raise ImageImportError(display, "a multi-frame file cannot be part of a series of slices")
            slices.append((display, dataset, values[:, 0]))
        except ImageImportError as error:
            problems.append(error)
    if problems:
        raise problems.listed[0] if len(problems) == 1 and not note else problems.error(note)
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
        order, slice_spacing = _order_along_normal(
            np.asarray(positions, dtype=np.float64), normal, name, names=[display for display, _, _ in slices]
        )
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


def shared_positions(positions, normal, names):
    """Groups of `names` whose positions coincide along the slice normal (within 1e-4 mm), in order."""
    distances = np.asarray(positions, dtype=np.float64) @ np.asarray(normal, dtype=np.float64)
    order = np.argsort(distances, kind="stable")
    groups, current = [], [order[0]] if len(order) else []
    for previous, index in zip(order, order[1:], strict=False):
        if distances[index] - distances[previous] < 1e-4:
            current.append(index)
            continue
        if len(current) > 1:
            groups.append(current)
        current = [index]
    if len(current) > 1:
        groups.append(current)
    return [[names[index] for index in group] for group in groups]


def _order_along_normal(positions, normal, name, names=None):
    """Slice order and spacing from positions projected on the slice normal; `names` (one per position,
    e.g. a series' file names) are named when slices share a position."""
    distances = np.asarray(positions, dtype=np.float64) @ normal
    order = np.argsort(distances, kind="stable")
    gaps = np.diff(distances[order])
    if not len(gaps):
        return order, 1.0
    if np.any(gaps < 1e-4):
        labels = names or [f"frame {number + 1}" for number in range(len(distances))]
        groups = shared_positions(positions, normal, labels)
        listed = "; ".join(_listed(group) for group in groups[:3]) + ("; …" if len(groups) > 3 else "")
        raise ImageImportError(
            name,
            f"several slices share a position ({listed}): one folder must hold one volume "
            "(not time points, echoes or separate images; for separate 2D images give each its own case)",
        )
    spacing = float(np.median(gaps))
    # Tolerate rounding in the stored positions but not a missing slice.
    if np.max(np.abs(gaps - spacing)) > max(0.05 * spacing, 0.01):
        raise ImageImportError(
            name, f"slice spacing is not uniform ({gaps.min():.4g} to {gaps.max():.4g} mm): are slices missing?"
        )
    return order, spacing


def _listed(names, limit=4):
    shown = ", ".join(names[:limit])
    return f"{shown}, … ({len(names)} files)" if len(names) > limit else shown


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


def _load_dicom(path, name, limits):
    try:
        dataset = parse_dicom(path, header_only=False, limits=limits)
    except LimitExceeded as error:
        raise LimitExceeded(name, error.message) from error
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


def _pixel_shape(dataset, name):
    """The canonical shape, (C, H, W) or (C, F, H, W), and the bytes pydicom decodes, from the header.

    (0, …) when attributes are missing: decoding then says which.
    """
    rows, columns, frames, samples, bits = (
        _dicom_int(dataset, keyword, name) or 0
        for keyword in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated")
    )
    frames = frames or 1
    palette = str(dataset.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR"
    channels = 3 if palette else samples
    shape = (channels, frames, rows, columns) if frames > 1 else (channels, rows, columns)
    return shape, rows * columns * frames * samples * -(-bits // 8)


def _decode_pixels(dataset, name, limits):
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
    shape, decoded = _pixel_shape(dataset, name)
    limits.check_voxels(name, shape)
    limits.check_decompressed(name, decoded, what="decoded pixel data takes")
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
        raise ImageImportError(name, f"pixel data cannot be decoded: {describe(error)}") from error
    except RuntimeError as error:  # every installed plugin refused (e.g. 12-bit JPEG and Pillow)
        detail = describe(error).splitlines()[-1].strip()
        raise ImageImportError(
            name, f"transfer syntax {_syntax_label(syntax)} cannot be decoded here ({detail})"
        ) from error


def _dicom_values(dataset, name, limits):
    """Modality values (HU for CT) as float32 (C, F, H, W)."""
    pixels = _decode_pixels(dataset, name, limits)
    frames = _dicom_int(dataset, "NumberOfFrames", name) or 1
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        pixels = apply_color_lut(pixels, dataset)
    colour = pixels.ndim == (4 if frames > 1 else 3)
    if frames == 1:
        pixels = pixels[np.newaxis]
    if colour:  # (F, H, W, 3); no modality LUT for colour images
        return as_float32(np.moveaxis(pixels, -1, 0), name)
    return _apply_rescale(pixels, dataset, name)[np.newaxis]


def _apply_rescale(pixels, dataset, name):
    from pydicom.pixels import apply_modality_lut

    if dataset.get("ModalityLUTSequence"):
        return as_float32(apply_modality_lut(pixels, dataset), name)
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
    return as_float32(values, name)


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
