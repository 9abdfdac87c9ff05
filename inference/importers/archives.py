"""Zip archives: safe extraction of an upload, and zipping a DICOM series folder to keep it as uploaded."""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path

from .base import ArchiveError, visible_files

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


def zip_folder(folder, zip_path):
    """Zip the visible files of `folder` (a DICOM series kept as the original upload)."""
    folder, zip_path = Path(folder), Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in visible_files(folder):
            with open(path, "rb") as source, archive.open(path.relative_to(folder).as_posix(), "w") as sink:
                shutil.copyfileobj(source, sink, COPY_CHUNK_BYTES)
    return zip_path
