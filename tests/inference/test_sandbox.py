"""The model sandbox (issue 13): hostile models are refused or confined, and the worker learns why.

Every hostile model here is built in the test; each test asserts the exact message and that the
file the model aimed at was neither written nor read.
"""

import io
import os
import signal
import socket
import zipfile

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from onnx.external_data_helper import set_external_data

from core.models import JobStatus
from inference import runner
from inference.models import GenerativeModel, ModelStatus, ModelValidation
from inference.sandbox import onnxcheck, protocol, tsops
from inference.sandbox.errors import ExternalData, ForbiddenOperation, LimitExceeded, SandboxCrashed
from inference.sandbox.host import Limits, Sandbox
from inference.services import artifacts, runs
from tests.support.factories import NoisyScale, Scale, make_task, save_onnx_scale, save_torchscript
from tests.support.jobs import run_job, validate, wait_for_job

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = Limits(memory_bytes=3 * 2**30, seconds=60, threads=1)


# --------------------------------------------------------------------------- hostile TorchScript


class WriteFile(torch.nn.Module):
    """The audit's model: maps a file shared and copies a payload into it from `forward`."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    def forward(self, x):
        mapped = torch.from_file(self.target, shared=True, size=16, dtype=torch.uint8)
        mapped.copy_(torch.full([16], 65, dtype=torch.uint8))
        return x + mapped.float().sum() * 0


class ReadFile(torch.nn.Module):
    """Copies the start of /etc/passwd into its output."""

    def forward(self, x):
        secret = torch.from_file("/etc/passwd", shared=False, size=32, dtype=torch.uint8)
        return x + secret.float().sum()


class WriteOnLoad(torch.nn.Module):
    """A clean `forward`, but `__setstate__` (run by torch.jit.load) writes the file."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target
        self.payload = torch.zeros(4)

    def forward(self, x):
        return x * 1.0

    @torch.jit.export
    def __getstate__(self):
        return (self.target, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]):
        self.target = state[0]
        self.training = state[1]
        self.payload = torch.from_file(state[0], shared=True, size=4)


class Chatty(torch.nn.Module):
    def forward(self, x):
        print("prim::Print is I/O")
        return x


class Busy(torch.nn.Module):
    def forward(self, x):
        y = x
        for _ in range(10_000_000):
            y = torch.tanh(y @ torch.ones([64, 64]))
        return x + y.sum() * 0


class Hungry(torch.nn.Module):
    def forward(self, x):
        big = torch.ones([1610612736])  # 6 GiB of float32
        return x + big[0]


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "written-by-the-model.pth"
    yield path
    assert not path.exists(), "the hostile model wrote its file"


def refusal(tmp_path, module, **limits):
    path = save_torchscript(module, tmp_path / "hostile.pt")
    sandbox = Sandbox(path, "torchscript", limits=Limits(**limits))
    with pytest.raises(ForbiddenOperation) as caught, sandbox:
        pass
    assert sandbox.process.poll() is not None and not sandbox.workdir.exists()  # nothing left behind
    return str(caught.value)


def test_from_file_in_forward_is_refused_before_loading(tmp_path, target):
    message = refusal(tmp_path, WriteFile(str(target)))
    assert message == (
        "The model called a forbidden operation `aten::from_file` "
        "(in `__torch__.tests.inference.test_sandbox.WriteFile.forward`)."
    )


def test_from_file_in_setstate_is_refused_before_load_runs_it(tmp_path, target):
    target.touch()  # from_file(shared=True) needs the file; the model must not map it
    before = target.stat().st_mtime_ns
    message = refusal(tmp_path, WriteOnLoad(str(target)))
    assert message == (
        "The model called a forbidden operation `aten::from_file` "
        "(in `__torch__.tests.inference.test_sandbox.WriteOnLoad.__setstate__`)."
    )
    assert target.read_bytes() == b"" and target.stat().st_mtime_ns == before
    target.unlink()


def test_reading_etc_passwd_is_refused(tmp_path):
    message = refusal(tmp_path, ReadFile())
    assert message == (
        "The model called a forbidden operation `aten::from_file` "
        "(in `__torch__.tests.inference.test_sandbox.ReadFile.forward`)."
    )


def test_print_is_refused_as_prim_io(tmp_path):
    assert "forbidden operation `prim::Print`" in refusal(tmp_path, Chatty())


def test_the_graph_check_walks_every_method_and_submodule():
    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = WriteFile("/tmp/never")

        def forward(self, x):
            return x

    with pytest.raises(ForbiddenOperation, match=r"`aten::from_file` \(in `forward` of `inner`\)"):
        tsops.check_module(torch.jit.script(Wrapper()))
    tsops.check_module(torch.jit.script(Scale()))  # a clean one passes


def test_the_allow_list_keeps_tensor_operators_and_refuses_file_and_storage_ones():
    assert all(tsops.is_allowed(op) for op in ("aten::conv2d", "aten::einsum", "aten::copy_", "prim::If"))
    refused = ("aten::from_file", "aten::save", "aten::set_", "prim::Print", "prim::fork", "c10d::allreduce_")
    assert not any(tsops.is_allowed(op) for op in refused)


def test_in_process_loading_applies_the_same_checks(tmp_path, target):
    path = save_torchscript(WriteFile(str(target)), tmp_path / "hostile.pt")
    with pytest.raises(ForbiddenOperation, match="aten::from_file"):
        runner.load_model(path, "torchscript", "hostile")


# --------------------------------------------------------------------------- hostile ONNX


def _external(tensor, location):
    tensor.raw_data = np.float32(2.0).tobytes()
    set_external_data(tensor, location=location, offset=0, length=4)
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    return tensor


def _model(graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _io():
    return (
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, None, None]),
        helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, None, None]),
    )


def constant_onnx(path):
    """y = x * k where k is a Constant node whose tensor's data is 'medgen_site/settings.py'."""
    x, y = _io()
    value = _external(helper.make_tensor("k_value", TensorProto.FLOAT, [1], [2.0]), "medgen_site/settings.py")
    nodes = [helper.make_node("Constant", [], ["k"], name="k", value=value), helper.make_node("Mul", ["x", "k"], ["y"])]
    path.write_bytes(_model(helper.make_graph(nodes, "constant", [x], [y])).SerializeToString())
    return path


def if_subgraph_onnx(path):
    x, y = _io()
    out = helper.make_tensor_value_info("branch", TensorProto.FLOAT, [1])
    hidden = _external(helper.make_tensor("hidden", TensorProto.FLOAT, [1], [2.0]), "../../etc/passwd")
    then = helper.make_graph([helper.make_node("Constant", [], ["branch"], value=hidden)], "then", [], [out])
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["branch"], value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1]))],
        "else",
        [],
        [out],
    )
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    nodes = [
        helper.make_node("If", ["cond"], ["k"], name="choose", then_branch=then, else_branch=other),
        helper.make_node("Mul", ["x", "k"], ["y"]),
    ]
    path.write_bytes(_model(helper.make_graph(nodes, "if", [x], [y], initializer=[cond])).SerializeToString())
    return path


def sparse_onnx(path):
    x, y = _io()
    values = _external(helper.make_tensor("sparse_values", TensorProto.FLOAT, [1], [2.0]), "/etc/shadow")
    indices = helper.make_tensor("sparse_indices", TensorProto.INT64, [1], [0])
    sparse = helper.make_sparse_tensor(values, indices, [1])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "sparse_values"], ["y"])], "sparse", [x], [y])
    graph.sparse_initializer.append(sparse)
    path.write_bytes(_model(graph).SerializeToString())
    return path


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            constant_onnx,
            "ONNX tensor 'k_value' (attribute 'value' of node 'k' (Constant) of graph 'constant') refers to "
            "external data at 'medgen_site/settings.py'; upload a self-contained model.",
        ),
        (
            if_subgraph_onnx,
            "ONNX tensor 'hidden' (attribute 'value' of node 'Constant' (Constant) of subgraph 'then_branch' of "
            "node 'choose' (If) of graph 'if') refers to external data at '../../etc/passwd'; "
            "upload a self-contained model.",
        ),
        (
            sparse_onnx,
            "ONNX tensor 'sparse_values' (the values of a sparse initializer of graph 'sparse') refers to "
            "external data at '/etc/shadow'; upload a self-contained model.",
        ),
    ],
)
def test_onnx_external_data_anywhere_is_refused_in_the_sandbox(tmp_path, build, expected):
    path = build(tmp_path / "hostile.onnx")
    with pytest.raises(onnxcheck.ExternalData) as caught, Sandbox(path, "onnx", limits=SMALL):
        pass
    assert str(caught.value) == expected
    with pytest.raises(ExternalData):
        onnxcheck.check_model(onnx.load(str(path), load_external_data=False))


# --------------------------------------------------------------------------- limits and crashes


def test_a_busy_loop_is_stopped_at_the_wall_clock_limit(tmp_path):
    path = save_torchscript(Busy(), tmp_path / "busy.pt")
    with Sandbox(path, "torchscript", limits=Limits(seconds=3, threads=1)) as model:
        with pytest.raises(LimitExceeded) as caught:
            model.predict(np.zeros((1, 1, 64, 64), np.float32))
    assert str(caught.value) == "The model ran past the 3 s limit."


def test_an_allocation_past_the_memory_limit_is_reported(tmp_path):
    path = save_torchscript(Hungry(), tmp_path / "hungry.pt")
    with Sandbox(path, "torchscript", limits=Limits(memory_bytes=3 * 2**30, threads=1)) as model:
        with pytest.raises(LimitExceeded) as caught:
            model.predict(np.zeros((1, 1, 8, 8), np.float32))
        assert model.process.poll() is None  # a failed allocation, not a dead sandbox
    assert str(caught.value) == "The model exceeded the 3 GiB memory limit."


@pytest.mark.parametrize(
    ("sig", "expected"),
    [
        (signal.SIGSEGV, "The model crashed (signal SIGSEGV)."),
        (signal.SIGABRT, "The model crashed (signal SIGABRT)."),
        (signal.SIGXCPU, "The model ran past the 60 s limit."),  # what RLIMIT_CPU sends
    ],
)
def test_a_child_killed_by_a_signal_is_reported_by_cause(tmp_path, sig, expected):
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    with Sandbox(path, "torchscript", limits=SMALL) as model:
        os.kill(model.process.pid, sig)
        model.process.wait(timeout=10)
        with pytest.raises((SandboxCrashed, LimitExceeded)) as caught:
            model.predict(np.zeros((1, 1, 4, 4), np.float32))
    assert str(caught.value) == expected


# --------------------------------------------------------------------------- confinement


def test_the_child_is_confined(tmp_path):
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    outside = [os.path.join(ROOT, "sandbox-probe"), "/tmp/sandbox-probe", str(tmp_path / "probe")]
    with Sandbox(path, "torchscript", limits=SMALL) as model:
        inside = str(model.scratch / "probe")
        result = model.probe(
            write=[*outside, inside],
            read=["/etc/passwd", os.path.join(ROOT, "medgen_site", "settings.py")],
            connect=[("127.0.0.1", 5432), ("127.0.0.1", 6379)],
        )
        confinement = model.confinement
    for path_ in outside:
        assert result["write"][path_].startswith("refused"), result
        assert not os.path.exists(path_)
    assert result["write"][inside] == "allowed"
    assert all(outcome.startswith("refused") for outcome in result["read"].values()), result
    assert all(outcome.startswith("refused") for outcome in result["connect"].values()), result
    assert result["socket"].startswith("refused")
    if os.geteuid() == 0:
        assert result["uid"] == 65534
        assert "no network: a private network namespace without interfaces" in confinement
    assert any(line.startswith("Landlock ABI") for line in confinement)
    assert "address space ≤ 3 GiB" in confinement


@pytest.mark.skipif(os.geteuid() != 0, reason="staying root needs root")
def test_landlock_confines_even_a_child_that_stays_root(tmp_path):
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    with Sandbox(path, "torchscript", limits=Limits(threads=1, user=None)) as model:
        result = model.probe(write=[os.path.join(ROOT, "sandbox-probe"), "/tmp/sandbox-probe"], read=["/etc/shadow"])
    assert result["uid"] == 0
    assert all(outcome.startswith("refused") for outcome in [*result["write"].values(), *result["read"].values()])
    assert not os.path.exists(os.path.join(ROOT, "sandbox-probe")) and not os.path.exists("/tmp/sandbox-probe")


def test_the_environment_and_directory_are_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "do-not-leak")
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    with Sandbox(path, "torchscript", limits=SMALL) as model:
        pid = model.process.pid
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read().decode().split("\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
        assert os.listdir(cwd) == []
    assert not any(entry.startswith(("SECRET_KEY", "DATABASE_URL")) for entry in environ)
    assert cwd.endswith("/scratch")


# --------------------------------------------------------------------------- same results


def test_sandboxed_predictions_equal_in_process_ones(tmp_path):
    path = save_torchscript(NoisyScale(), tmp_path / "noisy.pt")
    rng = np.random.default_rng(3)
    arrays = [rng.random((1, 16, 16), dtype=np.float32) for _ in range(3)] + [rng.random((1, 3, 16, 16), np.float32)]
    options = dict(spatial_dims=2, normalisation="zscore", samples=2, seed=7, batch_size=2)
    here = runner.predict_cases(runner.load_model(path, "torchscript", "noisy", device="cpu"), arrays, **options)
    with Sandbox(path, "torchscript", limits=SMALL) as model:
        there = runner.predict_cases(model, arrays, **options)
        assert model.parameter_count == 0
    for a, b in zip(here, there, strict=True):
        for x, y in zip(a.samples, b.samples, strict=True):
            np.testing.assert_array_equal(x, y)


def test_onnx_runs_in_the_sandbox(tmp_path):
    path = save_onnx_scale(tmp_path / "scale.onnx", factor=0.5)
    with Sandbox(path, "onnx", limits=SMALL) as model:
        assert model.parameter_count == 1
        assert runner.dry_run(model, 1, 1, [8, 8]) == (2, 1, 8, 8)
        np.testing.assert_allclose(model.predict(np.full((1, 1, 4, 4), 4.0, np.float32)), 2.0)


# --------------------------------------------------------------------------- the protocol


def test_frames_carry_arrays_without_pickle(tmp_path):
    stream = io.BytesIO()
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    protocol.send(stream, {"op": "predict", "seed": 5}, [array])
    stream.seek(0)
    header, arrays = protocol.receive(stream, max_bytes=1024)
    assert header == {"op": "predict", "seed": 5}
    np.testing.assert_array_equal(arrays[0], array)
    stream.seek(0)
    with pytest.raises(protocol.ProtocolError, match="more than 16 bytes"):
        protocol.receive(stream, max_bytes=16)
    with pytest.raises(protocol.ProtocolError, match="not allowed"):
        protocol.send(io.BytesIO(), {}, [np.array([object()])])


# --------------------------------------------------------------------------- through the job


@pytest.mark.django_db
def test_validation_job_ends_invalid_naming_the_operation(tmp_path, target):
    task = make_task(n_cases=1)
    path = save_torchscript(WriteFile(str(target)), tmp_path / "hostile.pt")
    model = artifacts.register_model(path, name="hostile", task=task, spatial_shape=[16, 16])
    assert validate(model) == ModelStatus.INVALID
    model.refresh_from_db()
    assert model.validation_error == (
        "The model called a forbidden operation `aten::from_file` "
        "(in `__torch__.tests.inference.test_sandbox.WriteFile.forward`)."
    )
    validation = model.validation
    validation.refresh_from_db()
    assert validation.status == JobStatus.SUCCEEDED
    assert "sandbox: CPU time" in validation.log


@pytest.mark.django_db
def test_a_run_past_the_memory_limit_fails_with_the_cause(tmp_path, settings):
    settings.MEDGEN_SANDBOX_MEMORY_BYTES = 3 * 2**30
    task = make_task(n_cases=1, shape=(1, 8, 8))
    model = artifacts.register_model(
        save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[8, 8]
    )
    assert validate(model) == ModelStatus.VALID
    # swap the artifact for a hungry one after validation: the run must fail, not the worker
    with open(model.artifact.path, "wb") as handle:
        handle.write(save_torchscript(Hungry(), tmp_path / "h.pt").read_bytes())
    model.refresh_from_db()
    run = runs.create_run(model)
    assert run_job(run) == "failed"
    run.refresh_from_db()
    assert run.error == "the model failed on case(s) 'case000': The model exceeded the 3 GiB memory limit."


def test_no_socket_to_the_database_from_the_test_itself_is_needed():
    # guard for the confinement test above: something listens on 5432 here, so "refused" means the sandbox
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", 5432)) == 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_hostile_model_through_a_real_worker_ends_invalid_and_the_worker_carries_on(celery_worker, tmp_path, target):
    task = make_task(n_cases=1)
    hostile = artifacts.register_model(
        save_torchscript(WriteFile(str(target)), tmp_path / "hostile.pt"),
        name="hostile",
        task=task,
        spatial_shape=[16, 16],
    )
    assert wait_for_job(ModelValidation, hostile.validation.pk, timeout=90).status == JobStatus.SUCCEEDED
    hostile = GenerativeModel.objects.get(pk=hostile.pk)
    assert hostile.status == ModelStatus.INVALID
    assert hostile.validation_error.startswith("The model called a forbidden operation `aten::from_file`")
    good = artifacts.register_model(
        save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[16, 16]
    )
    assert wait_for_job(ModelValidation, good.validation.pk, timeout=90).status == JobStatus.SUCCEEDED
    assert GenerativeModel.objects.get(pk=good.pk).status == ModelStatus.VALID, celery_worker.read_log()[-2000:]


@pytest.mark.parametrize(
    ("line", "op"),
    [
        ("    f = torch.from_file\n", "aten::from_file"),
        ('    g = getattr(torch, "save")\n', "aten::save"),
        ("    h = ops.myns.anything(x)\n", "myns::anything"),
    ],
)
def test_a_hand_edited_archive_is_checked_as_written(tmp_path, line, op):
    """The source printer never writes aliases or getattr, but an archive can be edited by hand."""
    original = save_torchscript(Scale(), tmp_path / "s.pt")
    edited = tmp_path / "edited.pt"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(edited, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".py"):
                assert b"    weight = self.weight\n" in data
                data = data.replace(b"    weight = self.weight\n", line.encode() + b"    weight = self.weight\n")
            target.writestr(info, data)
    with pytest.raises(ForbiddenOperation, match=f"forbidden operation `{op}`"):
        tsops.check_archive(edited.read_bytes())
