"""Dataset layouts: which files of an upload make which cases, read and checked together.

See ``scan_dataset`` for the case and flat layouts.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import (
    DEFAULT_LIMITS,
    DatasetImportError,
    ImageImportError,
    ImportedCase,
    ImportedCaseImage,
    ImportStopped,
    LimitExceeded,
    Problems,
    parse_dicom,
    split_name,
    visible_children,
)
from .dicom import shared_positions
from .reading import read_image

ROLE_ORDER = {"input": 0, "reference": 1, "label": 2, "mask": 3}
METADATA_FILE = "metadata.json"
MAX_CASE_ID_LENGTH = 200


def role_of(entry):
    """(role, index) for an entry named input, input_N, reference, label or mask; None otherwise."""
    stem = entry.name if entry.is_dir() else split_name(entry.name)[0]
    match = re.fullmatch(r"(input)(?:_(\d+))?|(reference|label|mask)", stem.lower())
    if not match:
        return None
    if match.group(1):
        return "input", int(match.group(2) or 0)
    return match.group(3), 0


def _is_case_folder(folder):
    return any(child.name.lower() == METADATA_FILE or role_of(child) for child in visible_children(folder))


def _dicom_header(path, limits):
    """(SeriesInstanceUID, position or None, orientation or None) of a DICOM file; None if it is not one."""
    try:
        dataset = parse_dicom(path, header_only=True, limits=limits)
    except LimitExceeded:  # reading it as an image says so
        return None
    if dataset is None:
        return None

    def floats(keyword, count):
        try:
            values = [float(value) for value in dataset.get(keyword) or []]
        except (TypeError, ValueError):
            return None
        return values if len(values) == count else None

    uid = str(dataset.get("SeriesInstanceUID", ""))
    return uid, floats("ImagePositionPatient", 3), floats("ImageOrientationPatient", 6)


def _is_series_folder(folder, limits):
    """A folder of several DICOM files of one series that stack into one volume, and nothing else.

    Files of one series all at one position (separate 2D images, time points) do not stack: such a
    folder is a flat layout, one case per file, as a folder of other images is."""
    children = visible_children(folder)
    if len(children) < 2 or not all(child.is_file() for child in children):
        return False
    headers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for child in children:
            limits.check_time()
            header = _dicom_header(child, limits)
            if header is None:
                return False
            headers.append(header)
    if len({uid for uid, _, _ in headers}) != 1:
        return False
    positions = [position for _, position, _ in headers]
    orientation = headers[0][2]
    if orientation is None or None in positions:
        return True  # ordered by InstanceNumber when read
    normal = np.cross(orientation[:3], orientation[3:])
    groups = shared_positions(positions, normal, list(range(len(children))))
    # All at one position: separate images. Only some together: a volume with a problem its reading names.
    return not (len(groups) == 1 and len(groups[0]) == len(children))


@dataclass
class _PlannedCase:
    case_id: str
    display: str
    images: dict = field(default_factory=dict)  # (role, index) → Path
    metadata_path: Path | None = None


def scan_dataset(root, *, root_name=None, limits=None):
    """Read every case under `root` (a folder, or a single image file) without touching the database.

    Case layout: each top-level folder is a case, holding input (or input_0, input_1, …),
    reference and label images, a mask (the ROI or body mask a task may score inside: boolean, or
    non-negative with > 0 inside) and an optional metadata.json. Otherwise the flat layout:
    each image file or DICOM series folder is a case with one input, named by its stem.
    A folder holding one series, or a single file, is one case. A lone wrapping folder
    (how zipping a folder often comes out) is looked through.

    Raises DatasetImportError listing every problem found, up to `limits.max_errors`: past
    that, and past the time budget or the decoded bytes of `limits`, no further image is read.
    """
    limits = (limits or DEFAULT_LIMITS).started()
    root = Path(root)
    base = root
    root_name = root_name or root.name
    errors = Problems(limits.max_errors)

    def display(path):
        return root_name if path == base else path.relative_to(base).as_posix()

    if not root.exists():
        raise DatasetImportError([ImageImportError(root_name, "not found")])
    try:
        planned = _plan_cases(root, display, errors, limits)
    except ImportStopped as stopped:
        errors.append(stopped)
        raise errors.error("no image was read") from None
    cases, note = _read_cases(planned, display, errors, limits)
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
        raise errors.error(note)
    if not cases:
        raise DatasetImportError([ImageImportError(root_name, "no images found")])
    return cases


def _plan_cases(root, display, errors, limits):
    if root.is_file():
        return [_PlannedCase(split_name(root.name)[0], display(root), {("input", 0): root})]
    while True:
        entries = visible_children(root)
        lone = entries[0] if len(entries) == 1 else None
        if lone is None or not lone.is_dir() or _is_case_folder(lone) or _is_series_folder(lone, limits):
            break
        root = lone
    if _is_series_folder(root, limits) and not _is_case_folder(root):
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
    for child in visible_children(folder):
        if child.name.lower() == METADATA_FILE and child.is_file():
            plan.metadata_path = child
            continue
        key = role_of(child)
        if key is None:
            errors.append(
                ImageImportError(
                    display(child),
                    f"unexpected entry in case '{plan.case_id}': name images input (or input_0, input_1, …), "
                    "reference, label or mask",
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


def _read_cases(planned, display, errors, limits):
    """The cases read, and a note when reading stopped early (at a limit) and why."""
    cases, held = [], 0
    unread = sum(len(plan.images) for plan in planned)
    for plan in planned:
        if not plan.case_id or len(plan.case_id) > MAX_CASE_ID_LENGTH:
            errors.append(ImageImportError(plan.display, f"case id must be 1 to {MAX_CASE_ID_LENGTH} characters"))
        images = []
        for (role, index), path in sorted(plan.images.items(), key=lambda item: (ROLE_ORDER[item[0][0]], item[0][1])):
            if errors.full:
                return cases, f"the scan stopped after {errors.limit} problems: {_not_read(unread)}"
            try:
                image = read_image(path, display(path), limits=limits)
            except ImportStopped as stopped:
                errors.append(stopped)
                return cases, f"the scan stopped there: {_not_read(unread)}"
            except ImageImportError as error:  # a DatasetImportError (a series) adds each of its problems
                errors.append(error)
                continue
            finally:
                unread -= 1
            images.append(ImportedCaseImage(role, index, image, path))
            held += image.array.nbytes
            if held > limits.max_import_bytes:
                errors.append(
                    ImportStopped(
                        "",
                        f"the images read so far take {held:,} bytes decoded; "
                        f"the limit is {limits.max_import_bytes:,} per import",
                    )
                )
                return cases, f"the scan stopped there: {_not_read(unread)}"
        metadata = _read_metadata(plan, display, errors, limits)
        if len(images) == len(plan.images) and _check_case(plan, images, display, errors):
            cases.append(ImportedCase(plan.case_id, images, metadata))
    return cases, ""


def _not_read(count):
    return f"{count:,} more image{'s were' if count != 1 else ' was'} not read"


def _read_metadata(plan, display, errors, limits):
    if plan.metadata_path is None:
        return {}
    name = display(plan.metadata_path)
    size = plan.metadata_path.stat().st_size
    if size > limits.max_metadata_bytes:
        errors.append(LimitExceeded(name, f"is {size:,} bytes; the limit is {limits.max_metadata_bytes:,}"))
        return {}
    try:
        metadata = json.loads(plan.metadata_path.read_text(encoding="utf-8"))
    except RecursionError:
        errors.append(LimitExceeded(name, f"nests too deeply: at most {limits.max_metadata_depth} levels"))
        return {}
    except (ValueError, UnicodeDecodeError) as error:
        errors.append(ImageImportError(name, f"not valid JSON: {error}"))
        return {}
    if not isinstance(metadata, dict):
        errors.append(ImageImportError(name, "must hold a JSON object ({...})"))
        return {}
    if _depth(metadata) > limits.max_metadata_depth:
        errors.append(LimitExceeded(name, f"nests too deeply: at most {limits.max_metadata_depth} levels"))
        return {}
    return metadata


def _depth(value):
    """How deeply objects and lists nest in a JSON value (1 for a flat object); no recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return deepest


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
        if item.role == "mask" and (item.image.array < 0).any():
            errors.append(
                ImageImportError(
                    display(item.original_path),
                    f"case '{plan.case_id}': mask has negative values; a ROI/body mask is 0 outside, > 0 inside",
                )
            )
            ok = False
    return ok
