"""The one upload copier shared by model, dataset and submission uploads."""

import io

import pytest

from inference.storage import UploadTooLarge, copy_upload, spool_upload


def test_copy_counts_bytes_read_and_removes_a_partial_copy(tmp_path):
    destination = tmp_path / "copy.bin"
    with pytest.raises(UploadTooLarge, match="limit of 1000 bytes"):
        copy_upload(io.BytesIO(b"x" * 5000), destination, limit=1000, chunk_bytes=512)
    assert not destination.exists()


def test_copy_of_a_path_and_a_spool_keep_the_bytes(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 10)
    assert copy_upload(source, tmp_path / "copy.bin", limit=2560).read_bytes() == source.read_bytes()
    handle = io.BytesIO(source.read_bytes())
    handle.read(100)  # an upload already read from is copied from its start
    spooled = spool_upload(handle, limit=10_000)
    try:
        assert spooled.read_bytes() == source.read_bytes()
    finally:
        spooled.unlink()


@pytest.mark.django_db
def test_an_oversized_dataset_upload_is_an_import_error(settings):
    from inference.services.datasets import DatasetImportError, import_dataset

    settings.MEDGEN_MAX_UPLOAD_BYTES = 100
    upload = io.BytesIO(b"PK" + b"\x00" * 500)
    upload.name = "big.zip"
    with pytest.raises(DatasetImportError, match="larger than the limit"):
        import_dataset("big", upload)
