"""The TorchScript operations an uploaded model may use, checked before and after loading.

Two checks share one allow-list (`is_allowed`):

* `check_archive(data)`, before `torch.jit.load`: loading runs the `__setstate__` methods
  of the archive's classes, so every function of every code file in the archive (`code/…py`,
  the TorchScript source that load compiles) is parsed and each operation it names is
  checked. Nothing of the archive runs before this passes.
* `check_module(module)`, after loading: the inlined graph of every method of the module and
  of every submodule (calls to methods and functions inlined, blocks of `If`/`Loop` walked).

Allowed: `aten::` tensor and scalar operators except those that touch files, storages or
processes (`aten::from_file`, `aten::save`, `aten::set_`, … and any with a `filename` or
`Storage` argument); the `prim::` operations of control flow, containers, attributes and
tensor metadata listed in `ALLOWED_PRIM`. Everything else is refused: `prim::Print` and
other `prim::` I/O, `prim::fork`/`rpc_*`, `prim::PythonOp`, custom classes, and operators of
any other namespace (`torch.ops.<ns>.*`: `c10d::`, `profiler::`, `quantized::`, custom ops).
"""

import ast
import io
import zipfile

from .errors import ForbiddenOperation, SandboxError

ALLOWED_PRIM = frozenset(
    f"prim::{name}"
    for name in (
        "Constant GetAttr SetAttr CallMethod CallFunction If Loop ListConstruct ListUnpack TupleConstruct "
        "TupleUnpack TupleIndex TupleSlice DictConstruct DictIndex RaiseException Uninitialized unchecked_cast "
        "unchecked_unwrap_optional NumToTensor dtype device layout shape data requires_grad grad is_cuda is_cpu "
        "is_xpu is_meta is_mps is_sparse is_sparse_csr is_quantized is_mkldnn is_nested is_vulkan is_ipu "
        "is_maia is_mtia is_xla itemsize nbytes name index min max abs id isinstance type EnumName EnumValue "
        "StringIndex rangelist tolist ConstantChunk ModuleContainerIndex BroadcastSizes AutogradZero AutogradAdd "
        "AutogradAnyNonZero AutogradAllZero AutogradAllNonZero CreateObject Enter Exit TypeCheck ListIndex "
        "IgnoredPythonOp"
    ).split()
    if name != "IgnoredPythonOp"
)

FORBIDDEN_ATEN = frozenset(
    f"aten::{name}"
    for name in (
        "from_file save load set_ set set_data _print storage_offset untyped_storage _pin_memory pin_memory "
        "record_stream _nested_view_from_buffer _nested_view_from_buffer_copy"
    ).split()
)

# Names the TorchScript source printer writes for operations without a `torch.` prefix.
BARE_CALLS = {
    "print": "prim::Print",
    "fork": "prim::fork",
    "wait": "aten::wait",
    "awaitable": "prim::awaitable",
    "awaitable_wait": "prim::awaitable_wait",
    "awaitable_nowait": "prim::awaitable_nowait",
    "rpc_async": "prim::rpc_async",
    "rpc_sync": "prim::rpc_sync",
    "rpc_remote": "prim::rpc_remote",
}

MAX_CODE_BYTES = 64 << 20
_schemas = None


def _aten_risky():
    """`aten::` operators with a file name or a storage among their arguments."""
    global _schemas
    if _schemas is None:
        import torch

        risky = set()
        for schema in torch._C._jit_get_all_schemas():
            if not schema.name.startswith("aten::"):
                continue
            for argument in schema.arguments:
                kind = str(argument.type)
                if (argument.name in ("filename", "file", "path", "f") and "str" in kind) or "Storage" in kind:
                    risky.add(schema.name)
        _schemas = frozenset(risky)
    return _schemas


def is_allowed(op):
    if op.startswith("aten::"):
        return op not in FORBIDDEN_ATEN and op not in _aten_risky()
    return op in ALLOWED_PRIM


def refuse(op, where):
    return ForbiddenOperation(f"The model called a forbidden operation `{op}` (in {where}).")


# --------------------------------------------------------------------------- before loading


def check_archive(data):
    """Every operation named in the archive's TorchScript source, before anything is loaded."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [info for info in archive.infolist() if _is_code(info.filename)]
    except zipfile.BadZipFile as exc:
        raise SandboxError(f"The TorchScript archive is corrupt: {exc}.") from None
    if sum(info.file_size for info in entries) > MAX_CODE_BYTES:
        raise SandboxError(f"The TorchScript archive has more than {MAX_CODE_BYTES >> 20} MiB of code.")
    for info in entries:
        source = archive.read(info).decode("utf-8", errors="replace")
        try:
            tree = ast.parse(source, filename=info.filename)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise SandboxError(f"The TorchScript code in {info.filename} could not be read: {exc}") from None
        for op, where in _source_ops(tree, _module_name(info.filename)):
            if not is_allowed(op):
                raise refuse(op, where)


def _is_code(name):
    parts = name.split("/")
    return "code" in parts[:2] and name.endswith(".py")


def _module_name(filename):
    parts = filename.split("/")
    return ".".join(parts[parts.index("code") + 1 :])[: -len(".py")]


def _dotted(node):
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
        return names[::-1]
    return None


def _source_ops(tree, module):
    """(operation, where) for every operation a code file names, as TorchScript's importer resolves them.

    Every attribute chain counts, called or not (`f = torch.from_file` then `f(…)`), and so does
    `getattr(torch, "from_file")`; the source printer writes neither, a hand-edited archive might.
    """
    for scope, qualname in _functions(tree.body, module):
        where = f"`{qualname}`"
        in_order = sorted(ast.walk(scope), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
        for node in in_order:
            names = None
            if isinstance(node, ast.Attribute):
                names = _dotted(node)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in BARE_CALLS:
                    yield BARE_CALLS[node.func.id], where
                elif node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
                    owner, name = _dotted(node.args[0]), node.args[1]
                    if isinstance(name, ast.Constant) and isinstance(name.value, str):
                        names = [*(owner or ["<value>"]), name.value]
            if names:
                op = _op_of(names)
                if op is not None:
                    yield op, where


def _op_of(names):
    """The operator an attribute chain denotes, or None when it is none we need to judge."""
    if names[:3] == ["__torch__", "torch", "classes"]:
        return "torch.classes." + ".".join(names[3:])
    if names[0] == "torch" and len(names) >= 4 and names[1] == "ops":
        return f"{names[2]}::{'.'.join(names[3:])}"
    if names[0] == "ops" and len(names) >= 3:
        return f"{names[1]}::{'.'.join(names[2:])}"
    if names[0] == "torch" and len(names) == 2:
        return f"aten::{names[1]}"
    if names[0] not in ("torch", "ops", "__torch__") and len(names) >= 2:
        op = f"aten::{names[-1]}"  # a method of a value: only its name is known here
        return op if op in FORBIDDEN_ATEN or op in _aten_risky() else None
    return None


def _functions(body, prefix):
    """Every top-level statement as a scope: functions and class methods by qualified name."""
    for statement in body:
        if isinstance(statement, ast.ClassDef):
            yield from _functions(statement.body, f"{prefix}.{statement.name}")
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield statement, f"{prefix}.{statement.name}"
        else:
            yield statement, prefix


# --------------------------------------------------------------------------- after loading


def check_module(module):
    """Every node of every method's inlined graph, over the module and all its submodules."""
    for qualified, submodule in module.named_modules():
        owner = qualified or "the model"
        for method in submodule._c._method_names():
            graph = submodule._c._get_method(method).inlined_graph
            where = f"`{method}` of {owner if owner == 'the model' else f'`{owner}`'}"
            for node in _walk(graph.nodes()):
                op = node.kind()
                if op == "prim::CallMethod":
                    # left after inlining only for methods without a graph: custom classes' builtins
                    class_name = node.inputsAt(0).type().str()
                    raise refuse(f"{class_name}.{node.s('name')}", where)
                if not is_allowed(op):
                    raise refuse(op, where)


def _walk(nodes):
    for node in nodes:
        yield node
        for block in node.blocks():
            yield from _walk(block.nodes())
