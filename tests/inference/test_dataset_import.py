"""Dataset import service, management command and admin view (database and media storage)."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from inference.models import Case, CaseImage, Dataset
from inference.services import datasets as dataset_service
from inference.services.datasets import DatasetImportError, import_dataset
from tests.support.files import npy_bytes, write_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def media_files(media):
    return sorted(path.relative_to(media).as_posix() for path in media.rglob("*") if path.is_file())


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def dicom_slice_bytes(pixels, z):
    ds = DicomDataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.SeriesInstanceUID, ds.Modality = "1.2.826.0.1.3680043.8.498.5", "MR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing, ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.5, 0.5], [0, 0, z], [1, 0, 0, 0, 1, 0]
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


INPUT_2D = np.arange(64, dtype=np.float32).reshape(8, 8)
LABEL_2D = (np.arange(64).reshape(8, 8) % 3).astype(np.uint8)
SERIES = [np.full((4, 4), 10 * k, dtype=np.uint16) for k in range(3)]


def case_layout_entries():
    entries = {
        "c1/input_0.npy": npy_bytes(INPUT_2D),
        "c1/input_1.png": png_bytes(LABEL_2D * 50),
        "c1/reference.npy": npy_bytes(INPUT_2D * 2),
        "c1/label.png": png_bytes(LABEL_2D),
        "c1/metadata.json": json.dumps({"site": "A"}).encode(),
        "c2/reference.npy": npy_bytes(np.ones((1, 3, 4, 4), dtype=np.float32)),
    }
    for k, pixels in reversed(list(enumerate(SERIES))):
        entries[f"c2/input/slice{k}.dcm"] = dicom_slice_bytes(pixels, z=2.0 * k)
    return entries


@pytest.fixture
def good_zip(tmp_path):
    return write_zip(tmp_path / "brains.zip", case_layout_entries())


@pytest.fixture
def bad_zip(tmp_path):
    entries = case_layout_entries()
    entries["c1/reference.npy"] = npy_bytes(np.zeros((5, 5)))
    entries["c3/input.npy"] = npy_bytes(np.full((2, 2), np.nan))
    return write_zip(tmp_path / "bad.zip", entries)


def test_zip_in_case_layout_creates_rows_and_files(media, good_zip, django_user_model):
    user = django_user_model.objects.create_user("importer")
    dataset = import_dataset("Brains", good_zip, description="demo", is_public=True, user=user)
    assert (dataset.name, dataset.description, dataset.source, dataset.is_public) == (
        "Brains",
        "demo",
        "brains.zip",
        True,
    )
    assert dataset.created_by == user
    assert list(dataset.cases.values_list("case_id", flat=True)) == ["c1", "c2"]
    c1 = dataset.cases.get(case_id="c1")
    assert c1.metadata == {"site": "A"}
    roles = sorted((im.role, im.index) for im in c1.images.all())
    assert roles == [("input", 0), ("input", 1), ("label", 0), ("reference", 0)]
    input_0 = c1.image("input", 0)
    np.testing.assert_array_equal(input_0.load(), INPUT_2D[np.newaxis])
    assert input_0.load().dtype == np.float32
    assert (input_0.shape, input_0.source_format, input_0.original_name) == ([1, 8, 8], "npy", "c1/input_0.npy")
    assert (input_0.intensity_min, input_0.intensity_max) == (0.0, 63.0)
    np.testing.assert_array_equal(c1.image("label").load()[0], LABEL_2D)
    assert input_0.original.read() == npy_bytes(INPUT_2D)


def test_dicom_series_is_stored_as_volume_with_a_zip_of_the_original_files(media, good_zip):
    dataset = import_dataset("Brains", good_zip)
    series = dataset.cases.get(case_id="c2").image("input")
    np.testing.assert_array_equal(series.load()[0], np.stack(SERIES))
    assert series.shape == [1, 3, 4, 4]
    assert series.spacing == [2.0, 0.5, 0.5]
    assert series.direction == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert series.origin == [0, 0, 0]
    assert series.source_format == "dicom"
    with zipfile.ZipFile(series.original.open("rb")) as original:
        assert sorted(original.namelist()) == ["slice0.dcm", "slice1.dcm", "slice2.dcm"]


def test_uploaded_file_object_is_imported_like_a_path(media, good_zip):
    upload = SimpleUploadedFile("upload.zip", good_zip.read_bytes(), content_type="application/zip")
    dataset = import_dataset("Uploaded", upload, source_label="upload.zip")
    assert dataset.cases.count() == 2
    assert dataset.source == "upload.zip"


def test_folder_is_imported_without_an_archive(media, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "a.npy").write_bytes(npy_bytes(INPUT_2D))
    (folder / "b.png").write_bytes(png_bytes(LABEL_2D))
    dataset = import_dataset("Flat", folder)
    assert list(dataset.cases.values_list("case_id", flat=True)) == ["a", "b"]
    assert CaseImage.objects.filter(case__dataset=dataset, role="input").count() == 2


def test_failed_scan_leaves_no_rows_and_no_files(media, bad_zip):
    with pytest.raises(DatasetImportError) as caught:
        import_dataset("Bad", bad_zip)
    messages = [str(error) for error in caught.value.errors]
    assert "c1/reference.npy: case 'c1': reference shape (5, 5) does not match input shape (8, 8)" in messages
    assert "c3/input.npy: image contains 4 NaN or infinite values" in messages
    assert not Dataset.objects.exists() and not Case.objects.exists() and not CaseImage.objects.exists()
    assert media_files(media) == []


def test_failure_while_writing_rolls_back_rows_and_deletes_stored_files(media, good_zip, monkeypatch):
    real_save_array = dataset_service.save_array
    calls = []

    def failing_save_array(field, filename, array):
        calls.append(filename)
        if len(calls) == 4:
            raise OSError("disk full")
        return real_save_array(field, filename, array)

    monkeypatch.setattr(dataset_service, "save_array", failing_save_array)
    with pytest.raises(OSError, match="disk full"):
        import_dataset("Half", good_zip)
    assert len(calls) == 4
    assert not Dataset.objects.exists() and not Case.objects.exists() and not CaseImage.objects.exists()
    assert media_files(media) == []


def test_duplicate_dataset_name_is_refused(media, good_zip):
    import_dataset("Brains", good_zip)
    files_before = media_files(media)
    with pytest.raises(DatasetImportError, match="a dataset named 'Brains' already exists"):
        import_dataset("Brains", good_zip)
    assert Dataset.objects.count() == 1
    assert media_files(media) == files_before


def test_unsafe_archive_is_refused_as_an_import_error(media, tmp_path):
    archive = write_zip(tmp_path / "evil.zip", {"../evil.npy": npy_bytes(INPUT_2D)})
    with pytest.raises(DatasetImportError, match=r"evil.zip: entry '../evil.npy' points outside"):
        import_dataset("Evil", archive)
    assert not (tmp_path / "evil.npy").exists()
    assert not Dataset.objects.exists()


def test_archive_limits_come_from_settings(media, settings, good_zip):
    settings.MEDGEN_MAX_ARCHIVE_ENTRIES = 3
    with pytest.raises(DatasetImportError, match="the limit is 3"):
        import_dataset("Big", good_zip)


def test_management_command_imports_and_reports_counts(media, good_zip):
    out = io.StringIO()
    call_command("import_dataset", "Cmd", str(good_zip), "--description", "from cli", "--public", stdout=out)
    assert "Imported dataset 'Cmd'" in out.getvalue()
    assert "2 cases, 6 images" in out.getvalue()
    dataset = Dataset.objects.get(name="Cmd")
    assert dataset.is_public and dataset.description == "from cli"


def test_management_command_fails_with_the_error_list(media, bad_zip):
    with pytest.raises(CommandError) as caught:
        call_command("import_dataset", "Cmd", str(bad_zip), stdout=io.StringIO())
    text = str(caught.value)
    assert "nothing was stored" in text
    assert "- c1/reference.npy: case 'c1': reference shape (5, 5)" in text
    assert "- c3/input.npy: image contains 4 NaN" in text
    assert not Dataset.objects.exists()


def test_management_command_refuses_a_missing_path(media, tmp_path):
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("import_dataset", "Cmd", str(tmp_path / "nope.zip"))


def test_admin_add_goes_to_the_import_form_which_imports_a_zip(media, admin_client, good_zip):
    response = admin_client.get(reverse("admin:inference_dataset_add"))
    assert response.status_code == 302 and response["Location"] == reverse("admin:inference_dataset_import")
    assert admin_client.get(reverse("admin:inference_dataset_import")).status_code == 200
    upload = SimpleUploadedFile("brains.zip", good_zip.read_bytes())
    response = admin_client.post(
        reverse("admin:inference_dataset_import"), {"name": "Admin", "description": "", "archive": upload}
    )
    dataset = Dataset.objects.get(name="Admin")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:inference_dataset_change", args=[dataset.pk])
    assert dataset.cases.count() == 2
    case = dataset.cases.first()
    assert admin_client.get(reverse("admin:inference_case_change", args=[case.pk])).status_code == 200


def test_admin_import_shows_every_error_and_stores_nothing(media, admin_client, bad_zip):
    upload = SimpleUploadedFile("bad.zip", Path(bad_zip).read_bytes())
    response = admin_client.post(reverse("admin:inference_dataset_import"), {"name": "Bad", "archive": upload})
    assert response.status_code == 200
    content = response.content.decode()
    assert "nothing was stored" in content
    assert "c1/reference.npy: case &#x27;c1&#x27;: reference shape (5, 5)" in content
    assert "c3/input.npy: image contains 4 NaN" in content
    assert not Dataset.objects.exists()
