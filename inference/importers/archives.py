"""Zip archives: safe extraction of an upload, and zipping a DICOM series folder to keep it as uploaded."""

from __future__ import annotations

import re
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .base import DEFAULT_LIMITS, ArchiveError, ImportStopped, describe, visible_files

COPY_CHUNK_BYTES = 1024 * 1024
# A central directory record is 46 bytes and a name; past this much per allowed entry the
# directory is not what the end record claims, and parsing it would cost memory for nothing.
MAX_DIRECTORY_BYTES_PER_ENTRY = 1024
# The end of central directory record, and zip64's locator and record.
EOCD_SIGNATURE, EOCD_SIZE, MAX_ZIP_COMMENT = b"PK\x05\x06", 22, 0xFFFF
ZIP64_LOCATOR_SIGNATURE, ZIP64_LOCATOR_SIZE = b"PK\x06\x07", 20
ZIP64_EOCD_SIGNATURE, ZIP64_EOCD_SIZE = b"PK\x06\x06", 56


def safe_extract_zip(zip_path, dest_dir, max_bytes, max_entries, *, display_name=None, limits=None):
    """Extract a zip archive into `dest_dir`, refusing anything that could escape it or explode.

    The entry count is read from the archive's end record first, so an archive of too many
    entries is refused before its directory is even parsed. Checks every entry before writing
    anything (names, sizes: `max_bytes` in all, `limits.max_decompressed_bytes` each, a name
    used both as a file and as a folder), then counts the bytes actually written (the sizes
    in the archive are the uploader's claim) and stops at the time budget of `limits`.
    Returns the extracted files.
    """
    limits = (limits or DEFAULT_LIMITS).started()
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    label = display_name or zip_path.name
    try:
        declared_count, directory_bytes = _end_record(zip_path)
        if declared_count > max_entries:
            raise ArchiveError(f"archive has {declared_count} entries; the limit is {max_entries}", label)
        if directory_bytes > max(max_entries, 1) * MAX_DIRECTORY_BYTES_PER_ENTRY:
            raise ArchiveError(f"archive's directory is {directory_bytes:,} bytes, too large for its entries", label)
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"not a readable zip archive ({_reason(error)})", label) from error
    with archive:
        entries = archive.infolist()
        if len(entries) > max_entries:
            raise ArchiveError(f"archive has {len(entries)} entries; the limit is {max_entries}", label)
        declared = sum(entry.file_size for entry in entries)
        if declared > max_bytes:
            raise ArchiveError(f"archive would expand to {declared} bytes; the limit is {max_bytes}", label)
        targets = _check_entries(entries, label, limits)
        root = dest_dir.resolve()
        root.mkdir(parents=True, exist_ok=True)
        written_total, extracted, folders = 0, [], {root}
        for entry, parts in zip(entries, targets, strict=True):
            try:
                limits.check_time()
            except ImportStopped as stopped:
                raise ArchiveError(f"extraction stopped: {stopped.message}", label) from None
            # Names are checked (no '..', not absolute) and nothing extracted is a link, so the
            # target is inside root without asking the file system.
            target = root.joinpath(*parts)
            folder = target if entry.is_dir() else target.parent
            try:
                if folder not in folders:
                    folder.mkdir(parents=True, exist_ok=True)
                    folders.update([folder, *folder.parents])
                if entry.is_dir():
                    continue
                written = 0
                with archive.open(entry) as source, open(target, "wb") as sink:
                    while chunk := source.read(COPY_CHUNK_BYTES):
                        written += len(chunk)
                        written_total += len(chunk)
                        if written_total > max_bytes:
                            raise ArchiveError(f"archive expands past the limit of {max_bytes} bytes", label)
                        if written > entry.file_size:
                            raise ArchiveError(f"entry '{entry.filename}' is larger than the archive declares", label)
                        sink.write(chunk)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as error:
                raise ArchiveError(f"entry '{entry.filename}' is corrupt ({_reason(error)})", label) from error
            extracted.append(target)
    return extracted


def _reason(error):
    """Why a read or write failed, without the server path an OSError carries."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return describe(error)


def _end_record(path):
    """(entries, directory bytes) as the archive's end record declares them (zip64 too).

    Reads only the archive's tail; (0, 0) when there is no end record (zipfile then says the
    archive is not one).
    """
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - (EOCD_SIZE + MAX_ZIP_COMMENT + ZIP64_LOCATOR_SIZE)))
        tail = handle.read()
        at = tail.rfind(EOCD_SIGNATURE)
        if at < 0 or len(tail) - at < EOCD_SIZE:
            return 0, 0
        entries, directory_bytes = struct.unpack("<HI", tail[at + 10 : at + 16])
        locator = tail[at - ZIP64_LOCATOR_SIZE : at] if at >= ZIP64_LOCATOR_SIZE else b""
        if locator[:4] == ZIP64_LOCATOR_SIGNATURE and (entries == 0xFFFF or directory_bytes == 0xFFFFFFFF):
            handle.seek(struct.unpack("<Q", locator[8:16])[0])
            record = handle.read(ZIP64_EOCD_SIZE)
            if record[:4] == ZIP64_EOCD_SIGNATURE and len(record) == ZIP64_EOCD_SIZE:
                entries, directory_bytes = struct.unpack("<QQ", record[32:48])
    return entries, directory_bytes


def _check_entries(entries, label, limits):
    """Each entry's path parts under the extraction folder, once every entry has been checked."""
    seen, files, folders, targets = set(), {}, {}, []
    for entry in entries:
        _check_entry(entry, label)
        if entry.file_size > limits.max_decompressed_bytes:
            raise ArchiveError(
                f"entry '{entry.filename}' would expand to {entry.file_size:,} bytes; "
                f"the limit is {limits.max_decompressed_bytes:,} per file",
                label,
            )
        parts = PurePosixPath(entry.filename).parts  # "a//b" and "a/./b" are both a/b
        key = "/".join(parts)
        if key in seen:
            raise ArchiveError(f"entry '{entry.filename}' appears twice", label)
        seen.add(key)
        if entry.is_dir():
            folders.setdefault(key, entry.filename)
        else:
            files[key] = entry.filename
        for depth in range(1, len(parts)):
            folders.setdefault("/".join(parts[:depth]), entry.filename)
        targets.append(parts)
    for key, filename in files.items():
        if key in folders:
            raise ArchiveError(f"entry '{filename}' is both a file and a folder (holding '{folders[key]}')", label)
    return targets


def _check_entry(entry, label):
    name = entry.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"entry '{name}' has an absolute path", label)
    if ".." in re.split(r"[\\/]", name):
        raise ArchiveError(f"entry '{name}' points outside the archive folder ('..')", label)
    if not PurePosixPath(name).parts:
        raise ArchiveError(f"entry '{name}' has no name", label)
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
