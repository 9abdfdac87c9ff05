"""LPIPS: our plain-torch network against the lpips package on the same weights, the medical-image
conversion, and the weights files' checks.

No real trunk weights are needed: a torchvision-layout file is generated from the test-only stand-in of
torchvision's model (tests/support/torchvision_standin.py) with a fixed seed. The heads are the real
files the lpips wheel ships (installed from requirements-refs.txt); the lpips package builds its trunk
through the stand-in and gets the same generated tensors. Expected values are the lpips package's
``LPIPS(net, version="0.1")`` on inputs converted here, independently of `to_network_input`.
"""

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.metrics import catalog
from evaluation.metrics import lpips as lp
from evaluation.metrics.extractors import ExtractorUnavailable
from tests.support.generated_weights import random_lpips_backbone, random_lpips_heads
from tests.support.reference_libs import load_lpips_trunk, lpips_package

NETS = ("alex", "vgg", "squeeze")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{net: (backbone path, backbone state)} of generated trunks (features only), saved as torchvision files."""
    folder = tmp_path_factory.mktemp("lpips")
    out = {}
    for net in NETS:
        state = random_lpips_backbone(net, seed=1)
        path = folder / lp.NETS[net].backbone.weights_filename
        torch.save(state, path)
        out[net] = (path, state)
    return out


def installed_heads(net):
    path = lp.installed_heads_path(net)
    assert path is not None, "the lpips wheel (requirements-refs.txt) is not installed"
    return path


@pytest.fixture(scope="module")
def networks(files):
    """{net: (ours, the lpips package's LPIPS)} on the same trunk tensors and the wheel's own heads."""
    package = lpips_package()
    out = {}
    for net in NETS:
        path, state = files[net]
        config = lp.Configuration(net, str(path), str(installed_heads(net)), "test")
        ours = lp.load(config, verify_sha256=False)
        reference = package.LPIPS(
            net=net, version="0.1", pretrained=True, pnet_rand=True, model_path=str(installed_heads(net)), verbose=False
        ).eval()
        load_lpips_trunk(reference, state)
        out[net] = (ours, reference)
    return out


def reference_lpips(reference, generated_grey, reference_grey, lo, hi):
    """The lpips package on (M, H, W) grey images mapped from (lo, hi) to [−1, 1], repeated to RGB."""

    def tensor(x):
        x = np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0, 1) * 2 - 1
        return torch.from_numpy(x.astype(np.float32))[:, None].repeat(1, 3, 1, 1)

    with torch.no_grad():
        return reference(tensor(generated_grey), tensor(reference_grey)).reshape(-1).double().numpy()


def ct_and_camera():
    from pydicom import examples
    from skimage import data, transform

    ct = examples.ct.pixel_array.astype(np.float64)  # (128, 128) CT, stored values
    camera = transform.resize(data.camera().astype(np.float64), (96, 112), anti_aliasing=True)
    return ct, camera


def distorted(image, rng, sigma):
    from scipy import ndimage

    return ndimage.gaussian_filter(image, 1.0) + rng.normal(0, sigma, image.shape)


# --- the pinned files ------------------------------------------------------------------


@pytest.mark.parametrize("net", NETS)
def test_the_pinned_heads_are_the_installed_wheels_files(net):
    path = installed_heads(net)
    spec = lp.NETS[net].heads
    assert path.name == spec.weights_filename and path.parent.name == f"v{lp.HEADS_VERSION}"
    assert path.stat().st_size == spec.weights_bytes
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.weights_sha256


def test_torchvisions_file_names_carry_the_pinned_sha256_prefix_and_mib_size():
    # torchvision names each file <name>-<first 8 hex of sha256>.pth and lists "_file_size" in MiB.
    listed = {"alex": 233.087, "vgg": 527.796, "squeeze": 4.729}
    for net, mib in listed.items():
        spec = lp.NETS[net].backbone
        assert spec.weights_filename.removesuffix(".pth").rsplit("-", 1)[1] == spec.weights_sha256[:8]
        assert round(spec.weights_bytes / 2**20, 3) == mib
        assert spec.weights_setting == "MEDGEN_LPIPS_WEIGHTS"


def test_the_trunks_have_torchvisions_published_parameter_counts():
    # torchvision's weights metadata: "num_params" of AlexNet_Weights, VGG16_Weights, SqueezeNet1_1_Weights
    # IMAGENET1K_V1, i.e. of the whole model in its file: features (ours) + the classifier (checked shapes).
    from evaluation.metrics.lpips_networks import BACKBONES, Backbone
    from tests.support.torchvision_standin import BUILDERS

    published = {"alex": 61_100_840, "vgg": 138_357_544, "squeeze": 1_235_496}
    for net, count in published.items():
        features = sum(p.numel() for p in Backbone(net).parameters())
        classifier = sum(int(np.prod(shape)) for shape in BACKBONES[net][3].values())
        assert features + classifier == count, net
        assert sum(p.numel() for p in BUILDERS[net]().parameters()) == count, net
        standin = {k: tuple(v.shape) for k, v in BUILDERS[net]().state_dict().items()}
        ours = {f"features.{k}": tuple(v.shape) for k, v in Backbone(net).features.state_dict().items()}
        assert standin == {**ours, **BACKBONES[net][3]}, net


def test_the_heads_are_located_without_importing_lpips():
    code = (
        "import sys; from evaluation.metrics import lpips; p = lpips.installed_heads_path('alex'); "
        "print(p is not None, 'lpips' in sys.modules, 'torchvision' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "False", "False"]


# --- equality with the lpips package ----------------------------------------------------


@pytest.mark.parametrize("net", NETS)
def test_equals_the_lpips_package_on_ct_and_camera(networks, net):
    ours, reference = networks[net]
    rng = np.random.default_rng(3)
    ct, camera = ct_and_camera()
    for image, (lo, hi), sigma in ((ct, (ct.min(), ct.max()), 40.0), (camera, (0.0, 255.0), 8.0)):
        refs = np.stack([image, np.flip(image, 1), image * 0.9 + 0.1 * lo])
        gens = np.stack([distorted(r, rng, sigma) for r in refs])
        got = lp.lpips_distance(gens[:, None], refs[:, None], window=(lo, hi), network=ours)
        expected = reference_lpips(reference, gens, refs, lo, hi)
        assert got.shape == (3,) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
        assert (got > 0).all() and len(set(np.round(got, 8))) == 3


def test_identical_images_score_zero_and_order_matters_not(networks):
    ours, _ = networks["alex"]
    ct, _ = ct_and_camera()
    x = ct[None, None]
    assert lp.lpips_distance(x, x, window=(ct.min(), ct.max()), network=ours)[0] == 0.0
    y = distorted(ct, np.random.default_rng(0), 30.0)[None, None]
    a = lp.lpips_distance(y, x, window=(ct.min(), ct.max()), network=ours)
    b = lp.lpips_distance(x, y, window=(ct.min(), ct.max()), network=ours)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_volumes_are_scored_slice_by_slice_along_the_first_axis_and_channels_averaged(networks):
    import nibabel as nib
    from nibabel.testing import data_path

    ours, reference = networks["alex"]
    volume = np.asarray(nib.load(Path(data_path) / "example4d.nii.gz").dataobj, dtype=np.float64)  # (128, 96, 24, 2)
    first = volume[..., 0].transpose(2, 0, 1)[:6]  # (6, 128, 96): D = 6 slices
    second = volume[..., 1].transpose(2, 0, 1)[:6]
    lo, hi = float(volume.min()), float(volume.max())
    rng = np.random.default_rng(5)
    refs = np.stack([np.stack([first, second]), np.stack([second, first])])  # (N=2, C=2, D=6, H, W)
    gens = refs + rng.normal(0, 0.05 * (hi - lo), refs.shape)
    got = lp.lpips_distance(gens, refs, window=(lo, hi), network=ours)
    for i in range(2):
        slices = reference_lpips(reference, gens[i].reshape(-1, 128, 96), refs[i].reshape(-1, 128, 96), lo, hi)
        assert len(slices) == 12
        np.testing.assert_allclose(got[i], slices.mean(), rtol=1e-6)


def test_intensities_outside_the_window_are_clipped(networks):
    ours, reference = networks["squeeze"]
    _, camera = ct_and_camera()
    over = camera * 1.5 - 40.0  # below 0 and above 255 in places
    got = lp.lpips_distance(over[None, None], camera[None, None], window=(0.0, 255.0), network=ours)
    clipped = np.clip(over, 0, 255)
    expected = reference_lpips(reference, clipped[None], camera[None], 0.0, 255.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_bad_inputs_are_refused_with_a_clear_message(networks):
    ours, _ = networks["alex"]
    x = np.zeros((1, 1, 40, 40))
    with pytest.raises(ValueError, match="differ in shape"):
        lp.lpips_distance(x, np.zeros((1, 1, 40, 41)), window=(0, 1), network=ours)
    with pytest.raises(ValueError, match="NaN"):
        lp.lpips_distance(np.full_like(x, np.nan), x, window=(0, 1), network=ours)
    with pytest.raises(ValueError, match=r"at least 31 × 31 px, got 30 × 40"):
        lp.lpips_distance(np.zeros((1, 1, 30, 40)), np.zeros((1, 1, 30, 40)), window=(0, 1), network=ours)
    with pytest.raises(ValueError, match="hi > lo"):
        lp.lpips_distance(x, x, window=(1, 1), network=ours)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        lp.lpips_distance(x[0], x[0], window=(0, 1), network=ours)


def test_the_catalogue_entry_computes_lpips():
    info = catalog.get("lpips")
    assert info.tier == catalog.FEATURE and not info.higher_is_better
    assert info.compute is lp.lpips_distance and "lpips" in catalog.PER_CASE_FEATURE_METRICS


# --- configuration and the files' checks -------------------------------------------------


class Settings:
    def __init__(self, **values):
        self.__dict__.update(values)


def test_configuration_reads_settings_then_environment_and_finds_the_installed_heads():
    config = lp.configuration(Settings(MEDGEN_LPIPS_WEIGHTS="/w/a.pth"), environ={"MEDGEN_LPIPS_NET": "vgg"})
    assert config.net == "vgg" and config.backbone_path == "/w/a.pth"
    assert config.heads_path == str(installed_heads("vgg")) and config.heads_source.startswith("the installed lpips")
    config = lp.configuration(Settings(MEDGEN_LPIPS_HEADS="/h/alex.pth"), environ={})
    assert (config.net, config.backbone_path, config.heads_path) == ("alex", None, "/h/alex.pth")
    assert config.heads_source == "MEDGEN_LPIPS_HEADS"


def test_unconfigured_says_which_setting_to_set():
    available, reason = lp.availability(lp.Configuration("alex", None, str(installed_heads("alex")), "x"))
    assert not available
    assert "set MEDGEN_LPIPS_WEIGHTS to the path of alexnet-owt-7be5be79.pth (sha256 7be5be79…)" in reason
    assert "Nothing is downloaded" in reason
    available, reason = lp.availability(lp.Configuration("alex", "/nowhere.pth", None, ""))
    assert not available and "install lpips==0.1.4" in reason and "set MEDGEN_LPIPS_HEADS" in reason
    with pytest.raises(ExtractorUnavailable, match="not an LPIPS network. Known: alex, vgg, squeeze"):
        lp.load(lp.Configuration("resnet", "/x", "/y", ""))


def test_a_generated_file_is_refused_by_size_then_by_sha256(files, monkeypatch):
    path, _ = files["alex"]
    config = lp.Configuration("alex", str(path), str(installed_heads("alex")), "x")
    with pytest.raises(ExtractorUnavailable, match=r"bytes; the standard alexnet-owt-7be5be79\.pth .* is 244,408,911"):
        lp.load(config)
    spec = lp.NETS["alex"]
    resized = dataclasses.replace(spec, backbone=dataclasses.replace(spec.backbone, weights_bytes=path.stat().st_size))
    monkeypatch.setitem(lp.NETS, "alex", resized)
    with pytest.raises(
        ExtractorUnavailable, match="has sha256 .* but the standard alexnet-owt-7be5be79.pth has 7be5be7"
    ):
        lp.load(config)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    pinned = dataclasses.replace(resized, backbone=dataclasses.replace(resized.backbone, weights_sha256=digest))
    monkeypatch.setitem(lp.NETS, "alex", pinned)
    assert lp.load(config).net == "alex"  # with the file's own pins every check passes


def test_wrong_tensors_are_refused_and_the_standard_classifier_accepted(files, tmp_path):
    heads = str(installed_heads("alex"))
    with pytest.raises(ExtractorUnavailable, match=r"not the standard file's state dict: missing .*unexpected"):
        lp.load(lp.Configuration("alex", str(files["vgg"][0]), heads, "x"), verify_sha256=False)
    state = dict(files["alex"][1])
    state["classifier.6.weight"] = torch.zeros(10, 4096)  # a 10-class head: not torchvision's file
    bad = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(state, bad)
    with pytest.raises(ExtractorUnavailable, match=r"wrong shape for 1 \(classifier\.6\.weight\)"):
        lp.load(lp.Configuration("alex", str(bad), heads, "x"), verify_sha256=False)
    full = tmp_path / "squeezenet1_1-b8a52dc0.pth"  # the whole torchvision model, classifier included
    torch.save(random_lpips_backbone("squeeze", seed=2, classifier=True), full)
    network = lp.load(lp.Configuration("squeeze", str(full), str(installed_heads("squeeze")), "x"), verify_sha256=False)
    assert network.net == "squeeze"
    wrong_heads = tmp_path / "alex.pth"
    torch.save(random_lpips_heads("vgg"), wrong_heads)
    with pytest.raises(ExtractorUnavailable, match="LPIPS AlexNet heads file .* wrong shape for"):
        lp.load(lp.Configuration("alex", str(files["alex"][0]), str(wrong_heads), "x"), verify_sha256=False)


def test_a_file_that_is_not_plain_tensors_is_never_unpickled(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "alexnet-owt-7be5be79.pth"
    path.write_bytes(pickle.dumps({"features.0.weight": Evil()}))
    with pytest.raises(ExtractorUnavailable, match="never unpickled"):
        lp.load(lp.Configuration("alex", str(path), str(installed_heads("alex")), "x"), verify_sha256=False)
