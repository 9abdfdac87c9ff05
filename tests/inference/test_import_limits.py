"""Limits on every input: bombs refused from their headers, within seconds, with the limit named and no server path.

The bombs are built in milliseconds (tests/inference/bombs.py); each test that could allocate
also measures the peak of Python-visible allocations (numpy reports its arrays to tracemalloc).
"""

import io
import json
import re
import struct
import time
import tracemalloc

import numpy as np
import pydicom
import pytest
from PIL import Image
from rest_framework.authtoken.models import Token

from core.models import JobStatus
from inference import importers
from inference.importers import (
    ArchiveError,
    DatasetImportError,
    ImageImportError,
    ImportStopped,
    LimitExceeded,
    Limits,
    read_image,
    safe_extract_zip,
    scan_dataset,
)
from inference.importers import base as importers_base
from inference.importers import layout as importers_layout
from inference.models import CaseOutput, Dataset
from inference.services.datasets import DatasetImportError as ImportRefused
from inference.services.datasets import import_dataset, import_limits
from inference.services.submissions import create_submission
from tests.support.factories import make_task
from tests.support.files import npy_bytes
from tests.support.jobs import run_job

from . import bombs
from .test_importers import PYDICOM_FILES, write_series

DEFAULT_VOXELS = f"{512**3:,}"
SMALL_ALLOCATION = 16 * 1024**2


class Refusal:
    """The error a read raised, how long it took and the most memory it allocated."""

    def __init__(self, read):
        tracemalloc.start()
        started = time.perf_counter()
        try:
            read()
        except ImageImportError as error:
            self.error = error
        else:
            raise AssertionError("the input was accepted")
        finally:
            self.seconds = time.perf_counter() - started
            self.peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    @property
    def message(self):
        return str(self.error)


@pytest.fixture
def fake_clock(monkeypatch):
    """time.monotonic as the importers see it, one second later at every look."""
    now = [1000.0]

    def monotonic():
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(importers_base.time, "monotonic", monotonic)
    return now


# --- NIfTI ----------------------------------------------------------------------------


def test_nifti_header_claiming_64_gib_is_refused_from_the_header_without_allocating(tmp_path):
    path = tmp_path / "claim.nii"
    path.write_bytes(bombs.nifti_header((2048, 2048, 4096)) + bytes(16))
    assert path.stat().st_size == 368
    refusal = Refusal(lambda: read_image(path))
    assert isinstance(refusal.error, LimitExceeded)
    assert refusal.message == (
        "claim.nii: NIfTI of shape (2048, 2048, 4096) has 17,179,869,184 voxels; "
        f"the limit is {DEFAULT_VOXELS} per image"
    )
    assert refusal.peak < SMALL_ALLOCATION and refusal.seconds < 1


def test_gzipped_nifti_bomb_past_the_voxel_limit_is_refused_before_decompressing(tmp_path):
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(bombs.gzip_bomb(bombs.nifti_header((1024, 1024, 1024), np.uint8), 1024**3))
    assert path.stat().st_size < 1_200_000  # 1 GiB of voxels
    refusal = Refusal(lambda: read_image(path))
    assert "NIfTI of shape (1024, 1024, 1024) has 1,073,741,824 voxels; the limit is" in refusal.message
    assert refusal.peak < SMALL_ALLOCATION and refusal.seconds < 1


def test_gzipped_nifti_declaring_more_than_the_decompressed_limit_is_refused(tmp_path):
    path = tmp_path / "big.nii.gz"
    path.write_bytes(bombs.gzip_bomb(bombs.nifti_header((128, 128, 128), np.uint8), 128**3))
    refusal = Refusal(lambda: read_image(path, limits=Limits(max_decompressed_bytes=1_000_000)))
    assert refusal.message == "big.nii.gz: the header declares 2,097,504 bytes; the limit is 1,000,000 per image"
    assert refusal.peak < SMALL_ALLOCATION


def test_nifti_extension_claiming_a_gigabyte_is_not_decompressed(tmp_path):
    # Before the limits nibabel read the extension's claimed size from the gzip stream: 16 s, 1.5 GB.
    header = bombs.nifti_header((4, 4, 4), vox_offset=368, extension=bombs.nifti_extension(1024**3))
    path = tmp_path / "ext.nii.gz"
    path.write_bytes(bombs.gzip_bomb(header, 1024**3))
    refusal = Refusal(lambda: read_image(path))
    assert refusal.message.startswith("ext.nii.gz: cannot be read as NIfTI")
    assert refusal.peak < SMALL_ALLOCATION and refusal.seconds < 1


def test_nifti_at_the_voxel_limit_is_read_and_one_voxel_more_is_refused(tmp_path):
    import nibabel

    limits = Limits(max_image_voxels=4 * 4 * 4)
    nibabel.save(nibabel.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), str(tmp_path / "ok.nii.gz"))
    assert read_image(tmp_path / "ok.nii.gz", limits=limits).array.shape == (1, 4, 4, 4)
    nibabel.save(nibabel.Nifti1Image(np.ones((4, 4, 5), np.float32), np.eye(4)), str(tmp_path / "big.nii"))
    with pytest.raises(LimitExceeded, match=r"NIfTI of shape \(4, 4, 5\) has 80 voxels; the limit is 64 per image"):
        read_image(tmp_path / "big.nii", limits=limits)


def test_truncated_gzipped_nifti_says_how_much_is_missing(tmp_path):
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(bombs.gzip_bomb(bombs.nifti_header((10, 10, 10)), 100))
    with pytest.raises(
        ImageImportError, match=r"data is truncated: the header declares 4,352 bytes, the file holds 452"
    ):
        read_image(path)


def test_many_volume_nifti_is_refused_from_its_header(tmp_path):
    path = tmp_path / "fmri.nii"
    path.write_bytes(bombs.nifti_header((64, 64, 32, 300)))  # no data at all: the header is enough
    with pytest.raises(ImageImportError, match="at most 4 volumes"):
        read_image(path)


# --- NPY and NPZ ----------------------------------------------------------------------


def test_npy_header_claiming_64_gib_is_refused_without_allocating(tmp_path):
    path = tmp_path / "claim.npy"
    path.write_bytes(bombs.npy_header((1, 2048, 2048, 4096)) + bytes(16))
    refusal = Refusal(lambda: read_image(path))
    assert refusal.message == (
        "claim.npy: array of shape (1, 2048, 2048, 4096) has 17,179,869,184 voxels; "
        f"the limit is {DEFAULT_VOXELS} per image"
    )
    assert refusal.peak < SMALL_ALLOCATION and refusal.seconds < 1


def test_npz_member_header_claiming_64_gib_is_refused_without_allocating(tmp_path):
    path = tmp_path / "claim.npz"
    path.write_bytes(bombs.zip_of({"image.npy": bombs.npy_header((1, 2048, 2048, 4096)) + bytes(16)}))
    refusal = Refusal(lambda: read_image(path))
    assert "claim.npz: array of shape (1, 2048, 2048, 4096) has 17,179,869,184 voxels" in refusal.message
    assert refusal.peak < SMALL_ALLOCATION


def test_npz_member_expanding_past_the_decompressed_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, image=np.zeros((1, 100, 100, 100), dtype=np.float64))  # 8 MB in 8 KB
    assert path.stat().st_size < 100_000
    refusal = Refusal(lambda: read_image(path, limits=Limits(max_decompressed_bytes=1_000_000)))
    assert (
        refusal.message == "zeros.npz: member 'image' would expand to 8,000,128 bytes; the limit is 1,000,000 per image"
    )
    assert refusal.peak < SMALL_ALLOCATION


def test_npz_of_zeros_past_the_voxel_limit_is_refused_from_the_member_header(tmp_path):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, image=np.zeros((1, 64, 64, 64), dtype=np.float32))
    with pytest.raises(
        LimitExceeded, match=r"array of shape \(1, 64, 64, 64\) has 262,144 voxels; the limit is 100,000"
    ):
        read_image(path, limits=Limits(max_image_voxels=100_000))


def test_npz_spacing_claiming_a_huge_array_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "spacing.npz"
    image = npy_bytes(np.ones((1, 3, 4), dtype=np.float32))
    path.write_bytes(bombs.zip_of({"image.npy": image, "spacing.npy": bombs.npy_header((10**9,), "<f8")}))
    refusal = Refusal(lambda: read_image(path))
    assert refusal.message == "spacing.npz: 'spacing' must be 2 positive numbers, one per spatial axis"
    assert refusal.peak < SMALL_ALLOCATION


def test_npz_member_that_is_not_an_npy_array_is_named(tmp_path):
    path = tmp_path / "odd.npz"
    path.write_bytes(bombs.zip_of({"image.npy": b"not numpy at all"}))
    with pytest.raises(ImageImportError, match="odd.npz: member 'image' is not an NPY array"):
        read_image(path)


# --- PNG and TIFF ---------------------------------------------------------------------


def test_png_declaring_more_pixels_than_the_voxel_limit_is_refused_before_decoding(tmp_path):
    # 144M pixels in 140 KB: under Pillow's own bomb limit, so before the limits it was decoded (576 MB).
    path = tmp_path / "bomb.png"
    path.write_bytes(bombs.png_bomb(12000, 12000))
    assert path.stat().st_size < 150_000
    refusal = Refusal(lambda: read_image(path))
    assert refusal.message == (
        f"bomb.png: image of shape (1, 12000, 12000) has 144,000,000 voxels; the limit is {DEFAULT_VOXELS} per image"
    )
    assert refusal.peak < SMALL_ALLOCATION and refusal.seconds < 1


def test_png_like_the_audits_is_refused_at_a_lower_voxel_limit(tmp_path):
    path = tmp_path / "audit.png"
    path.write_bytes(bombs.png_bomb(10000, 10000))  # 97 KB, 400 MB as float32
    assert path.stat().st_size < 100_000
    refusal = Refusal(lambda: read_image(path, limits=Limits(max_image_voxels=64 * 1024**2)))
    assert (
        "image of shape (1, 10000, 10000) has 100,000,000 voxels; the limit is 67,108,864 per image" in refusal.message
    )
    assert refusal.peak < SMALL_ALLOCATION


def test_png_past_pillows_own_bomb_limit_names_the_voxel_limit(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(bombs.png_header_only(40000, 40000))
    with pytest.raises(LimitExceeded) as caught:
        read_image(path)
    assert caught.value.message == f"the header declares 1,600,000,000 pixels; the limit is {DEFAULT_VOXELS} per image"


def test_png_decoded_size_is_limited(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((200, 200, 3), dtype=np.uint8)).save(path)
    with pytest.raises(LimitExceeded, match="decoded pixels take 160,000 bytes; the limit is 100,000 per image"):
        read_image(path, limits=Limits(max_decompressed_bytes=100_000))


def test_multi_page_tiff_is_refused_from_its_page_count(tmp_path):
    pages = [Image.fromarray(np.zeros((10, 10), dtype=np.uint8)) for _ in range(5)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(LimitExceeded, match=r"image of shape \(1, 5, 10, 10\) has 500 voxels; the limit is 400"):
        read_image(tmp_path / "stack.tif", limits=Limits(max_image_voxels=400))


def test_tiff_pages_of_growing_size_are_counted_before_each_is_decoded(tmp_path):
    sizes = [(2, 2), (2, 2), (30, 30)]
    pages = [Image.fromarray(np.zeros(size, dtype=np.uint8)) for size in sizes]
    pages[0].save(tmp_path / "grow.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(LimitExceeded, match="pages 1 to 3 have 908 voxels in all; the limit is 100 per image"):
        read_image(tmp_path / "grow.tif", limits=Limits(max_image_voxels=100))


# --- DICOM ----------------------------------------------------------------------------


def test_dicom_header_claiming_huge_frames_is_refused_before_decoding(tmp_path):
    path = tmp_path / "claim.dcm"
    path.write_bytes(bombs.rle_dicom_claim(65535, 65535, 64))
    refusal = Refusal(lambda: read_image(path))
    assert refusal.message == (
        "claim.dcm: image of shape (1, 64, 65535, 65535) has 274,869,518,400 voxels; "
        f"the limit is {DEFAULT_VOXELS} per image"
    )
    assert refusal.peak < SMALL_ALLOCATION and refusal.seconds < 1


def test_deflated_dicom_inflating_past_the_limit_is_refused(tmp_path):
    path = tmp_path / "deflated.dcm"
    path.write_bytes(bombs.deflated_dicom_bomb(64 * bombs.MIB))
    refusal = Refusal(lambda: read_image(path, limits=Limits(max_decompressed_bytes=8 * bombs.MIB)))
    assert isinstance(refusal.error, LimitExceeded)
    assert re.fullmatch(
        r"deflated.dcm: deflated data set inflates to at least [\d,]+ bytes; the limit is 8,388,608 per image",
        refusal.message,
    )
    assert refusal.peak < 4 * bombs.MIB  # inflated a MiB at a time, never whole


def test_deflated_dicom_within_the_limits_is_read(tmp_path):
    ds = bombs._mr_dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 8, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(64, dtype=np.uint16).tobytes()
    ds.file_meta = bombs._dicom_meta(pydicom.uid.DeflatedExplicitVRLittleEndian, ds)
    ds.save_as(tmp_path / "small.dcm", enforce_file_format=True)
    image = read_image(tmp_path / "small.dcm")
    np.testing.assert_array_equal(image.array[0], np.arange(64).reshape(8, 8))


def test_dicom_series_is_refused_when_its_slices_together_pass_the_voxel_limit(tmp_path):
    folder = write_series(
        tmp_path / "series", [np.zeros((4, 4), np.uint16)] * 3, positions=[(0, 0, k) for k in range(3)]
    )
    with pytest.raises(LimitExceeded, match="series: the first 3 files of the series have 48 voxels; the limit is 40"):
        read_image(folder, limits=Limits(max_image_voxels=40))


# --- Zip archives ---------------------------------------------------------------------


@pytest.mark.parametrize("entries", [["c1", "c1/input.npy"], ["c1/input.npy", "c1"]])
def test_zip_holding_a_file_and_a_folder_of_the_same_name_is_refused_before_extracting(tmp_path, entries):
    archive = tmp_path / "clash.zip"
    archive.write_bytes(bombs.zip_of({name: b"x" for name in entries}))
    with pytest.raises(ArchiveError) as caught:
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1000, max_entries=10)
    assert str(caught.value) == "clash.zip: entry 'c1' is both a file and a folder (holding 'c1/input.npy')"
    assert not (tmp_path / "out").exists()


def test_zip_entry_count_is_read_from_the_end_record_before_the_directory(tmp_path):
    archive = tmp_path / "many.zip"
    data = bytearray(bombs.zip_of({f"f{i}": b"" for i in range(6)}))
    directory = data.find(b"PK\x01\x02")
    data[directory : directory + 4] = b"XXXX"  # zipfile could no longer parse the directory
    archive.write_bytes(data)
    with pytest.raises(ArchiveError, match="many.zip: archive has 6 entries; the limit is 5"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1000, max_entries=5)


def test_zip64_entry_count_is_read_from_the_zip64_end_record(tmp_path):
    data = bytearray(bombs.zip_of({"f0": b""}))
    end = data.rfind(b"PK\x05\x06")
    directory_bytes, directory_offset = struct.unpack_from("<II", data, end + 12)
    counts = (99_999, 99_999, directory_bytes, directory_offset)
    record = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, *counts)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, end, 1)
    struct.pack_into("<HH", data, end + 8, 0xFFFF, 0xFFFF)
    (tmp_path / "big.zip").write_bytes(bytes(data[:end]) + record + locator + bytes(data[end:]))
    with pytest.raises(ArchiveError, match="big.zip: archive has 99999 entries; the limit is 20000"):
        safe_extract_zip(tmp_path / "big.zip", tmp_path / "out", max_bytes=1000, max_entries=20_000)


def test_zip_whose_directory_is_far_larger_than_its_entry_count_is_refused(tmp_path):
    archive = tmp_path / "liar.zip"
    data = bytearray(bombs.zip_of({f"{'n' * 200}{i}": b"" for i in range(20)}))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # claims 1 entry; the directory holds 20 of 250 bytes
    archive.write_bytes(data)
    with pytest.raises(ArchiveError, match="archive's directory is 4,[0-9]{3} bytes, too large for its entries"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=10_000, max_entries=2)


def test_zip_entry_past_the_decompressed_limit_is_refused_before_writing(tmp_path):
    archive = tmp_path / "big.zip"
    archive.write_bytes(bombs.zip_of({"big.bin": bytes(5000)}))
    with pytest.raises(ArchiveError, match="entry 'big.bin' would expand to 5,000 bytes; the limit is 1,000 per file"):
        safe_extract_zip(archive, tmp_path / "out", 10_000, 10, limits=Limits(max_decompressed_bytes=1000))
    assert not (tmp_path / "out").exists()


def test_extraction_stops_at_the_time_budget(tmp_path, fake_clock):
    archive = tmp_path / "slow.zip"
    archive.write_bytes(bombs.zip_of({f"f{i}.bin": b"x" for i in range(20)}))
    with pytest.raises(
        ArchiveError, match="slow.zip: extraction stopped: the import took longer than its limit of 5 s"
    ):
        safe_extract_zip(archive, tmp_path / "out", 10_000, 100, limits=Limits(seconds=5))
    assert len(list((tmp_path / "out").iterdir())) < 20


# --- Scanning an upload ---------------------------------------------------------------


def test_scan_lists_the_first_problems_and_counts_the_rest(tmp_path):
    case = tmp_path / "upload" / "c1"
    case.mkdir(parents=True)
    (case / "input.npy").write_bytes(npy_bytes(np.zeros((4, 4))))
    for number in range(60):
        (case / f"extra{number:02d}.txt").write_text("x")
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(tmp_path / "upload")
    error = caught.value
    assert error.message == "60 problems found"
    assert len(error.problems) == 50 and error.more == 10
    assert [str(line) for line in error.errors[50:]] == [
        "… and 10 more (only the first 50 are listed)",
        "the scan stopped after 50 problems: 1 more image was not read",  # the input: it would change nothing
    ]


def test_scan_stops_reading_images_after_the_error_limit(tmp_path, monkeypatch):
    root = tmp_path / "junk"
    root.mkdir()
    for number in range(80):
        (root / f"f{number:02d}.dat").write_bytes(b"junk")
    reads = []
    real_read_image = importers_layout.read_image
    monkeypatch.setattr(importers_layout, "read_image", lambda *a, **k: reads.append(a) or real_read_image(*a, **k))
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root, limits=Limits(max_errors=10))
    assert len(reads) == 10
    lines = [str(line) for line in caught.value.errors]
    assert len(lines) == 11 and lines[0].startswith("f00.dat: unrecognised file format")
    assert lines[-1] == "the scan stopped after 10 problems: 70 more images were not read"


def test_scan_stops_at_the_time_budget_naming_it(tmp_path, fake_clock):
    root = tmp_path / "flat"
    root.mkdir()
    for number in range(20):
        (root / f"a{number:02d}.npy").write_bytes(npy_bytes(np.zeros((4, 4))))
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root, limits=Limits(seconds=5))
    lines = [str(line) for line in caught.value.errors]
    assert lines[0] == "the import took longer than its limit of 5 s"
    assert re.fullmatch(r"the scan stopped there: \d+ more images were not read", lines[-1])


def test_scan_stops_when_the_decoded_images_pass_the_import_limit(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for number in range(4):
        (root / f"a{number}.npy").write_bytes(npy_bytes(np.zeros((8, 8), np.float32)))  # 256 bytes each
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root, limits=Limits(max_import_bytes=600))
    assert [str(line) for line in caught.value.errors] == [
        "the images read so far take 768 bytes decoded; the limit is 600 per import",
        "the scan stopped there: 1 more image was not read",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "c1/metadata.json: nests too deeply: at most 32 levels"),
        (json.dumps({"a": [[[[1]]]]}).encode(), None),
        (json.dumps({"a": {"b": {"c": 1}}}).replace("1", "[" * 40 + "1" + "]" * 40).encode(), "nests too deeply"),
        (
            json.dumps({"note": "x" * (1024**2)}).encode(),
            "c1/metadata.json: is 1,048,588 bytes; the limit is 1,048,576",
        ),
    ],
    ids=["100k-deep", "5-deep-is-read", "43-deep", "past-1-MiB"],
)
def test_metadata_json_depth_and_size_are_limited(tmp_path, content, expected):
    case = tmp_path / "upload" / "c1"
    case.mkdir(parents=True)
    (case / "input.npy").write_bytes(npy_bytes(np.zeros((4, 4))))
    (case / "metadata.json").write_bytes(content)
    if expected is None:
        (imported,) = scan_dataset(tmp_path / "upload")
        assert imported.metadata == {"a": [[[[1]]]]}
        return
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(tmp_path / "upload")
    (error,) = caught.value.errors
    assert expected in str(error)


# --- Messages -------------------------------------------------------------------------


def test_error_paths_and_messages_are_clipped():
    error = ImageImportError("p" * 1000, "m" * 1000)
    assert len(error.path) == 300 and len(error.message) == 500
    assert error.path.endswith("p…") and error.message.endswith("m…")


def test_no_error_message_names_a_server_path(tmp_path):
    """Bad files in a temporary folder named like the import's: every message names only the upload's names."""
    work = tmp_path / "medgen-dataset-x1y2z3"
    root = work / "extracted"
    bad = {
        "a.nii": b"garbage" * 100,
        "b.nii.gz": b"\x1f\x8b\x08\x00" + b"junk" * 50,
        "c.nii.gz": bombs.gzip_bomb(b"x" * 400, 0),
        "d.png": b"\x89PNG\r\n\x1a\n" + b"junk" * 40,
        "e.tif": b"II*\x00" + b"\xff" * 50,
        "f.npy": b"\x93NUMPY\x01\x00" + b"junk" * 30,
        "g.npz": b"PK\x03\x04" + b"junk" * 30,
        "h.dcm": bytes(128) + b"DICM" + b"junk" * 30,
        "i.nii": bombs.nifti_header((10, 10, 10)) + bytes(100),
        "j.dcm": (PYDICOM_FILES / "MR_truncated.dcm").read_bytes(),
        "k.dat": b"\x00" * 10,
    }
    root.mkdir(parents=True)
    for name, data in bad.items():
        (root / name).write_bytes(data)
    series = root / "series"
    series.mkdir()
    (series / "s1.dcm").write_bytes(bad["j.dcm"])
    (series / "s2.dcm").write_bytes(b"junk")
    messages = []
    for path in sorted(root.iterdir()):
        with pytest.raises(ImageImportError) as caught:
            read_image(path, display_name=path.name)
        messages.append(str(caught.value))
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root, root_name="upload")
    messages += [str(error) for error in caught.value.errors]
    archives = {
        "long.zip": {"a" * 300 + "/input.npy": b"x"},
        "clash.zip": {"c1": b"x", "c1/input.npy": b"x"},
        "escape.zip": {"../x.npy": b"x"},
    }
    for name, entries in archives.items():
        (work / name).write_bytes(bombs.zip_of(entries))
        with pytest.raises(ArchiveError) as caught:
            safe_extract_zip(work / name, work / f"out-{name}", 1000, 10)
        messages.append(str(caught.value))
    (work / "fake.zip").write_bytes(b"PK\x05\x06" + b"\xff" * 30)
    with pytest.raises(ArchiveError) as caught:
        safe_extract_zip(work / "fake.zip", work / "out-fake", 1000, 10)
    messages.append(str(caught.value))
    assert len(messages) > 20
    for message in messages:
        assert str(tmp_path) not in message and "medgen-dataset" not in message, message
        assert not re.search(r"(^|[\s'\"(])/(tmp|work|home|root|var|usr|proc)\b", message), message


# --- Through the services -------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def test_import_limits_come_from_settings(settings):
    settings.MEDGEN_MAX_IMAGE_VOXELS, settings.MEDGEN_MAX_DECOMPRESSED_BYTES = 1000, 2000
    settings.MEDGEN_MAX_IMPORT_BYTES, settings.MEDGEN_IMPORT_SECONDS = 3000, 7
    before = time.monotonic()
    limits = import_limits()
    assert (limits.max_image_voxels, limits.max_decompressed_bytes, limits.max_import_bytes) == (1000, 2000, 3000)
    assert limits.seconds == 7 and before + 7 <= limits.deadline <= time.monotonic() + 7


@pytest.mark.django_db
def test_junk_zip_import_is_refused_quickly_with_a_short_error_list(media, tmp_path):
    archive = tmp_path / "junk.zip"
    archive.write_bytes(bombs.zip_of({f"f{number:05d}.dat": bytes([number % 256]) * 60 for number in range(3000)}))
    started = time.perf_counter()
    with pytest.raises(ImportRefused) as caught:
        import_dataset("Junk", archive)
    elapsed = time.perf_counter() - started
    text = str(caught.value)
    assert len(caught.value.errors) == 51 and len(text) < 6000
    assert caught.value.errors[-1] == "the scan stopped after 50 problems: 2,950 more images were not read"
    assert elapsed < 30  # a few seconds; generous for a loaded test machine
    assert not Dataset.objects.exists()


@pytest.mark.serial
@pytest.mark.django_db
def test_archive_claiming_60000_entries_is_refused_at_once_by_the_default_entry_limit(media, tmp_path):
    archive = tmp_path / "junk.zip"
    data = bytearray(bombs.zip_of({"f0.dat": b"junk"}))
    struct.pack_into("<HH", data, data.rfind(b"PK\x05\x06") + 8, 60_000, 60_000)
    archive.write_bytes(data)
    started = time.perf_counter()
    with pytest.raises(ImportRefused) as caught:
        import_dataset("Junk", archive)
    assert time.perf_counter() - started < 1
    assert [str(error) for error in caught.value.errors] == ["junk.zip: archive has 60000 entries; the limit is 20000"]


@pytest.mark.django_db
def test_importing_a_zip_with_a_file_and_a_folder_of_the_same_name_is_a_clear_error(media, tmp_path):
    archive = tmp_path / "clash.zip"
    archive.write_bytes(bombs.zip_of({"c1": b"x", "c1/input.npy": npy_bytes(np.zeros((4, 4)))}))
    with pytest.raises(ImportRefused) as caught:
        import_dataset("Clash", archive)
    assert [str(error) for error in caught.value.errors] == [
        "clash.zip: entry 'c1' is both a file and a folder (holding 'c1/input.npy')"
    ]


@pytest.mark.django_db
def test_api_answers_bombs_with_a_400_naming_the_limit(api_client, staff_user, media):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    uploads = {
        "deep.zip": {"c1/input.npy": npy_bytes(np.zeros((4, 4))), "c1/metadata.json": b"[" * 100_000 + b"]" * 100_000},
        "clash.zip": {"c1": b"x", "c1/input.npy": npy_bytes(np.zeros((4, 4)))},
        "claim.zip": {"c1/input.nii": bombs.nifti_header((2048, 2048, 4096)) + bytes(16)},
    }
    expected = {
        "deep.zip": "c1/metadata.json: nests too deeply",
        "clash.zip": "is both a file and a folder",
        "claim.zip": "c1/input.nii: NIfTI of shape (2048, 2048, 4096) has 17,179,869,184 voxels; the limit is",
    }
    for name, entries in uploads.items():
        upload = io.BytesIO(bombs.zip_of(entries))
        upload.name = name
        response = api_client.post("/api/datasets/", {"name": name, "file": upload})
        assert response.status_code == 400, response.content
        assert any(expected[name] in error for error in response.json()["errors"]), response.json()
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_submission_problems_are_capped_and_checking_stops(tmp_path):
    task = make_task(n_cases=2, shape=(1, 4, 4))
    files = {f"stranger{number:02d}.npy": npy_bytes(np.zeros((1, 4, 4), np.float32)) for number in range(60)}
    path = tmp_path / "sub.zip"
    path.write_bytes(bombs.zip_of(files))
    with open(path, "rb") as handle:
        run = create_submission(task, handle, name="sub", original_name="sub.zip")
    run_job(run)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert len(run.problems) == 52
    assert run.problems[50] == "… and 10 more (only the first 50 are listed)"
    assert run.problems[51] == "checking stopped after 50 problems: cases not checked: 2"
    assert not CaseOutput.objects.filter(run=run).exists()


def test_limits_are_part_of_the_packages_public_names():
    assert {"Limits", "LimitExceeded", "ImportStopped"} <= set(importers.__all__)
    assert issubclass(ImportStopped, ImageImportError) and issubclass(LimitExceeded, ImageImportError)
