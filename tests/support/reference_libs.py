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


def lpips_package():
    """The lpips package (LPIPS v0.1), its trunks built by test-only stand-ins of torchvision's models.

    ``lpips.pretrained_networks`` calls ``torchvision.models.alexnet(pretrained=…)`` (and ``vgg16``,
    ``squeezenet1_1``) at construction; where torchvision is the empty stand-in, the builders of
    `tests.support.torchvision_standin` are put in its place. Build with ``pnet_rand=True`` (nothing is
    downloaded) and load the trunk's weights into ``net`` with `load_lpips_trunk`.
    """
    _ensure_torchvision()
    models = sys.modules["torchvision.models"]
    if not hasattr(models, "__file__"):  # the stand-in, not a real torchvision
        from tests.support import torchvision_standin

        models.alexnet = torchvision_standin.alexnet
        models.vgg16 = torchvision_standin.vgg16
        models.squeezenet1_1 = torchvision_standin.squeezenet1_1
    return importlib.import_module("lpips")


def load_lpips_trunk(reference, state):
    """Copy a torchvision state dict's ``features.N.*`` tensors into an lpips.LPIPS's trunk (its ``net.sliceK``
    modules hold torchvision's ``features[N]`` under the name ``N``); every trunk tensor must be filled."""
    import torch

    filled = 0
    with torch.no_grad():
        for name, tensor in reference.net.state_dict(keep_vars=True).items():
            _slice, index, rest = name.split(".", 2)
            tensor.copy_(state[f"features.{index}.{rest}"])
            filled += 1
    if filled != sum(1 for key in state if key.startswith("features.")):
        raise AssertionError("the trunk and the state dict's features differ in size")
