"""Reading medical images and dataset layouts (no database): real pydicom/nibabel test files and generated ones."""

import json
import random
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from inference.importers import (
    ArchiveError,
    DatasetImportError,
    ImageImportError,
    read_image,
    safe_extract_zip,
    scan_dataset,
)
from tests.support.files import write_zip

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
NIBABEL_FILES = Path(nibabel.__file__).parent / "tests" / "data"


# --- Helpers --------------------------------------------------------------------------


def dicom_slice(
    pixels,
    *,
    position=None,
    orientation=(1, 0, 0, 0, 1, 0),
    slope=None,
    intercept=None,
    series_uid="1.2.826.0.1.3680043.8.498.1",
    instance=None,
    pixel_spacing=(0.5, 0.75),
    transfer_syntax=ExplicitVRLittleEndian,
    with_file_meta=True,
):
    """A small single-frame MR slice with unsigned 16-bit pixels."""
    ds = DicomDataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "MR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing = list(pixel_spacing)
    if position is not None:
        ds.ImagePositionPatient = list(position)
        ds.ImageOrientationPatient = list(orientation)
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if instance is not None:
        ds.InstanceNumber = instance
    ds.PixelData = np.asarray(pixels, dtype=np.uint16).tobytes()
    if with_file_meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def save_dicom(ds, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    if getattr(ds, "file_meta", None) and "TransferSyntaxUID" in ds.file_meta:
        ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    else:
        ds.save_as(path, implicit_vr=True, little_endian=True)
    return path


def write_series(folder, stored, *, positions, orientation=(1, 0, 0, 0, 1, 0), slope=2.0, intercept=-100.0):
    """One file per slice, written (and named) in shuffled order."""
    order = list(range(len(stored)))
    random.Random(7).shuffle(order)
    for file_number, index in enumerate(order):
        ds = dicom_slice(
            stored[index], position=positions[index], orientation=orientation, slope=slope, intercept=intercept
        )
        save_dicom(ds, folder / f"IM{file_number:04d}")
    return folder


def save_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path, format="PNG")
    return path


def save_nifti(path, data, zooms=(1.0, 1.0, 1.0), affine=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nibabel.Nifti1Image(data, np.diag([*zooms, 1.0]) if affine is None else affine)
    nibabel.save(image, str(path))
    return path


def save_npy(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


# --- DICOM: real files shipped with pydicom -------------------------------------------


def test_single_dicom_file_is_a_2d_image_with_pixel_spacing():
    image = read_image(PYDICOM_FILES / "MR_small.dcm")
    ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    assert image.array.shape == (1, 64, 64)
    assert image.array.dtype == np.float32
    assert image.spacing == [0.3125, 0.3125]
    assert image.source_format == "dicom"
    assert image.meta["modality"] == "MR"
    assert image.origin == pytest.approx([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_array_equal(image.array[0], ds.pixel_array)


def test_ct_values_are_rescaled_to_hounsfield_units():
    ds = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    image = read_image(PYDICOM_FILES / "CT_small.dcm")
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(image.array[0], expected)
    assert image.array.min() < 0  # air is negative HU


def test_multi_frame_dicom_is_a_volume_with_frame_spacing_and_dose_scaling():
    ds = pydicom.dcmread(PYDICOM_FILES / "rtdose.dcm")
    image = read_image(PYDICOM_FILES / "rtdose.dcm")
    assert image.array.shape == (1, 15, 10, 10)
    assert image.spacing == [5.0, 10.0, 10.0]  # GridFrameOffsetVector steps, then PixelSpacing
    np.testing.assert_allclose(image.array[0], ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)


def test_rgb_dicom_frames_become_three_channels():
    image = read_image(PYDICOM_FILES / "SC_rgb_rle_2frame.dcm")
    pixels = pydicom.dcmread(PYDICOM_FILES / "SC_rgb_rle_2frame.dcm").pixel_array  # (F, H, W, 3)
    assert image.array.shape == (3, 2, 100, 100)
    np.testing.assert_array_equal(image.array, np.moveaxis(pixels, -1, 0))


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("MR_truncated.dcm", "pixel data is truncated: expected 8192 bytes, found 8130"),
        ("badVR.dcm", "bad value '1A' for NumberOfFrames (0028,0008) (VR IS): not an integer"),
        ("no_meta.dcm", "not a DICOM file"),
        ("meta_missing_tsyntax.dcm", "missing attributes needed to decode the pixel data: Rows, Columns"),
        ("rtplan.dcm", "no pixel data: this RTPLAN object is not an image"),
        (
            "MR_small_jpeg_ls_lossless.dcm",
            "transfer syntax 1.2.840.10008.1.2.4.80 (JPEG-LS Lossless Image Compression) cannot be decoded here",
        ),
        ("JPGExtended.dcm", "transfer syntax 1.2.840.10008.1.2.4.51 (JPEG Extended (Process 2 and 4)) cannot be"),
    ],
)
def test_broken_or_unusable_dicom_files_give_a_clear_error_naming_the_file(filename, expected):
    with pytest.raises(ImageImportError) as caught:
        read_image(PYDICOM_FILES / filename, display_name=f"case1/{filename}")
    assert expected in caught.value.message
    assert caught.value.path == f"case1/{filename}"
    assert str(caught.value).startswith(f"case1/{filename}: ")


def test_jpeg2000_dicom_decodes_when_a_decoder_is_installed_and_says_so_otherwise():
    from pydicom.pixels.decoders import JPEG2000Decoder

    if JPEG2000Decoder.is_available:
        image = read_image(PYDICOM_FILES / "JPEG2000.dcm")
        assert image.array.shape == (1, 1024, 256)
    else:
        with pytest.raises(ImageImportError, match=r"1\.2\.840\.10008\.1\.2\.4\.91 .* cannot be decoded here"):
            read_image(PYDICOM_FILES / "JPEG2000.dcm")


def test_unknown_transfer_syntax_is_refused_by_uid(tmp_path):
    ds = dicom_slice(np.zeros((4, 4)), transfer_syntax=UID("1.2.826.0.1.3680043.8.498.99"))
    path = save_dicom(ds, tmp_path / "odd.dcm")
    with pytest.raises(ImageImportError, match=r"transfer syntax 1\.2\.826\.0\.1\.3680043\.8\.498\.99 \(unknown\)"):
        read_image(path)


def test_dicom_without_file_header_loads_when_it_parses_as_an_image(tmp_path):
    stored = np.arange(12).reshape(3, 4)
    path = save_dicom(dicom_slice(stored, with_file_meta=False), tmp_path / "headerless")
    assert path.read_bytes()[128:132] != b"DICM"
    image = read_image(path)
    assert image.source_format == "dicom"
    np.testing.assert_array_equal(image.array[0], stored)


# --- DICOM series -----------------------------------------------------------------------


def test_series_in_shuffled_files_is_sorted_by_position_and_rescaled(tmp_path):
    stored = [np.full((4, 5), 10 * k, dtype=np.uint16) + np.arange(5, dtype=np.uint16) for k in range(5)]
    positions = [(-10.0, -20.0, 30.0 + 2.5 * k) for k in range(5)]
    folder = write_series(tmp_path / "series", stored, positions=positions)
    image = read_image(folder)
    assert image.array.shape == (1, 5, 4, 5)
    np.testing.assert_allclose(image.array[0], np.stack(stored) * 2.0 - 100.0)
    assert image.spacing == pytest.approx([2.5, 0.5, 0.75])
    assert image.origin == pytest.approx([-10.0, -20.0, 30.0])
    assert image.direction == pytest.approx([1, 0, 0, 0, 1, 0, 0, 0, 1])
    assert image.meta["files"] == 5


def test_series_order_follows_the_slice_normal_not_a_fixed_axis(tmp_path):
    # Sagittal: rows along +y, columns along -z, so the normal is -x and slices go from high x to low x.
    stored = [np.full((3, 3), k, dtype=np.uint16) for k in range(4)]
    positions = [(-3.0 * k, 0.0, 0.0) for k in range(4)]
    sagittal = (0, 1, 0, 0, 0, -1)
    folder = write_series(tmp_path / "sag", stored, positions=positions, orientation=sagittal, slope=1, intercept=0)
    image = read_image(folder)
    np.testing.assert_array_equal(image.array[0, :, 0, 0], [0, 1, 2, 3])
    assert image.spacing[0] == pytest.approx(3.0)
    assert image.direction == pytest.approx([0, 0, -1, 1, 0, 0, 0, -1, 0])


def test_series_without_positions_is_ordered_by_instance_number(tmp_path):
    folder = tmp_path / "series"
    for file_number, instance in enumerate([3, 1, 2]):
        save_dicom(dicom_slice(np.full((2, 2), instance), instance=instance), folder / f"f{file_number}.dcm")
    image = read_image(folder)
    np.testing.assert_array_equal(image.array[0, :, 0, 0], [1, 2, 3])
    assert image.meta["ordered_by"] == "InstanceNumber"


def test_folder_mixing_two_series_is_refused(tmp_path):
    folder = tmp_path / "mixed"
    save_dicom(dicom_slice(np.zeros((2, 2)), position=(0, 0, 0), series_uid="1.2.3.1"), folder / "a.dcm")
    save_dicom(dicom_slice(np.zeros((2, 2)), position=(0, 0, 1), series_uid="1.2.3.2"), folder / "b.dcm")
    with pytest.raises(ImageImportError, match="files from 2 different series"):
        read_image(folder)


def test_series_slices_of_different_shapes_are_refused(tmp_path):
    folder = tmp_path / "series"
    save_dicom(dicom_slice(np.zeros((2, 2)), position=(0, 0, 0)), folder / "a.dcm")
    save_dicom(dicom_slice(np.zeros((3, 2)), position=(0, 0, 1)), folder / "b.dcm")
    with pytest.raises(ImageImportError, match=r"slices differ in shape: series/a.dcm is \(2, 2\), series/b.dcm"):
        read_image(folder, display_name="series")


def test_series_with_a_missing_slice_is_refused(tmp_path):
    stored = [np.zeros((2, 2), dtype=np.uint16)] * 3
    folder = write_series(tmp_path / "gap", stored, positions=[(0, 0, 0), (0, 0, 1), (0, 0, 3)])
    with pytest.raises(ImageImportError, match="slice spacing is not uniform"):
        read_image(folder)


def test_series_reports_every_bad_file(tmp_path):
    folder = tmp_path / "series"
    save_dicom(dicom_slice(np.zeros((2, 2)), position=(0, 0, 0)), folder / "good.dcm")
    (folder / "notes.txt").write_text("not an image")
    truncated = (PYDICOM_FILES / "MR_truncated.dcm").read_bytes()
    (folder / "cut.dcm").write_bytes(truncated)
    with pytest.raises(DatasetImportError) as caught:
        read_image(folder)
    paths = sorted(error.path for error in caught.value.errors)
    assert paths == ["series/cut.dcm", "series/notes.txt"]


# --- NIfTI ----------------------------------------------------------------------------


def test_nifti_axes_are_reversed_to_depth_height_width_with_matching_spacing():
    path = NIBABEL_FILES / "anatomical.nii"
    reference = nibabel.load(str(path))
    data = reference.get_fdata()
    image = read_image(path)
    x, y, z = reference.shape
    assert image.array.shape == (1, z, y, x)
    zooms = [float(v) for v in reference.header.get_zooms()]
    assert image.spacing == [zooms[2], zooms[1], zooms[0]]
    np.testing.assert_allclose(image.array[0, 3, 5, 7], data[7, 5, 3])
    assert image.source_format == "nifti"


def test_nifti_affine_becomes_lps_direction_and_origin(tmp_path):
    affine = np.array([[-2.0, 0, 0, 10], [0, 3.0, 0, -20], [0, 0, 4.0, 30], [0, 0, 0, 1]])
    path = save_nifti(tmp_path / "img.nii.gz", np.zeros((2, 3, 4), dtype=np.float32), affine=affine)
    image = read_image(path)
    assert image.spacing == [4.0, 3.0, 2.0]
    # x points to -R = +L, y to +A = -P: in LPS the first column is +x, the second -y.
    assert image.direction == pytest.approx([1, 0, 0, 0, -1, 0, 0, 0, 1])
    assert image.origin == pytest.approx([-10.0, 20.0, 30.0])


def test_nifti_small_fourth_axis_becomes_channels_and_single_slice_is_2d(tmp_path):
    data = np.random.default_rng(0).random((5, 6, 7, 2)).astype(np.float32)
    image = read_image(save_nifti(tmp_path / "two.nii.gz", data))
    assert image.array.shape == (2, 7, 6, 5)
    np.testing.assert_allclose(image.array[1, 2, 3, 4], data[4, 3, 2, 1])
    flat = read_image(save_nifti(tmp_path / "flat.nii", np.ones((5, 6, 1), dtype=np.float32), zooms=(0.5, 0.25, 3)))
    assert flat.array.shape == (1, 6, 5)
    assert flat.spacing == [0.25, 0.5]


def test_nifti_with_many_volumes_is_refused(tmp_path):
    path = save_nifti(tmp_path / "fmri.nii.gz", np.zeros((4, 4, 4, 10), dtype=np.float32))
    with pytest.raises(ImageImportError, match="at most 4 volumes"):
        read_image(path)


# --- PNG, TIFF, NPY, NPZ ----------------------------------------------------------------


def test_png_grayscale_keeps_16_bit_values(tmp_path):
    pixels = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    image = read_image(save_png(tmp_path / "a.png", pixels))
    assert image.array.shape == (1, 2, 2)
    np.testing.assert_array_equal(image.array[0], pixels)
    assert image.source_format == "png"


def test_png_rgb_becomes_three_channels_and_format_is_detected_by_content(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    image = read_image(save_png(tmp_path / "photo.dat", pixels))
    assert image.array.shape == (3, 4, 5)
    np.testing.assert_array_equal(image.array, np.moveaxis(pixels, -1, 0))


def test_png_with_transparent_pixels_is_refused(tmp_path):
    pixels = np.zeros((2, 2, 4), dtype=np.uint8)
    with pytest.raises(ImageImportError, match="transparent pixels"):
        read_image(save_png(tmp_path / "a.png", pixels))


def test_multi_page_tiff_is_a_volume_and_float_tiff_keeps_values(tmp_path):
    pages = [Image.fromarray(np.full((3, 4), k, dtype=np.uint8)) for k in range(3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    stack = read_image(tmp_path / "stack.tif")
    assert stack.array.shape == (1, 3, 3, 4)
    assert stack.source_format == "tiff"
    np.testing.assert_array_equal(stack.array[0, :, 0, 0], [0, 1, 2])
    values = np.array([[0.5, -1.25]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "float.tiff")
    np.testing.assert_array_equal(read_image(tmp_path / "float.tiff").array[0], values)


def test_npy_2d_gets_a_channel_and_canonical_arrays_are_kept(tmp_path):
    assert read_image(save_npy(tmp_path / "a.npy", np.ones((3, 4)))).array.shape == (1, 3, 4)
    volume = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    image = read_image(save_npy(tmp_path / "v.npy", volume))
    np.testing.assert_array_equal(image.array, volume)
    assert image.spacing == [1.0, 1.0, 1.0]


def test_npz_single_array_or_named_image_with_spacing(tmp_path):
    np.savez(tmp_path / "one.npz", np.ones((1, 3, 4)))
    assert read_image(tmp_path / "one.npz").array.shape == (1, 3, 4)
    np.savez(tmp_path / "named.npz", image=np.ones((1, 2, 3, 4)), spacing=np.array([2.0, 0.5, 0.5]))
    image = read_image(tmp_path / "named.npz")
    assert image.spacing == [2.0, 0.5, 0.5]
    assert image.source_format == "npz"


def test_npz_with_several_unnamed_arrays_is_ambiguous(tmp_path):
    np.savez(tmp_path / "two.npz", np.ones((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ImageImportError, match="holds arrays arr_0, arr_1"):
        read_image(tmp_path / "two.npz")


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, [2]]
    np.save(tmp_path / "evil.npy", objects, allow_pickle=True)
    with pytest.raises(ImageImportError, match="pickled object array"):
        read_image(tmp_path / "evil.npy")
    np.savez(tmp_path / "evil.npz", image=objects)
    with pytest.raises(ImageImportError, match="pickled object array"):
        read_image(tmp_path / "evil.npz")


def test_nan_or_infinite_values_are_refused(tmp_path):
    array = np.ones((1, 3, 3), dtype=np.float32)
    array[0, 0, 0], array[0, 1, 1] = np.nan, np.inf
    with pytest.raises(ImageImportError, match="contains 2 NaN or infinite values"):
        read_image(save_npy(tmp_path / "nan.npy", array))
    data = np.ones((3, 3, 3), dtype=np.float32)
    data[1, 1, 1] = np.nan
    with pytest.raises(ImageImportError, match="NaN"):
        read_image(save_nifti(tmp_path / "nan.nii.gz", data))


def test_unrecognised_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageImportError, match="unrecognised file format"):
        read_image(tmp_path / "notes.txt")


# --- Zip archives ---------------------------------------------------------------------


def test_safe_zip_extracts_nested_files(tmp_path):
    archive = write_zip(tmp_path / "ok.zip", {"case1/input.npy": b"abc", "case1/sub/": b""})
    files = safe_extract_zip(archive, tmp_path / "out", max_bytes=1000, max_entries=10)
    assert (tmp_path / "out" / "case1" / "input.npy").read_bytes() == b"abc"
    assert len(files) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../evil.txt", "points outside the archive folder"),
        ("a/../../evil.txt", "points outside"),
        ("/etc/evil", "absolute path"),
        ("C:/evil", "absolute path"),
    ],
)
def test_zip_entries_escaping_the_folder_are_refused(tmp_path, name, expected):
    archive = write_zip(tmp_path / "bad.zip", {name: b"x"})
    with pytest.raises(ArchiveError, match=expected):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1000, max_entries=10)
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_entry_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("case1/input.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1000, max_entries=10)


def test_zip_with_too_many_entries_is_refused(tmp_path):
    archive = write_zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(6)})
    with pytest.raises(ArchiveError, match="6 entries; the limit is 5"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1000, max_entries=5)


def test_zip_bomb_expanding_past_the_limit_is_refused(tmp_path):
    archive = write_zip(tmp_path / "bomb.zip", {"bomb.bin": b"\0" * 5_000_000})
    assert archive.stat().st_size < 50_000
    with pytest.raises(ArchiveError, match="would expand to 5000000 bytes; the limit is 1000000"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1_000_000, max_entries=10)


def test_zip_that_lies_about_its_sizes_is_refused_while_extracting(tmp_path):
    archive = write_zip(tmp_path / "liar.zip", {"bomb.bin": b"\0" * 5_000_000})
    data = bytearray(archive.read_bytes())
    # Declare 100 bytes in both the local header and the central directory.
    struct.pack_into("<I", data, data.find(b"PK\x03\x04") + 22, 100)
    struct.pack_into("<I", data, data.find(b"PK\x01\x02") + 24, 100)
    archive.write_bytes(data)
    with pytest.raises(ArchiveError, match="entry 'bomb.bin'"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1_000_000, max_entries=10)
    out = tmp_path / "out" / "bomb.bin"
    assert not out.exists() or out.stat().st_size <= 1_000_000


def test_not_a_zip_is_an_archive_error(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="fake.zip: not a readable zip archive"):
        safe_extract_zip(tmp_path / "fake.zip", tmp_path / "out", max_bytes=1000, max_entries=10)


# --- Dataset layouts ------------------------------------------------------------------


def test_case_layout_reads_roles_indices_and_metadata(tmp_path):
    root = tmp_path / "upload"
    save_npy(root / "abc" / "input_0.npy", np.zeros((8, 8)))
    save_png(root / "abc" / "input_1.png", np.zeros((8, 8), dtype=np.uint8))
    save_nifti(root / "abc" / "reference.nii.gz", np.ones((8, 8, 1), dtype=np.float32))
    save_png(root / "abc" / "label.png", np.eye(8, dtype=np.uint8))
    (root / "abc" / "metadata.json").write_text(json.dumps({"age": 40}))
    save_npy(root / "def" / "input.npy", np.zeros((8, 8)))
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._abc").write_bytes(b"junk")
    cases = scan_dataset(root)
    assert [case.case_id for case in cases] == ["abc", "def"]
    abc = cases[0]
    roles = [(image.role, image.index) for image in abc.images]
    assert roles == [("input", 0), ("input", 1), ("reference", 0), ("label", 0)]
    assert abc.metadata == {"age": 40}
    assert abc.images[2].image.source_format == "nifti"
    assert abc.images[0].original_path == root / "abc" / "input_0.npy"
    assert abc.images[1].image.original_name == "abc/input_1.png"


def test_case_input_can_be_a_dicom_series_folder(tmp_path):
    root = tmp_path / "upload"
    stored = [np.full((4, 4), k, dtype=np.uint16) for k in range(3)]
    write_series(root / "p1" / "input", stored, positions=[(0, 0, k) for k in range(3)])
    save_npy(root / "p1" / "reference.npy", np.zeros((1, 3, 4, 4)))
    (case,) = scan_dataset(root)
    assert case.images[0].image.array.shape == (1, 3, 4, 4)
    assert case.images[0].original_path == root / "p1" / "input"


def test_flat_layout_makes_one_case_per_file_and_handles_nii_gz(tmp_path):
    root = tmp_path / "flat"
    save_png(root / "a.png", np.zeros((4, 4), dtype=np.uint8))
    save_nifti(root / "b.nii.gz", np.zeros((4, 4, 4), dtype=np.float32))
    write_series(root / "c", [np.zeros((4, 4), dtype=np.uint16)] * 2, positions=[(0, 0, 0), (0, 0, 1)])
    cases = scan_dataset(root)
    assert [case.case_id for case in cases] == ["a", "b", "c"]
    assert all([(im.role, im.index) for im in case.images] == [("input", 0)] for case in cases)
    assert cases[2].images[0].image.array.shape == (1, 2, 4, 4)


def test_lone_wrapping_folder_is_looked_through(tmp_path):
    root = tmp_path / "extracted"
    save_npy(root / "my-dataset" / "case1" / "input.npy", np.zeros((4, 4)))
    save_npy(root / "my-dataset" / "case2" / "input.npy", np.zeros((4, 4)))
    assert [case.case_id for case in scan_dataset(root)] == ["case1", "case2"]


def test_series_folder_or_single_file_as_root_is_one_case(tmp_path):
    slices = [np.zeros((4, 4), dtype=np.uint16)] * 3
    folder = write_series(tmp_path / "tmpabc", slices, positions=[(0, 0, k) for k in range(3)])
    (case,) = scan_dataset(folder, root_name="patient7")
    assert case.case_id == "patient7"
    assert case.images[0].image.array.shape == (1, 3, 4, 4)
    (single,) = scan_dataset(save_nifti(tmp_path / "brain.nii.gz", np.zeros((3, 3, 3), dtype=np.float32)))
    assert single.case_id == "brain"


def test_mismatched_shapes_in_a_case_are_refused(tmp_path):
    root = tmp_path / "upload"
    save_npy(root / "abc" / "input.npy", np.zeros((128, 128)))
    save_npy(root / "abc" / "reference.npy", np.zeros((64, 64)))
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root)
    (error,) = caught.value.errors
    assert error.path == "abc/reference.npy"
    assert error.message == "case 'abc': reference shape (64, 64) does not match input shape (128, 128)"


def test_scan_reports_every_problem_at_once(tmp_path):
    root = tmp_path / "upload"
    save_npy(root / "ok" / "input.npy", np.zeros((4, 4)))
    save_npy(root / "shape" / "input.npy", np.zeros((4, 4)))
    save_npy(root / "shape" / "reference.npy", np.zeros((5, 5)))
    save_npy(root / "soft" / "input.npy", np.zeros((4, 4)))
    save_npy(root / "soft" / "label.npy", np.full((4, 4), 0.5))
    (root / "broken").mkdir()
    (root / "broken" / "input.dcm").write_bytes((PYDICOM_FILES / "MR_truncated.dcm").read_bytes())
    (root / "broken" / "metadata.json").write_text("{not json")
    save_npy(root / "noinput" / "reference.npy", np.zeros((4, 4)))
    save_npy(root / "extra" / "input.npy", np.zeros((4, 4)))
    save_npy(root / "extra" / "segmentation.npy", np.zeros((4, 4)))
    (root / "stray.txt").write_text("x")
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root)
    text = str(caught.value)
    assert text.startswith("7 problems found\n- ")
    for fragment in (
        "broken/input.dcm: pixel data is truncated",
        "broken/metadata.json: not valid JSON",
        "extra/segmentation.npy: unexpected entry in case 'extra'",
        "noinput: case 'noinput' has no input image",
        "shape/reference.npy: case 'shape': reference shape (5, 5) does not match input shape (4, 4)",
        "soft/label.npy: case 'soft': label has non-integer values (e.g. 0.5)",
        "stray.txt: file outside the case folders",
    ):
        assert fragment in text


def test_flat_layout_refuses_duplicate_case_ids(tmp_path):
    root = tmp_path / "flat"
    save_npy(root / "a.npy", np.zeros((4, 4)))
    save_png(root / "a.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(DatasetImportError, match="case id 'a' is also used by 'a.npy'"):
        scan_dataset(root)


def test_inputs_must_be_numbered_without_gaps_and_not_twice(tmp_path):
    root = tmp_path / "upload"
    save_npy(root / "c" / "input_0.npy", np.zeros((4, 4)))
    save_npy(root / "c" / "input_2.npy", np.zeros((4, 4)))
    save_npy(root / "d" / "input.npy", np.zeros((4, 4)))
    save_npy(root / "d" / "input_0.npy", np.zeros((4, 4)))
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root)
    text = str(caught.value)
    assert "number inputs input_0, input_1, … without gaps (found input_0, input_2)" in text
    assert "case 'd' has two entries for input_0" in text


def test_empty_upload_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetImportError, match="no images found"):
        scan_dataset(tmp_path / "empty")


# --- The package ------------------------------------------------------------------------


def test_importers_package_reads_every_format_without_importing_django(tmp_path):
    save_npy(tmp_path / "a.npy", np.zeros((2, 2)))
    save_png(tmp_path / "b.png", np.zeros((2, 2), dtype=np.uint8))
    save_nifti(tmp_path / "c.nii.gz", np.zeros((2, 2, 2), dtype=np.float32))
    (tmp_path / "d.dcm").write_bytes((PYDICOM_FILES / "MR_small.dcm").read_bytes())
    code = (
        "import sys; from pathlib import Path; from inference.importers import scan_dataset; "
        f"cases = scan_dataset(Path({str(tmp_path)!r})); assert len(cases) == 4, cases; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, env={"PATH": "/usr/bin:/bin"})


def test_flat_zip_of_single_slices_at_one_position_is_one_case_per_file(tmp_path):
    """Five 2D images of one series at one position (the README: a flat zip is one case per file)."""
    root = tmp_path / "extracted"
    for k in range(5):
        save_dicom(dicom_slice(np.full((4, 4), k, dtype=np.uint16), position=(0, 0, 0)), root / f"xray{k}.dcm")
    cases = scan_dataset(root, root_name="xrays.zip")
    assert [case.case_id for case in cases] == [f"xray{k}" for k in range(5)]
    for k, case in enumerate(cases):
        (image,) = case.images
        assert image.image.array.shape == (1, 4, 4)
        np.testing.assert_array_equal(image.image.array, np.full((1, 4, 4), k, dtype=np.float32))


def test_a_volume_with_slices_at_one_position_names_the_files(tmp_path):
    root = tmp_path / "upload"
    slices = [np.zeros((4, 4), dtype=np.uint16)] * 4
    folder = root / "p1" / "input"
    for name, z in [("a.dcm", 0), ("b.dcm", 1), ("c.dcm", 1), ("d.dcm", 2)]:
        save_dicom(dicom_slice(slices[0], position=(0, 0, z)), folder / name)
    with pytest.raises(DatasetImportError) as caught:
        scan_dataset(root, root_name="upload.zip")
    (error,) = caught.value.errors
    assert error.path == "p1/input"
    assert "several slices share a position (p1/input/b.dcm, p1/input/c.dcm)" in str(error)
