"""Importing a dataset: a zip archive or folder of medical images becomes Dataset, Case and CaseImage rows.

Everything is read and checked before the first database write, so a user sees every
problem of an upload at once; the writes then happen in one transaction, and files
already stored are deleted when it rolls back.
"""

import logging
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from core.errors import InvalidInput

from .. import importers
from ..importers import ImageImportError, Limits, safe_extract_zip, scan_dataset, split_name, zip_folder
from ..models import Case, CaseImage, Dataset
from ..storage import UploadTooLarge, content_hash, copy_upload, save_array

__all__ = ["DatasetImportError", "import_dataset", "import_limits"]

log = logging.getLogger(__name__)


class DatasetImportError(InvalidInput):
    """The upload was refused: every problem found (`errors`, one message each); nothing was stored."""

    def __init__(self, problems):
        super().__init__("The dataset was not imported; nothing was stored.", errors=[str(p) for p in problems])

    def __str__(self):
        return "\n".join([self.detail, *(f"- {error}" for error in self.errors)])


def import_limits():
    """The importers' limits from settings, the time budget running from now."""
    return Limits(
        max_image_voxels=settings.MEDGEN_MAX_IMAGE_VOXELS,
        max_decompressed_bytes=settings.MEDGEN_MAX_DECOMPRESSED_BYTES,
        max_import_bytes=settings.MEDGEN_MAX_IMPORT_BYTES,
        seconds=settings.MEDGEN_IMPORT_SECONDS,
    ).started()


def import_dataset(
    name: str,
    source,
    *,
    description: str = "",
    source_label: str = "",
    is_public: bool = False,
    user=None,
    progress=None,
) -> Dataset:
    """Import `source` (a path to a zip or folder, or an uploaded file / file object) as dataset `name`.

    All or nothing: raises DatasetImportError listing every problem, leaving no rows and no files.
    `progress(done, total, phase)`, when given, is called once every file is read and checked (step 1 of 2:
    reading; step 2, storing, happens in one transaction, so nothing outside it could see finer steps).
    """
    try:
        return _import(name, source, description, source_label, is_public, user, progress or _no_progress)
    except importers.DatasetImportError as exc:
        raise DatasetImportError(exc.errors) from None


def _no_progress(done, total, phase):
    pass


def _import(name, source, description, source_label, is_public, user, progress):
    name = (name or "").strip()
    if not name:
        raise DatasetImportError([ImageImportError("", "the dataset needs a name")])
    if Dataset.objects.filter(name=name).exists():
        raise _duplicate_name(name)
    with tempfile.TemporaryDirectory(prefix="medgen-dataset-") as workdir:
        workdir = Path(workdir)
        path = _local_path(source, workdir)
        limits = import_limits()
        root, root_name = _unpack(path, workdir, limits)
        cases = scan_dataset(root, root_name=root_name, limits=limits)
        progress(1, 2, f"read and checked {len(cases)} case(s); storing them")
        source_label = source_label or path.name
        dataset = _store(name, cases, workdir, description, source_label, is_public, user)
    log.info("Imported dataset %r (%d cases) from %s", name, len(cases), source_label)
    return dataset


def _duplicate_name(name):
    return DatasetImportError([ImageImportError("", f"a dataset named '{name}' already exists: choose another name")])


def _local_path(source, workdir):
    """A path on local disk: `source` itself, or a copy of an upload under its own name."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise DatasetImportError([ImageImportError(path.name, "not found")])
        return path
    filename = Path(getattr(source, "name", "") or "upload.zip").name
    path = workdir / "upload" / filename
    path.parent.mkdir()
    try:
        copy_upload(source, path, settings.MEDGEN_MAX_UPLOAD_BYTES)
    except UploadTooLarge as exc:
        raise DatasetImportError([ImageImportError(filename, str(exc))]) from None
    return path


def _is_archive(path):
    # An NPZ is a zip too, but it is one image.
    if path.suffix.lower() == ".npz":
        return False
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def _unpack(path, workdir, limits):
    """The folder (or single file) to scan, and the name the user knows it by."""
    if path.is_dir() or not _is_archive(path):
        return path, path.name
    extracted = workdir / "extracted"
    try:
        safe_extract_zip(
            path,
            extracted,
            settings.MEDGEN_MAX_ARCHIVE_BYTES,
            settings.MEDGEN_MAX_ARCHIVE_ENTRIES,
            display_name=path.name,
            limits=limits,
        )
    except ImageImportError as error:
        raise DatasetImportError([error]) from error
    return extracted, split_name(path.name)[0]


def _store(name, cases, workdir, description, source, is_public, user):
    written = []  # storage names to delete if anything fails
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name, description=description, source=source, is_public=is_public, created_by=user
            )
            for imported in cases:
                case = Case.objects.create(dataset=dataset, case_id=imported.case_id, metadata=imported.metadata)
                for item in imported.images:
                    _store_image(case, item, workdir, written)
    except IntegrityError as error:
        _delete_files(written)
        if Dataset.objects.filter(name=name).exists():  # created concurrently since the first check
            raise _duplicate_name(name) from error
        raise
    except BaseException:
        _delete_files(written)
        raise
    return dataset


def _store_image(case, item, workdir, written):
    image = item.image
    array = image.array
    case_image = CaseImage(
        case=case,
        role=item.role,
        index=item.index,
        original_name=image.original_name,
        source_format=image.source_format,
        shape=list(array.shape),
        spacing=list(image.spacing),
        direction=list(image.direction),
        origin=list(image.origin),
        intensity_min=float(array.min()),
        intensity_max=float(array.max()),
        content_sha256=content_hash(array),
    )
    stem = f"{item.role}_{item.index}"
    # Record the intended name first: a write that fails half way still leaves a file behind.
    written.append(case_image.array.field.generate_filename(case_image, f"{stem}.npy"))
    written.append(save_array(case_image.array, f"{stem}.npy", array))
    if item.original_path is not None:
        _store_original(case_image, item.original_path, f"original_{stem}", workdir, written)
    case_image.save()


def _store_original(case_image, path, stem, workdir, written):
    """Keep the upload as it came: the file itself, or a zip of a DICOM series folder."""
    series_zip = None
    if path.is_dir():
        path = series_zip = zip_folder(path, workdir / f"series-{case_image.case_id}-{stem}.zip")
        filename = f"{stem}.zip"
    else:
        filename = stem + split_name(path.name)[1].lower()
    written.append(case_image.original.field.generate_filename(case_image, filename))
    with open(path, "rb") as handle:
        case_image.original.save(filename, File(handle), save=False)
    written.append(case_image.original.name)
    if series_zip is not None:
        series_zip.unlink()


def _delete_files(names):
    for storage_name in dict.fromkeys(names):
        try:
            if default_storage.exists(storage_name):
                default_storage.delete(storage_name)
        except Exception:  # cleanup must not hide the original error
            log.exception("Could not delete %s after a failed dataset import", storage_name)
