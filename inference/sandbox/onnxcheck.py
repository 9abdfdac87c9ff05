"""ONNX models must be self-contained: no tensor anywhere may refer to external data.

onnxruntime resolves a tensor's external `location` against the model's directory (or the
working directory), so a relative path such as `medgen_site/settings.py` reads a server
file into the model. Every `TensorProto` is checked: initializers, sparse initializers
(values and indices), `Constant` and other node attributes (`t`, `tensors`, `sparse_tensor`,
`sparse_tensors`), the subgraphs of `If`/`Loop`/`Scan` at any depth, model-local functions and
training-info graphs. The first offender is named. (The sandbox also gives onnxruntime an
empty directory for external initializers, and its Landlock rules hide the server's files.)
"""

from .errors import ExternalData

EXTERNAL = 1  # onnx.TensorProto.EXTERNAL


def check_model(proto):
    """Raise `ExternalData` naming the first tensor that refers to data outside the model."""
    for graph, where in _graphs(proto):
        _check_graph(graph, where)
    for function in proto.functions:
        _check_nodes(function.node, f"function '{function.name}'")


def _graphs(proto):
    yield proto.graph, f"graph '{proto.graph.name}'"
    for i, info in enumerate(proto.training_info):
        yield info.initialization, f"training initialisation graph {i}"
        yield info.algorithm, f"training algorithm graph {i}"


def _check_graph(graph, where):
    for tensor in graph.initializer:
        _check_tensor(tensor, f"an initializer of {where}")
    for sparse in graph.sparse_initializer:
        _check_sparse(sparse, f"a sparse initializer of {where}")
    _check_nodes(graph.node, where)


def _check_nodes(nodes, where):
    for node in nodes:
        label = f"node '{node.name or node.op_type}' ({node.op_type}) of {where}"
        for attribute in node.attribute:
            at = f"attribute '{attribute.name}' of {label}"
            if attribute.HasField("t"):
                _check_tensor(attribute.t, at, fallback=_first(node.output))
            for tensor in attribute.tensors:
                _check_tensor(tensor, at, fallback=_first(node.output))
            if attribute.HasField("sparse_tensor"):
                _check_sparse(attribute.sparse_tensor, at)
            for sparse in attribute.sparse_tensors:
                _check_sparse(sparse, at)
            if attribute.HasField("g"):
                _check_graph(attribute.g, f"subgraph '{attribute.name}' of {label}")
            for k, graph in enumerate(attribute.graphs):
                _check_graph(graph, f"subgraph '{attribute.name}'[{k}] of {label}")


def _check_sparse(sparse, where):
    _check_tensor(sparse.values, f"the values of {where}")
    _check_tensor(sparse.indices, f"the indices of {where}")


def _check_tensor(tensor, where, fallback=""):
    if tensor.data_location == EXTERNAL or len(tensor.external_data):
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = f" at '{entries['location']}'" if "location" in entries else ""
        name = tensor.name or fallback or "(unnamed)"
        raise ExternalData(
            f"ONNX tensor '{name}' ({where}) refers to external data{location}; upload a self-contained model."
        )


def _first(values):
    return values[0] if values else ""
