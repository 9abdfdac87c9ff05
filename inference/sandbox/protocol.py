"""Frames between the worker and its sandbox: a JSON header and raw array bytes, never pickle.

A frame is `!I` header length, the UTF-8 JSON header, then for each entry of the header's
`arrays` list (`{"dtype": "<f4", "shape": [2, 1, 64, 64]}`) exactly `prod(shape) * itemsize`
bytes in C order. Only plain numeric dtypes are accepted, and a frame larger than the
reader's `max_bytes` is refused before anything is allocated.
"""

import json
import struct

import numpy as np

HEADER = struct.Struct("!I")
MAX_HEADER_BYTES = 1 << 20
ALLOWED_KINDS = "biuf"  # bool, signed, unsigned, float


class ProtocolError(Exception):
    """The other side sent something that is not a frame (or closed the pipe mid-frame)."""


class Closed(ProtocolError):
    """The pipe was closed between frames."""


def _dtype(text):
    dtype = np.dtype(text)
    if dtype.kind not in ALLOWED_KINDS or dtype.hasobject or dtype.fields is not None:
        raise ProtocolError(f"dtype {text!r} is not allowed in a frame")
    return dtype


def send(stream, header, arrays=()):
    """Write one frame to a binary stream and flush it."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    for array in arrays:
        _dtype(array.dtype.str)
    header = {**header, "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]}
    body = json.dumps(header).encode()
    stream.write(HEADER.pack(len(body)))
    stream.write(body)
    for array in arrays:
        stream.write(memoryview(array).cast("B"))
    stream.flush()


def _read_exactly(stream, n, *, between_frames=False):
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            if between_frames and left == n:
                raise Closed("the other side closed the pipe")
            raise ProtocolError(f"the pipe closed {n - left} bytes into a {n}-byte read")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(stream, *, max_bytes):
    """Read one frame: (header dict, list of arrays). Raises `Closed` at a clean end of the pipe."""
    (length,) = HEADER.unpack(_read_exactly(stream, HEADER.size, between_frames=True))
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"a frame header of {length} bytes is too large")
    try:
        header = json.loads(_read_exactly(stream, length))
    except ValueError as exc:
        raise ProtocolError(f"a frame header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("a frame header is not an object")
    specs = header.pop("arrays", [])
    sizes = []
    for spec in specs:
        dtype = _dtype(spec["dtype"])
        shape = [int(n) for n in spec["shape"]]
        if any(n < 0 for n in shape):
            raise ProtocolError(f"negative array shape {shape}")
        sizes.append((dtype, shape, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize))
    if sum(size for _, _, size in sizes) > max_bytes:
        raise ProtocolError(f"a frame of more than {max_bytes} bytes of arrays was refused")
    arrays = []
    for dtype, shape, size in sizes:
        buffer = bytearray(size)
        _read_into(stream, memoryview(buffer))
        arrays.append(np.frombuffer(buffer, dtype=dtype).reshape(shape))
    return header, arrays


def _read_into(stream, view):
    done = 0
    while done < len(view):
        n = stream.readinto(view[done:])
        if not n:
            raise ProtocolError(f"the pipe closed {done} bytes into a {len(view)}-byte array")
        done += n
