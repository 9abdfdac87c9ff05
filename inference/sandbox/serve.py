"""The sandbox's work once confined: drop privileges, check and load the model, answer requests."""

import encodings.idna  # noqa: F401 - socket looks it up lazily, after the user can no longer read the stdlib
import os
import socket

import numpy as np

from .. import runner, sampling
from . import confine, protocol, tsops
from .errors import ExternalData, ForbiddenOperation, ModelArtifactError


def run(config, data, requests, replies, *, summary, target):
    device = config["device"]
    memory = int(config["memory_bytes"])
    torch = None
    sampling_config = config.get("sampling")
    if config["format"] == "torchscript" or device.startswith("cuda") or sampling_config:
        import torch  # noqa: PLC0415 - heavy, and only after confinement (see child.py)

        torch.set_num_threads(int(config["threads"]))
        if device.startswith("cuda"):
            torch.cuda.init()
    else:
        import onnx  # noqa: F401, PLC0415 - loaded before the user is dropped
        import onnxruntime  # noqa: F401, PLC0415
    if sampling_config:  # a noise predictor: our sampling loop runs here, with MONAI's schedulers
        if config["format"] == "onnx":
            import onnx  # noqa: F401, PLC0415
            import onnxruntime  # noqa: F401, PLC0415
        import monai.networks.schedulers  # noqa: F401, PLC0415 - before the user is dropped
    if target is not None:
        confine.drop_privileges(*target)
        confine.limit_processes(512)
        summary.append(f"running as uid {target[0]}, gid {target[1]}, no supplementary groups")
    else:
        summary.append(f"running as uid {os.getuid()} (no user to drop to)")
    confine.die_with_parent()
    if device.startswith("cuda"):
        fraction = min(1.0, memory / torch.cuda.get_device_properties(0).total_memory)
        torch.cuda.set_per_process_memory_fraction(fraction)
        summary.append(f"GPU memory ≤ {fraction:.0%} of the device; host memory watched by the worker")
    else:
        confine.limit_memory(memory)
        summary.append(f"address space ≤ {memory / 2**30:g} GiB")
    protocol.send(replies, {"ok": True, "event": "confined", "confinement": summary})

    try:
        model = _load(config, data, device)
        if sampling_config:
            model = sampling.Sampler(model, sampling.Sampling.from_dict(sampling_config))
    except Exception as exc:
        return _reply_error(replies, exc)
    del data
    protocol.send(
        replies, {"ok": True, "event": "loaded", "device": model.device, "parameter_count": model.parameter_count}
    )
    while True:
        try:
            header, arrays = protocol.receive(requests, max_bytes=memory)
        except protocol.Closed:
            return 0
        if header.get("op") == "close":
            return 0
        if header.get("op") == "probe":
            protocol.send(replies, {"ok": True, "probe": probe(header)})
            continue
        if header.get("op") != "predict" or len(arrays) != 1:
            _reply_error(replies, protocol.ProtocolError(f"unknown request {header.get('op')!r}"))
            continue
        try:
            seeds = {"seeds": header["seeds"]} if header.get("seeds") is not None and sampling_config else {}
            out = model.predict(arrays[0], seed=header.get("seed"), **seeds)
        except Exception as exc:
            _reply_error(replies, exc)
            continue
        protocol.send(replies, {"ok": True}, [np.ascontiguousarray(out, dtype=np.float32)])


def _load(config, data, device):
    if config["format"] == "torchscript":
        tsops.check_archive(data)
        model = runner.TorchScriptModel(data, device)
        tsops.check_module(model.module)
        return model
    return runner.OnnxModel(data, device, external_data_dir=config["scratch"], threads=config["threads"])


def _classify(exc):
    if isinstance(exc, MemoryError) or _is_out_of_memory(exc):
        return "memory"
    if isinstance(exc, ForbiddenOperation):
        return "forbidden"
    if isinstance(exc, ExternalData):
        return "external"
    if isinstance(exc, ModelArtifactError):
        return "invalid"
    return "error"


def _is_out_of_memory(exc):
    text = str(exc)
    return any(s in text for s in ("can't allocate memory", "out of memory", "Failed to allocate memory", "bad_alloc"))


def _reply_error(replies, exc):
    protocol.send(replies, {"ok": False, "error": _classify(exc), "message": runner.first_line(exc)})
    return 1


def probe(request):
    """Try, from inside the confinement, what the host asks: write and read files, connect, make a socket."""

    def attempt(action):
        try:
            action()
        except OSError as exc:
            return f"refused: {exc.strerror or exc}"
        return "allowed"

    def write(path):
        with open(path, "x") as handle:
            handle.write("probe")

    def read(path):
        with open(path, "rb") as handle:
            handle.read(1)

    def connect(address):
        host, port = address
        with socket.create_connection((host, int(port)), timeout=2):
            pass

    return {
        "uid": os.getuid(),
        "write": {path: attempt(lambda p=path: write(p)) for path in request.get("write", [])},
        "read": {path: attempt(lambda p=path: read(p)) for path in request.get("read", [])},
        "connect": {f"{h}:{p}": attempt(lambda a=(h, p): connect(a)) for h, p in request.get("connect", [])},
        "socket": attempt(lambda: socket.socket().close()),
    }
