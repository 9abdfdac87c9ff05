"""Small files that expand, or claim to expand, to huge images: built in milliseconds, never decompressed here.

A run of zero bytes is deflated once per MiB with a full flush, which resets the compressor,
so that compressed block can be repeated to make a valid stream of any length (~1 KB per MiB).
"""

import io
import struct
import zipfile
import zlib

import nibabel
import numpy as np

MIB = 1024**2
_ZERO_MIB = bytes(MIB)


def _zero_block():
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(_ZERO_MIB) + compressor.flush(zlib.Z_FULL_FLUSH)


ZERO_BLOCK = _zero_block()


def raw_deflate(prefix, zeros):
    """A raw deflate stream of `prefix` then `zeros` zero bytes, and the stream's size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks, rest = divmod(zeros, MIB)
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    return head + ZERO_BLOCK * blocks + tail


def _checksum(function, start, prefix, zeros):
    value = function(prefix, start)
    blocks, rest = divmod(zeros, MIB)
    for _ in range(blocks):
        value = function(_ZERO_MIB, value)
    return function(bytes(rest), value)


def gzip_bomb(prefix, zeros):
    """A gzip file of `prefix` then `zeros` zero bytes (checksum and size trailer included)."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    crc = _checksum(zlib.crc32, 0, prefix, zeros)
    return header + raw_deflate(prefix, zeros) + struct.pack("<II", crc, (len(prefix) + zeros) & 0xFFFFFFFF)


def zlib_bomb(prefix, zeros):
    adler = _checksum(zlib.adler32, 1, prefix, zeros)
    return b"\x78\xda" + raw_deflate(prefix, zeros) + struct.pack(">I", adler)


def nifti_header(shape, dtype=np.float32, *, vox_offset=352, extension=b""):
    """A NIfTI-1 header (348 bytes), its extension flag and `extension`, up to `vox_offset`."""
    header = nibabel.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header["vox_offset"] = vox_offset
    flag = b"\x01\x00\x00\x00" if extension else b"\x00\x00\x00\x00"
    block = header.binaryblock + flag + extension
    return block + bytes(max(0, vox_offset - len(block)))


def nifti_extension(content_size, code=6):
    """An extension header claiming `content_size` bytes of content (which the caller supplies, or not)."""
    return struct.pack("<ii", content_size + 8, code)


def npy_header(shape, dtype="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def png_bomb(width, height, *, grey=True):
    """An 8-bit PNG of `width` × `height` zero pixels (RGB unless grey); about 1 KB per MiB of pixels."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0 if grey else 2, 0, 0, 0)
    row_bytes = 1 + width * (1 if grey else 3)  # a filter byte (0) per row
    idat = zlib_bomb(b"", row_bytes * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_header_only(width, height):
    """A PNG that declares `width` × `height` and holds no pixel data at all."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def zip_of(entries, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _dicom_meta(transfer_syntax, dataset):
    from pydicom.dataset import FileMetaDataset

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = transfer_syntax
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return meta


def _mr_dataset():
    from pydicom.dataset import Dataset
    from pydicom.uid import MRImageStorage, generate_uid

    dataset = Dataset()
    dataset.SOPClassUID, dataset.SOPInstanceUID, dataset.Modality = MRImageStorage, generate_uid(), "MR"
    return dataset


def deflated_dicom_bomb(zeros):
    """A DICOM file whose deflated data set ends in a private OB element of `zeros` zero bytes."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    dataset = _mr_dataset()
    meta = DicomBytesIO()
    write_file_meta_info(meta, _dicom_meta(DeflatedExplicitVRLittleEndian, dataset), enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, dataset)
    element = struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, zeros)
    return bytes(128) + b"DICM" + meta.getvalue() + raw_deflate(body.getvalue() + element, zeros)


def rle_dicom_claim(rows, columns, frames):
    """An RLE DICOM file declaring `frames` frames of `rows` × `columns` 16-bit pixels, holding a few bytes."""
    from pydicom.encaps import encapsulate
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import RLELossless

    dataset = _mr_dataset()
    dataset.Rows, dataset.Columns, dataset.NumberOfFrames = rows, columns, frames
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 0
    dataset.PixelData = encapsulate([bytes(64)] * frames)
    dataset.file_meta = _dicom_meta(RLELossless, dataset)
    buffer = DicomBytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
