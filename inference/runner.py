"""Loading and running uploaded generative models, without executing uploaded Python.

Only two formats are accepted:

* TorchScript archives (`torch.jit.save`): a zip with `code/` and `constants.pkl`. They are
  read by TorchScript's own C++ unpickler, which knows only TorchScript types and cannot
  import arbitrary Python globals, unlike `torch.load`/`pickle`, which this module never calls.
* ONNX protobufs, run by onnxruntime. Tensors stored as external data (a path that could
  point anywhere on the server) are refused.

Plain pickles and `torch.save` checkpoints are recognised and refused with a message.

Array convention: a batch is `(B, C, *spatial)` float32, spatial `(H, W)` or `(D, H, W)`.
No Django import: this module is used by the worker tasks and tested on its own.
"""

import hashlib
import io
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .sandbox import onnxcheck, tsops
from .sandbox.errors import ModelArtifactError

PICKLE_PROTOCOL_MARKER = 0x80
ZIP_MAGIC = b"PK\x03\x04"


__all__ = ["ModelArtifactError"]  # defined with the sandbox's errors, re-exported here


@dataclass
class ArtifactInfo:
    format: str  # "torchscript" | "onnx"
    sha256: str
    size_bytes: int


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sniff_format(path):
    """Tell TorchScript from ONNX by content; refuse pickles and `torch.save` checkpoints."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise ModelArtifactError("The file is empty.")
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise ModelArtifactError(f"The file looks like a zip archive but is corrupt: {exc}.") from None
        has_code = any("/code/" in name or name.startswith("code/") for name in names)
        has_constants = any(name.endswith("constants.pkl") for name in names)
        if has_code and has_constants:
            return "torchscript"
        if any(name.endswith("data.pkl") for name in names):
            raise ModelArtifactError(
                "This is a torch.save checkpoint (a pickle), which is never loaded here because unpickling "
                "runs arbitrary code. Export the model with torch.jit.script or torch.jit.trace and torch.jit.save, "
                "or as ONNX."
            )
        raise ModelArtifactError("A zip archive that is not a TorchScript model.")
    if head[0] == PICKLE_PROTOCOL_MARKER and 2 <= head[1] <= 5:
        raise ModelArtifactError(
            "This is a Python pickle, which is never loaded here because unpickling runs arbitrary code. "
            "Upload a TorchScript (torch.jit.save) or ONNX model."
        )
    if path.suffix.lower() == ".onnx" or _looks_like_onnx(path):
        return "onnx"
    raise ModelArtifactError("Unknown model format: upload a TorchScript (.pt) or ONNX (.onnx) file.")


def _looks_like_onnx(path):
    try:
        _load_onnx_proto(path)
    except ModelArtifactError:
        return False
    return True


def _load_onnx_proto(source):
    """An ONNX proto from a path or from the file's bytes, never following external data."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        if isinstance(source, (bytes, bytearray)):
            proto = onnx.load_model_from_string(bytes(source))
        else:
            proto = onnx.load_model(str(source), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelArtifactError(f"Not a readable ONNX model: {exc}") from None
    if not proto.graph.node and not proto.graph.output:
        raise ModelArtifactError("Not a readable ONNX model: the graph is empty.")
    return proto


def _check_onnx(source):
    import onnx

    proto = _load_onnx_proto(source)
    onnxcheck.check_model(proto)  # every tensor anywhere, not only the initializers
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ModelArtifactError(f"The ONNX model does not pass onnx.checker: {exc}") from None
    return proto


def inspect_artifact(path):
    path = Path(path)
    fmt = sniff_format(path)
    return ArtifactInfo(format=fmt, sha256=sha256_of(path), size_bytes=path.stat().st_size)


def preferred_device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class LoadedModel:
    """A model ready to predict on float32 numpy batches, on one device."""

    format = ""

    def __init__(self, device):
        self.device = device

    def predict(self, batch, seed=None):  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def parameter_count(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def synchronize(self):
        """Wait for the device (timing); a no-op on the CPU."""
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()


class TorchScriptModel(LoadedModel):
    """A TorchScript archive (a path or its bytes), loaded only after its code passed `tsops`."""

    format = "torchscript"

    def __init__(self, source, device):
        import torch

        super().__init__(device)
        data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        tsops.check_archive(data)  # loading runs the archive's __setstate__ methods
        try:
            self.module = torch.jit.load(io.BytesIO(data), map_location=device)
        except Exception as exc:  # torch raises RuntimeError and friends for corrupt archives
            raise ModelArtifactError(f"TorchScript could not load the file: {first_line(exc)}") from None
        tsops.check_module(self.module)
        self.module.eval()

    @property
    def parameter_count(self):
        return int(sum(p.numel() for p in self.module.parameters()))

    def predict(self, batch, seed=None):
        import torch

        if seed is not None:
            torch.manual_seed(seed)
            if self.device.startswith("cuda"):
                torch.cuda.manual_seed_all(seed)
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            out = self.module(tensor)
            if isinstance(out, (tuple, list)):
                out = out[0]
            if not isinstance(out, torch.Tensor):
                raise ModelArtifactError(f"The model returned {type(out).__name__}, not a tensor.")
            if out.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
                raise ModelArtifactError(f"The model returned dtype {out.dtype}; a floating-point tensor is needed.")
            return out.float().cpu().numpy()

    def predict_noise(self, x, t):
        """A noise predictor's ε(x_t, t): `module(x, t)` on tensors already on the device (see `sampling`)."""
        import torch

        out = self.module(x, t)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            raise ModelArtifactError("The noise predictor did not return a floating-point tensor.")
        return out


class OnnxModel(LoadedModel):
    format = "onnx"

    def __init__(self, source, device, external_data_dir=None, threads=None):
        import onnxruntime as ort

        super().__init__(device)
        proto = _check_onnx(source)
        self._parameter_count = int(sum(np.prod(t.dims) if len(t.dims) else 1 for t in proto.graph.initializer))
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        if external_data_dir is not None:  # onnxruntime cannot turn external data off; point it at an empty dir
            options.add_session_config_entry("session.model_external_initializers_file_folder_path", external_data_dir)
        try:
            self.session = ort.InferenceSession(proto.SerializeToString(), sess_options=options, providers=providers)
        except Exception as exc:
            raise ModelArtifactError(f"onnxruntime could not load the model: {first_line(exc)}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.device = "cuda" if providers[0].startswith("CUDA") else "cpu"

    @property
    def parameter_count(self):
        return self._parameter_count

    def predict(self, batch, seed=None):
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        if not np.issubdtype(out.dtype, np.floating):
            raise ModelArtifactError(f"The model returned dtype {out.dtype}; a floating-point tensor is needed.")
        return out.astype(np.float32, copy=False)

    def predict_noise(self, x, t):
        """ε(x_t, t) from a graph whose first two inputs are x (float32) and t (int64, or float32 if so declared)."""
        import torch

        inputs = self.session.get_inputs()
        if len(inputs) < 2:
            raise ModelArtifactError("A noise predictor in ONNX takes two inputs, x_t and t.")
        t_dtype = np.float32 if inputs[1].type == "tensor(float)" else np.int64
        feed = {inputs[0].name: x.cpu().numpy().astype(np.float32), inputs[1].name: t.cpu().numpy().astype(t_dtype)}
        out = self.session.run(None, feed)[0]
        if not np.issubdtype(out.dtype, np.floating):
            raise ModelArtifactError(
                f"The noise predictor returned dtype {out.dtype}; a floating-point tensor is needed."
            )
        return torch.from_numpy(out.astype(np.float32, copy=False)).to(x.device)


def first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_cache = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 4


def load_model(path, fmt, sha256, device=None):
    """Load a model once per worker process: cached by sha256 and device (LRU)."""
    device = device or preferred_device()
    key = (sha256, device)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = TorchScriptModel(path, device) if fmt == "torchscript" else OnnxModel(path, device)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache():
    with _cache_lock:
        _cache.clear()


def dry_run(model, in_channels, out_channels, spatial_shape, batch_size=2):
    """Run once on zeros-and-noise of the declared shape and check what comes back.

    Axes declared as None (any size) are tried at 64. Returns the output shape.
    """
    spatial = [64 if s is None else int(s) for s in spatial_shape]
    rng = np.random.default_rng(0)
    dummy = rng.random((batch_size, in_channels, *spatial), dtype=np.float32)
    try:
        out = model.predict(dummy, seed=0)
    except ModelArtifactError:
        raise
    except Exception as exc:
        raise ModelArtifactError(
            f"The model failed on a dummy input of shape {tuple(dummy.shape)}: {first_line(exc)}"
        ) from None
    expected = (batch_size, out_channels, *spatial)
    if tuple(out.shape) != expected:
        raise ModelArtifactError(
            f"Wrong output shape: input {tuple(dummy.shape)} gave {tuple(out.shape)}, expected {expected} "
            f"(out_channels={out_channels}, same spatial size as the input)."
        )
    if not np.isfinite(out).all():
        raise ModelArtifactError("The model returned NaN or Inf on a dummy input.")
    return tuple(out.shape)


# --- Intensity normalisation ---------------------------------------------------------


def normalise(array, mode):
    """Per-case normalisation of a model input; returns the array and what undoes it.

    `minmax` maps the case to [0, 1]; `zscore` to zero mean, unit variance. The model's
    output is mapped back with the same parameters (`denormalise`), so stored outputs
    are in the dataset's intensity units.
    """
    if mode == "none":
        return array, None
    if mode == "minmax":
        low, high = float(array.min()), float(array.max())
        scale = (high - low) or 1.0
        return (array - low) / scale, (low, scale)
    if mode == "zscore":
        mean, std = float(array.mean()), float(array.std())
        std = std or 1.0
        return (array - mean) / std, (mean, std)
    raise ValueError(f"Unknown normalisation {mode!r}")


def denormalise(array, mode, params):
    if mode == "none" or params is None:
        return array
    offset, scale = params
    return array * scale + offset


@dataclass
class CasePrediction:
    samples: list  # one (C_out, *spatial) float32 array per sample
    seconds_per_sample: float


class ShapeMismatch(ModelArtifactError):
    pass


def check_case_shape(case_shape, in_channels, spatial_shape):
    """Raise ShapeMismatch unless a case `(C, *spatial)` fits the model's declaration.

    A 2D model also takes a volume `(C, D, H, W)`, slice by slice.
    """
    channels, spatial = case_shape[0], tuple(case_shape[1:])
    if channels != in_channels:
        raise ShapeMismatch(f"input has {channels} channel(s), the model takes {in_channels}")
    if len(spatial) == len(spatial_shape):
        plane = spatial
    elif len(spatial) == 3 and len(spatial_shape) == 2:
        plane = spatial[1:]
    else:
        raise ShapeMismatch(f"a {len(spatial)}D input {spatial} cannot go to a {len(spatial_shape)}D model")
    for got, want in zip(plane, spatial_shape, strict=True):
        if want is not None and got != want:
            raise ShapeMismatch(f"input spatial shape {spatial} does not match the model's {tuple(spatial_shape)}")


def sample_seed(seed, sample, position):
    """Seed of one stochastic call: distinct per sample and per batch position, repeatable."""
    return None if seed is None else (seed * 1_000_003 + sample * 7919 + position) % (2**63)


def predict_cases(model, arrays, *, spatial_dims, normalisation, samples, seed, batch_size, positions=None):
    """Predict `samples` outputs for each case array; batched; per-case timing.

    Cases with the model's dimensionality are stacked into batches of `batch_size`; a
    volume given to a 2D model is cut into slices that form the batches. The reported
    time per sample is the batch's wall time shared equally among its cases (the honest
    per-case figure for batched inference). `positions` (each case's index in the whole
    dataset) make stochastic samples independent of how a run was batched or resumed.
    """
    positions = list(range(len(arrays))) if positions is None else positions

    results = [None] * len(arrays)
    normalised = [normalise(a.astype(np.float32, copy=False), normalisation) for a in arrays]
    slicewise = [a.ndim - 1 == 3 and spatial_dims == 2 for a in arrays]

    sync = model.synchronize

    whole = [i for i in range(len(arrays)) if not slicewise[i]]
    for start in range(0, len(whole), batch_size):
        idx = whole[start : start + batch_size]
        shapes = {normalised[i][0].shape for i in idx}
        groups = [idx] if len(shapes) == 1 else [[i] for i in idx]
        for group in groups:
            batch = np.stack([normalised[i][0] for i in group])
            outs, seconds = [], 0.0
            for k in range(samples):
                # A diffusion sampler seeds each item itself: the seeds of the cases' own positions.
                per_item = {}
                if getattr(model, "sampling", None) is not None and seed is not None:
                    per_item = {"seeds": [sample_seed(seed, k, positions[i]) for i in group]}
                sync()
                t0 = time.perf_counter()
                out = model.predict(batch, seed=sample_seed(seed, k, positions[group[0]]), **per_item)
                sync()
                seconds += time.perf_counter() - t0
                outs.append(out)
            for j, i in enumerate(group):
                case_samples = [denormalise(o[j], normalisation, normalised[i][1]) for o in outs]
                results[i] = CasePrediction(case_samples, seconds / samples / len(group))

    for i in (i for i in range(len(arrays)) if slicewise[i]):
        volume, params = normalised[i]  # (C, D, H, W)
        slices = np.moveaxis(volume, 1, 0)  # (D, C, H, W)
        outs, seconds = [], 0.0
        for k in range(samples):
            parts = []
            for start in range(0, slices.shape[0], batch_size):
                sync()
                t0 = time.perf_counter()
                call_seed = sample_seed(seed, k, positions[i] * 100_003 + start)
                parts.append(model.predict(slices[start : start + batch_size], seed=call_seed))
                sync()
                seconds += time.perf_counter() - t0
            outs.append(denormalise(np.moveaxis(np.concatenate(parts), 0, 1), normalisation, params))
        results[i] = CasePrediction(outs, seconds / samples)
    return results
