"""The ROI/body mask role: a file named `mask.<ext>` in a case folder is imported beside the reference in
every format the importers read, kept secret like the reference, and refused when it is not a mask."""

import numpy as np
import pytest
from PIL import Image

from inference.importers import DatasetImportError, scan_dataset
from inference.models import CaseImage, ImageRole
from inference.permissions import SECRET_ROLES
from inference.services.datasets import import_dataset
from tests.inference.test_importers import dicom_slice, save_dicom, save_nifti, save_npy, save_png
from tests.support.factories import add_image, make_task

SHAPE = (12, 10)
REFERENCE = np.arange(120, dtype=np.uint16).reshape(SHAPE) * 3
MASK = np.zeros(SHAPE, dtype=np.uint8)
MASK[3:9, 2:8] = 1


def _tiff(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="TIFF")
    return path


def _npz(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, array=array)
    return path


WRITERS = {
    "png": ("mask.png", lambda path, array: save_png(path, array)),
    "tiff": ("mask.tiff", _tiff),
    "npy": ("mask.npy", lambda path, array: save_npy(path, array.astype(np.float32))),
    "npz": ("mask.npz", lambda path, array: _npz(path, array.astype(np.float32))),
    "nifti": ("mask.nii.gz", lambda path, array: save_nifti(path, array.T.astype(np.float32)[:, :, None])),
    "dicom": ("mask.dcm", lambda path, array: save_dicom(dicom_slice(array.astype(np.uint16)), path)),
}


def _case(root, fmt):
    name, write = WRITERS[fmt]
    folder = root / "case001"
    save_npy(folder / "input.npy", REFERENCE.astype(np.float32))
    if fmt == "nifti":  # NIfTI gives (D, H, W): the reference is a one-slice volume too
        save_nifti(folder / "reference.nii.gz", REFERENCE.T.astype(np.float32)[:, :, None])
        save_nifti(folder / "input.nii.gz", REFERENCE.T.astype(np.float32)[:, :, None])
        (folder / "input.npy").unlink()
    else:
        save_npy(folder / "reference.npy", REFERENCE.astype(np.float32))
    write(folder / name, MASK)
    return root


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_mask_imports_beside_the_reference_in_every_format(tmp_path, fmt):
    (case,) = scan_dataset(_case(tmp_path / "upload", fmt))
    roles = {image.role: image for image in case.images}
    assert set(roles) == {"input", "reference", "mask"}
    mask = roles["mask"].image.array
    assert mask.shape[1:] == roles["reference"].image.array.shape[1:]
    assert np.array_equal(np.squeeze(mask) > 0, MASK > 0), fmt


def test_a_mask_with_negative_values_is_refused_with_the_reason(tmp_path):
    folder = tmp_path / "upload" / "case001"
    save_npy(folder / "input.npy", REFERENCE.astype(np.float32))
    save_npy(folder / "mask.npy", MASK.astype(np.float32) - 0.5)
    with pytest.raises(DatasetImportError, match="mask has negative values"):
        scan_dataset(tmp_path / "upload")


@pytest.mark.django_db
def test_the_mask_is_stored_with_its_role_and_is_secret_like_the_reference(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    dataset = import_dataset("masked", _case(tmp_path / "upload", "png"))
    image = CaseImage.objects.get(case__dataset=dataset, role=ImageRole.MASK)
    assert image.get_role_display() == "ROI/body mask"
    assert np.array_equal(image.load()[0] > 0, MASK > 0)
    assert ImageRole.MASK in SECRET_ROLES


@pytest.mark.django_db
def test_on_a_hidden_test_set_the_mask_reaches_organisers_only(client, staff_user, reader_user):
    task = make_task(n_cases=1, shape=(1, 12, 10), hidden_references=True)
    case = task.dataset.cases.get()
    mask = add_image(case, ImageRole.MASK, MASK[None].astype(np.float32))
    client.force_login(reader_user)
    assert client.get(f"/cases/{case.pk}/mask/0.png").status_code == 404
    assert client.get(f"/api/arrays/case-images/{mask.pk}/").status_code == 404
    listed = client.get(f"/api/cases/?dataset={task.dataset_id}").json()["results"]
    assert {image["role"] for row in listed for image in row["images"]} == {"input"}
    client.force_login(staff_user)
    assert client.get(f"/cases/{case.pk}/mask/0.png").status_code == 200
    assert client.get(f"/api/arrays/case-images/{mask.pk}/").json()["kind"] == "label"
