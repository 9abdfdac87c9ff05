"""OpenAI CLIP ViT-B/32 image encoder in plain torch, and a tensor reader for its TorchScript file.

The weights are OpenAI's ``ViT-B-32.pt`` as the ``clip`` package downloads it (a TorchScript archive,
fp16 tensors). We do not execute that archive: :func:`read_torchscript_tensors` opens the zip, reads
its ``data.pkl`` with a restricted unpickler (the only callables it resolves are a tensor rebuild of
our own, the storage dtypes and the pass-through list/type-tag helpers TorchScript writes; every
``__torch__.*`` module class becomes an inert attribute holder) and returns the tensors under their
``state_dict`` names. Nothing in the archive's ``code/`` is compiled or run, no ``__setstate__``
runs, and any other global in the pickle is refused. ``torch.jit.load`` would compile the file's
TorchScript and run its modules' ``__setstate__``; reading the tensors needs neither, and the same
reader works on any archive of the same layout. (A test checks that it returns exactly
what ``torch.jit.load`` then ``state_dict()`` gives on a traced copy of OpenAI's model.)

:class:`CLIPVisionTransformer` is OpenAI's ``VisionTransformer`` (clip/model.py) with the same
parameter names below ``visual.``; its architecture is read off the state dict as OpenAI's
``build_model`` does (width, layers, patch size, grid, output width; heads = width / 64). Its output
is the projected image embedding (512-d for ViT-B/32), not normalised.

Preprocessing (:func:`preprocess`) is OpenAI's ``_transform(224)`` applied to 8-bit grey images:
resize so the shorter side is 224 with PIL bicubic (torchvision's ``Resize(224)`` on a PIL image
calls ``PIL.Image.resize`` with the same size rule), centre crop 224 × 224 (torchvision's offsets),
grey replicated to RGB, /255, then CLIP's mean and std.
"""

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image
from torch import nn

WEIGHTS_FILENAME = "ViT-B-32.pt"
# The sha256 is the path component of the URL in openai/CLIP's clip/clip.py _MODELS["ViT-B/32"],
# which clip._download checks after downloading.
WEIGHTS_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
INPUT_SIZE = 224
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

_DTYPES = {
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class TorchScriptArchiveError(ValueError):
    """The file is not a TorchScript archive this reader accepts; the message says why."""


class _ScriptObject:
    """An inert stand-in for a ``__torch__.*`` module: BUILD fills its attributes, nothing else runs."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise TorchScriptArchiveError(f"a module's state is a {type(state).__name__}, not attributes")
        self.__dict__["_attributes"] = state


class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


def _passthrough(value, *args):
    return value


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, torch.Tensor):
        raise TorchScriptArchiveError("a tensor refers to something that is not a storage")
    return storage.as_strided(tuple(size), tuple(stride), int(offset))


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, read_record):
        super().__init__(io.BytesIO(data))
        self._read_record = read_record
        self._storages = {}

    def find_class(self, module, name):
        if module.startswith("__torch__"):
            return type(name, (_ScriptObject,), {})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(_DTYPES[name])
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch.jit._pickle" and (name.startswith("build_") or name == "restore_type_tag"):
            return _passthrough
        raise TorchScriptArchiveError(f"the archive refers to {module}.{name}, which this reader does not load")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise TorchScriptArchiveError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise TorchScriptArchiveError("a storage of unknown type")
        if key not in self._storages:
            raw = self._read_record(f"data/{key}")
            itemsize = torch.empty((), dtype=storage_type.dtype).element_size()
            if len(raw) < int(numel) * itemsize:
                raise TorchScriptArchiveError(f"storage {key} is truncated")
            flat = torch.frombuffer(bytearray(raw[: int(numel) * itemsize]), dtype=storage_type.dtype)
            self._storages[key] = flat
        return self._storages[key]


def read_torchscript_tensors(data: bytes) -> "OrderedDict[str, torch.Tensor]":
    """The tensors of a TorchScript archive's module tree under their state-dict names (``visual.conv1.weight``).

    ``data``: the archive's bytes. Raises :class:`TorchScriptArchiveError` for anything else.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise TorchScriptArchiveError("not a zip archive (TorchScript files are zip archives)") from None
    names = archive.namelist()
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1 or not any(n.endswith("/constants.pkl") for n in names):
        raise TorchScriptArchiveError("no TorchScript data.pkl and constants.pkl in the archive")
    root = pickles[0].split("/")[0]

    def read_record(name):
        try:
            return archive.read(f"{root}/{name}")
        except KeyError:
            raise TorchScriptArchiveError(f"the archive has no record {name}") from None

    try:
        top = _Unpickler(read_record("data.pkl"), read_record).load()
    except TorchScriptArchiveError:
        raise
    except Exception as exc:  # a malformed pickle
        raise TorchScriptArchiveError(f"data.pkl does not unpickle ({type(exc).__name__})") from None
    if not isinstance(top, _ScriptObject):
        raise TorchScriptArchiveError("data.pkl does not hold a module")
    tensors = OrderedDict()

    def walk(obj, prefix, depth):
        if depth > 64:
            raise TorchScriptArchiveError("the module tree is too deep")
        for name, value in obj.__dict__.get("_attributes", {}).items():
            if isinstance(value, torch.Tensor):
                tensors[prefix + name] = value
            elif isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{name}.", depth + 1)

    walk(top, "", 0)
    return tensors


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.LayerNorm):
    """OpenAI's LayerNorm: computed in float32 whatever the input dtype."""

    def forward(self, x):
        return super().forward(x.type(torch.float32)).type(x.dtype)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, width * 4)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(width * 4, width))]
            )
        )
        self.ln_2 = LayerNorm(width)

    def forward(self, x):  # x: (L, N, D)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class CLIPVisionTransformer(nn.Module):
    """OpenAI CLIP's image tower; (N, 3, R, R) normalised images → (N, output_dim) embeddings."""

    def __init__(self, *, input_resolution=224, patch_size=32, width=768, layers=12, heads=12, output_dim=512):
        super().__init__()
        self.input_resolution = input_resolution
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = _Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, output_dim))

    @staticmethod
    def config_from_state_dict(state, prefix="visual."):
        """The architecture as OpenAI's build_model reads it off the weights."""
        try:
            conv = state[f"{prefix}conv1.weight"]
            width, patch = conv.shape[0], conv.shape[-1]
            grid = round((state[f"{prefix}positional_embedding"].shape[0] - 1) ** 0.5)
            output_dim = state[f"{prefix}proj"].shape[1]
        except (KeyError, IndexError):
            raise ValueError("not a CLIP ViT state dict (no visual.conv1.weight, positional_embedding, proj)") from None
        layers = len([k for k in state if k.startswith(prefix) and k.endswith(".attn.in_proj_weight")])
        return {
            "input_resolution": patch * grid,
            "patch_size": patch,
            "width": width,
            "layers": layers,
            "heads": max(width // 64, 1),
            "output_dim": output_dim,
        }

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (N, grid², width)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)  # (L, N, D)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


def resized_size(height, width, size=INPUT_SIZE):
    """torchvision Resize(size) with an int: the shorter side becomes ``size``, the longer is truncated."""
    short, long = (height, width) if height <= width else (width, height)
    new_long = int(size * long / short)
    return (size, new_long) if height <= width else (new_long, size)


def preprocess(grey_uint8, size=INPUT_SIZE):
    """(M, H, W) uint8 grey images → (M, 3, size, size) float32, as OpenAI's ``_transform(size)``."""
    out = np.empty((grey_uint8.shape[0], size, size), dtype=np.float32)
    for i, image in enumerate(grey_uint8):
        h, w = resized_size(*image.shape, size)
        resized = np.asarray(Image.fromarray(image).resize((w, h), Image.BICUBIC))
        top = int(round((h - size) / 2.0))
        left = int(round((w - size) / 2.0))
        out[i] = resized[top : top + size, left : left + size].astype(np.float32) / 255.0
    x = torch.from_numpy(out)[:, None].expand(-1, 3, -1, -1)
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std
