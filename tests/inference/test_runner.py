"""The model loader and runner on their own (no database)."""

import pickle
import zipfile

import numpy as np
import pytest
import torch

from inference import runner
from tests.support.factories import Scale, WrongShape, save_onnx_scale, save_torchscript


@pytest.fixture(autouse=True)
def fresh_cache():
    runner.clear_cache()
    yield
    runner.clear_cache()


def test_torchscript_is_recognised_and_loaded(tmp_path):
    path = save_torchscript(Scale(3.0), tmp_path / "scale.pt")
    info = runner.inspect_artifact(path)
    assert info.format == "torchscript"
    assert len(info.sha256) == 64 and info.size_bytes == path.stat().st_size
    model = runner.load_model(path, info.format, info.sha256)
    assert model.parameter_count == 1
    out = model.predict(np.ones((2, 1, 8, 8), np.float32))
    np.testing.assert_allclose(out, 3.0)


def test_onnx_is_recognised_and_run_with_onnxruntime(tmp_path):
    path = save_onnx_scale(tmp_path / "scale.onnx", factor=0.5)
    info = runner.inspect_artifact(path)
    assert info.format == "onnx"
    model = runner.load_model(path, info.format, info.sha256)
    assert model.parameter_count == 1
    np.testing.assert_allclose(model.predict(np.full((1, 1, 4, 4), 4.0, np.float32)), 2.0)


def test_plain_pickle_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(runner.ModelArtifactError, match="pickle"):
        runner.inspect_artifact(path)
    assert not marker.exists()


def test_torch_save_checkpoint_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(Scale(), path)
    with pytest.raises(runner.ModelArtifactError, match="torch.save checkpoint"):
        runner.inspect_artifact(path)


def test_corrupt_zip_and_garbage_are_refused(tmp_path):
    good = save_torchscript(Scale(), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(runner.ModelArtifactError):
        runner.inspect_artifact(truncated)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01not a model at all" * 10)
    with pytest.raises(runner.ModelArtifactError, match="Unknown model format"):
        runner.inspect_artifact(garbage)


def test_onnx_with_external_data_is_refused(tmp_path):
    import onnx
    from onnx.external_data_helper import set_external_data

    path = save_onnx_scale(tmp_path / "scale.onnx")
    proto = onnx.load(str(path))
    tensor = proto.graph.initializer[0]
    tensor.raw_data = np.float32(2.0).tobytes()
    tensor.ClearField("float_data")
    set_external_data(tensor, location="../../etc/passwd", offset=0, length=4)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("float_data")
    tensor.ClearField("raw_data")
    (tmp_path / "external.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(runner.ModelArtifactError, match="external data"):
        runner.load_model(tmp_path / "external.onnx", "onnx", "x" * 64)


def test_dry_run_reports_a_wrong_output_shape(tmp_path):
    path = save_torchscript(WrongShape(), tmp_path / "wrong.pt")
    model = runner.load_model(path, "torchscript", "wrong")
    expected = r"Wrong output shape.*\(2, 1, 16, 16\).*expected \(2, 1, 32, 32\)"
    with pytest.raises(runner.ModelArtifactError, match=expected):
        runner.dry_run(model, 1, 1, [32, 32])


def test_dry_run_tries_free_axes_at_64(tmp_path):
    model = runner.load_model(save_torchscript(Scale(), tmp_path / "s.pt"), "torchscript", "s")
    assert runner.dry_run(model, 1, 1, [None, None]) == (2, 1, 64, 64)


def test_models_are_cached_per_sha(tmp_path):
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    assert runner.load_model(path, "torchscript", "abc") is runner.load_model(path, "torchscript", "abc")


@pytest.mark.parametrize("mode", ["none", "minmax", "zscore"])
def test_normalisation_round_trips(mode):
    array = np.random.default_rng(1).normal(50, 10, (1, 8, 8)).astype(np.float32)
    normalised, params = runner.normalise(array, mode)
    np.testing.assert_allclose(runner.denormalise(normalised, mode, params), array, rtol=1e-5)
    if mode == "minmax":
        assert normalised.min() == 0 and normalised.max() == pytest.approx(1)


def test_check_case_shape():
    runner.check_case_shape((1, 32, 32), 1, [32, 32])
    runner.check_case_shape((1, 5, 32, 32), 1, [None, None])  # a volume, slice by slice
    with pytest.raises(runner.ShapeMismatch, match="channel"):
        runner.check_case_shape((2, 32, 32), 1, [32, 32])
    with pytest.raises(runner.ShapeMismatch, match="does not match"):
        runner.check_case_shape((1, 32, 30), 1, [32, 32])
    with pytest.raises(runner.ShapeMismatch, match="cannot go"):
        runner.check_case_shape((1, 32, 32), 1, [8, 32, 32])


def test_volume_through_a_2d_model_equals_slice_by_slice(tmp_path):
    model = runner.load_model(save_torchscript(Scale(2.0), tmp_path / "s.pt"), "torchscript", "s2")
    rng = np.random.default_rng(0)
    volume = rng.random((1, 5, 8, 8), dtype=np.float32)
    image = rng.random((1, 8, 8), dtype=np.float32)
    predictions = runner.predict_cases(
        model, [volume, image], spatial_dims=2, normalisation="minmax", samples=1, seed=None, batch_size=2
    )
    np.testing.assert_allclose(predictions[0].samples[0], volume * 2 - volume.min(), rtol=1e-5)
    np.testing.assert_allclose(predictions[1].samples[0], image * 2 - image.min(), rtol=1e-5)
    assert all(p.seconds_per_sample > 0 for p in predictions)


def test_zip_with_code_but_no_constants_is_not_torchscript(tmp_path):
    path = tmp_path / "fake.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/code/__torch__.py", "print('hi')")
    with pytest.raises(runner.ModelArtifactError, match="not a TorchScript"):
        runner.inspect_artifact(path)
