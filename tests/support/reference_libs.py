"""Import the reference libraries that declare torchvision without needing it.

pytorch-fid and torch-fidelity import torchvision at package import time (for datasets,
transforms and their own Inception wrapper), but the functions our tests compare against
(`calculate_frechet_distance`, torch-fidelity's KID, precision/recall and its
TensorFlow-compatible Inception-v3) use only torch, numpy and scipy. PyPI's torchvision does
not load beside the pinned CPU torch, so where it is missing we register an empty stand-in
module before importing them; any real use of torchvision would fail loudly.
"""

import importlib
import importlib.machinery
import sys
import types


class _MissingMeta(type):
    def __getattr__(cls, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _missing(f"{cls.__qualname__}.{attr}")


def _missing(name):
    """A stand-in class: it can be subclassed or reached through, never instantiated."""

    def refuse(self, *args, **kwargs):
        raise RuntimeError(f"torchvision is not installed; {name} is not available in tests")

    return _MissingMeta(name.rsplit(".", 1)[-1], (), {"__init__": refuse, "__qualname__": name})


def _stub_module(name):
    module = types.ModuleType(name)

    def module_getattr(attr):  # PEP 562; dunders stay missing so inspect and pickle behave
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _missing(f"{name}.{attr}")

    module.__getattr__ = module_getattr
    module.__path__ = []  # a package, so submodules can be registered below it
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    return module


def _ensure_torchvision():
    import torch  # noqa: F401  (load torch before any stand-in exists)

    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or present but unable to load its operators
        for name in list(sys.modules):
            if name == "torchvision" or name.startswith("torchvision."):
                del sys.modules[name]
        for name in (
            "torchvision",
            "torchvision.datasets",
            "torchvision.transforms",
            "torchvision.transforms.functional",
            "torchvision.models",
            "torchvision.models.utils",
        ):
            sys.modules[name] = _stub_module(name)
        sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
        sys.modules["torchvision"].models = sys.modules["torchvision.models"]
        sys.modules["torchvision.transforms"].functional = sys.modules["torchvision.transforms.functional"]


def pytorch_fid_score():
    """pytorch_fid.fid_score (for calculate_frechet_distance)."""
    _ensure_torchvision()
    return importlib.import_module("pytorch_fid.fid_score")


def torch_fidelity():
    """The torch_fidelity package (metric_kid, metric_prc, FeatureExtractorInceptionV3)."""
    _ensure_torchvision()
    return importlib.import_module("torch_fidelity")
