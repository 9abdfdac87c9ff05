"""factory-boy factories and small model artifacts built for the tests."""

import factory
import numpy as np
import torch

from inference.models import Case, CaseImage, Dataset, ImageRole, Task, TaskKind
from inference.storage import content_hash, save_array


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    is_public = True


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    slug = factory.Sequence(lambda n: f"task-{n}")
    name = factory.Sequence(lambda n: f"Task {n}")
    kind = TaskKind.TRANSLATION
    dataset = factory.SubFactory(DatasetFactory)
    is_public = True


def add_image(case, role, array, index=0):
    array = np.asarray(array, dtype=np.float32)
    image = CaseImage(
        case=case,
        role=role,
        index=index,
        source_format="npy",
        shape=list(array.shape),
        spacing=[1.0] * (array.ndim - 1),
        direction=[1, 0, 0, 0, 1, 0, 0, 0, 1],
        origin=[0, 0, 0],
        intensity_min=float(array.min()),
        intensity_max=float(array.max()),
        content_sha256=content_hash(array),
    )
    save_array(image.array, f"{role}_{index}.npy", array)
    image.save()
    return image


def make_task(n_cases=4, shape=(1, 16, 16), seed=0, is_public=True, **task_fields):
    """A task whose dataset has `n_cases` cases with random input and reference arrays."""
    rng = np.random.default_rng(seed)
    task = TaskFactory(is_public=is_public, dataset__is_public=is_public, **task_fields)
    for i in range(n_cases):
        case = Case.objects.create(dataset=task.dataset, case_id=f"case{i:03d}")
        add_image(case, ImageRole.INPUT, rng.random(shape))
        add_image(case, ImageRole.REFERENCE, rng.random(shape))
    return task


# --- TorchScript artifacts ------------------------------------------------------------


class Scale(torch.nn.Module):
    def __init__(self, factor: float = 2.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([factor]))

    def forward(self, x):
        return x * self.weight


class WrongShape(torch.nn.Module):
    def forward(self, x):
        return x[:, :, ::2, ::2]


class NoisyScale(torch.nn.Module):
    """Stochastic: adds Gaussian noise, so repeated samples differ."""

    def forward(self, x):
        return x + 0.1 * torch.randn_like(x)


class Slow(torch.nn.Module):
    """Deterministic but slow: `rounds` products of a 384×384 matrix per call, then identity-like output."""

    def __init__(self, rounds: int = 40):
        super().__init__()
        self.rounds = rounds
        self.register_buffer("w", torch.eye(384) * 0.999)

    def forward(self, x):
        y = self.w
        for _ in range(self.rounds):
            y = y @ self.w
        return x + 0.0 * y.sum()


def save_torchscript(module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def save_onnx_scale(path, factor=2.0):
    """An ONNX graph y = x * factor built with onnx.helper (no exporter needed)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, None, None])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [factor])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "scale", [x], [y], initializer=[k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
