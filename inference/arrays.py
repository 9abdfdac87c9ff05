"""Arrays for the browser viewer: a small JSON header plus raw little-endian float32 bytes (no Django).

Canonical arrays are float32 `.npy` files of shape (C, H, W) or (C, D, H, W). The viewer
shows one plane per array:

* one channel (or more than two): channel 0;
* two channels (real, imaginary k-space, as reconstruction inputs are stored): the log
  magnitude log(1 + √(re² + im²)), the same picture `preview.py` draws;
* a difference map ‖output − reference‖₂ over channels (|output − reference| for one channel).

A volume is served slice by slice (H × W) or whole (D × H × W, C order; the header's
`whole_bytes` says how large, and the server refuses whole arrays past a limit). Files are opened
with `np.load(mmap_mode="r")` when they have a local path, so a slice of a large volume
reads only that slice's pages; window defaults come from a strided subsample for the same
reason.
"""

import io

import numpy as np

from core import errors

#: Voxels read to estimate the default window (a strided subsample of larger arrays).
WINDOW_SAMPLE_VOXELS = 1 << 20


class BadRequest(errors.InvalidInput):
    """A request the client can fix (e.g. a slice index out of range); the message says how."""


class TooLarge(errors.TooLarge, BadRequest):
    """A whole-array request past the server's size limit (413): the client should ask for slices."""


def open_npy(path=None, data=None):
    """A canonical array from a local path (memory-mapped, nothing read yet) or from `.npy` bytes."""
    if path is not None:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    return np.load(io.BytesIO(data), allow_pickle=False)


def check_canonical(array):
    if array.ndim not in (3, 4) or array.shape[0] < 1:
        raise ValueError(f"Expected (C, H, W) or (C, D, H, W), got shape {tuple(array.shape)}.")


def slice_count(array):
    """Slices along D for a volume, 1 for a 2D image."""
    return array.shape[1] if array.ndim == 4 else 1


def whole_bytes(array):
    """Bytes of the whole shown plane stack, float32 ((H × W) or (D × H × W)), from the shape alone."""
    return int(np.prod(array.shape[1:], dtype=np.int64)) * 4


def check_whole_size(array, limit):
    """Raise `TooLarge` when the whole shown array (float32) exceeds `limit` bytes; reads no data."""
    size = whole_bytes(array)
    if limit is not None and size > limit:
        count = slice_count(array)
        shape = " × ".join(str(int(s)) for s in array.shape[1:])
        raise TooLarge(
            f"The whole array ({shape} float32, {size} bytes) is over this server's limit of {limit} bytes "
            f"per request (MEDGEN_VIEWER_MAX_ARRAY_BYTES): request slices with ?slice=k, k in 0 … {count - 1}."
        )


def display_kind(array, kind="image"):
    """How the shown plane is made: "log-magnitude" for a two-channel image, else "channel-0"."""
    return "log-magnitude" if kind == "image" and array.shape[0] == 2 else "channel-0"


def parse_slice(value, count):
    """The `slice` query parameter: None (whole array) or an integer index in [0, count)."""
    if value is None or value == "":
        return None
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"'slice' must be an integer, got {value!r}.") from None
    if not 0 <= index < count:
        raise BadRequest(f"'slice' {index} is out of range: this array has {count} slice(s), 0 … {count - 1}.")
    return index


def _select(array, index):
    """(C, H, W) for `index` (or a 2D image), else the whole (C, D, H, W); reads only those bytes."""
    if array.ndim == 3:
        return array
    return array[:, index] if index is not None else array


def _to_display(selected, kind="image"):
    """(C, *spatial) → float32 (*spatial), per the rules in the module docstring."""
    selected = np.asarray(selected, dtype=np.float32)
    if kind == "image" and selected.shape[0] == 2:
        return np.log1p(np.hypot(selected[0], selected[1]))
    return np.array(selected[0], dtype=np.float32)


def display_plane(array, index=None, kind="image"):
    """The shown values of slice `index` (H, W), or of the whole array ((H, W) or (D, H, W)).

    `kind` "image" shows a two-channel array as its log magnitude; any other kind (an SD
    map) shows channel 0.
    """
    return _to_display(_select(array, index), kind)


def difference_plane(output, reference, index=None):
    """‖output − reference‖₂ over channels at slice `index` (or the whole array), float32."""
    if output.shape != reference.shape:
        raise ValueError(f"Output shape {tuple(output.shape)} differs from the reference {tuple(reference.shape)}.")
    out = _select(output, index)
    ref = _select(reference, index)
    # Channel by channel in float32: a whole 256³ volume must not cost eight float64 copies.
    total = np.zeros(out.shape[1:], dtype=np.float32)
    for channel in range(out.shape[0]):
        difference = np.subtract(out[channel], ref[channel], dtype=np.float32)
        total += difference * difference
    return np.sqrt(total, out=total)


def difference_sample(output, reference):
    """The difference map over the same strided slices `window_sample` picks, for its window."""
    return difference_plane(window_sample(output), window_sample(reference))


def to_bytes(plane):
    """Little-endian float32 bytes in C order, the layout a JavaScript Float32Array reads."""
    return np.ascontiguousarray(plane, dtype="<f4").tobytes()


def _sample_indices(count, budget):
    step = max(1, int(np.ceil(count / budget)))
    return slice(0, count, step)


def window_sample(array, max_voxels=WINDOW_SAMPLE_VOXELS):
    """A strided subsample of the array's slices (at most ~`max_voxels` voxels) for window estimates.

    For a volume whole slices are taken at a regular stride, so a memory-mapped file is read
    only where those slices lie.
    """
    if array.ndim == 4:
        voxels_per_slice = int(np.prod(array.shape[2:]))
        picked = array[:, _sample_indices(array.shape[1], max(1, max_voxels // voxels_per_slice))]
        return picked
    return array


def _finite(values):
    values = np.asarray(values, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def window_presets(values, nonnegative=False):
    """Default window and presets from a sample of the shown values.

    Images: 1st–99th percentile (default), 5th–95th, full range. Maps that are ≥ 0 by
    construction (difference, SD; `nonnegative=True`): 0 … 99th percentile (default), 0 … max;
    label masks (`nonnegative="label"`): 0 … max. Each preset is
    `{"name", "center", "width", "lower", "upper"}` with width > 0.
    """
    finite = _finite(values)
    if finite.size == 0:
        finite = np.zeros(1)
    low, high = float(finite.min()), float(finite.max())
    if nonnegative == "label":
        ranges = [("0 … max", 0.0, high)]
    elif nonnegative:
        ranges = [("0 … p99", 0.0, float(np.percentile(finite, 99))), ("0 … max", 0.0, high)]
    else:
        p1, p5, p95, p99 = (float(v) for v in np.percentile(finite, [1, 5, 95, 99]))
        ranges = [("1–99 %", p1, p99), ("5–95 %", p5, p95), ("Full range", low, high)]
    presets = []
    for name, lower, upper in ranges:
        if not upper > lower:  # a constant image: a unit window around its value
            lower, upper = lower - 0.5, lower + 0.5
        presets.append(
            {"name": name, "center": (lower + upper) / 2, "width": upper - lower, "lower": lower, "upper": upper}
        )
    return presets, {"min": low, "max": high}


def header(array, spacing=None, kind="image", sample=None):
    """The JSON header of an array as the viewer shows it.

    `array`: the canonical (C, H, W) or (C, D, H, W) array (may be memory-mapped).
    `spacing`: mm per spatial axis, in the same order; 1 mm when unknown.
    `kind`: "image" (channel 0 or log magnitude), "label", "difference" or "uncertainty" (≥ 0).
    `sample`: the shown values of `window_sample(array)`, when the caller has computed them
    (difference maps); otherwise taken from the array itself.
    """
    check_canonical(array)
    spatial = [int(s) for s in array.shape[1:]]
    spacing = [float(s) for s in spacing] if spacing and len(spacing) == len(spatial) else [1.0] * len(spatial)
    if sample is None:
        sample = _to_display(window_sample(array), kind)
    nonnegative = "label" if kind == "label" else kind in ("difference", "uncertainty")
    presets, value_range = window_presets(sample, nonnegative=nonnegative)
    default = presets[0]
    return {
        "kind": kind,
        "display": "norm-over-channels" if kind == "difference" else display_kind(array, kind),
        "shape": spatial,
        "channels": int(array.shape[0]),
        "dtype": "float32",
        "byte_order": "little",
        "spacing": spacing,
        "slices": slice_count(array),
        "whole_bytes": whole_bytes(array),
        "rows": spatial[-2],
        "columns": spatial[-1],
        "window": {"center": default["center"], "width": default["width"]},
        "presets": presets,
        "range": value_range,
    }
