"""Which ops of an exported graph core TensorFlow does not register.

A SavedModel that uses a custom op (e.g. tensorflow-text's
``TFText>WhitespaceTokenizeWithOffsetsV2``) loads only in a runtime that registered it:
``import tensorflow_text`` in Python, or a TF Serving build that links a recent enough TF
Text (stock TF Serving links an older one: tensorflow/serving#2064). The report walks every
node of ``saved_model.pb``, the graph and its function library.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2


@dataclasses.dataclass(frozen=True)
class OpReport:
    """The op types of an export, and those outside core TensorFlow.

    Attributes:
        ops: every op type in the graph and its functions (calls to library functions
            excluded).
        custom_ops: ``{op type: the package that registers it}`` for ops that
            ``tensorflow`` alone does not register.
    """

    ops: tuple
    custom_ops: dict

    @property
    def portable(self) -> bool:
        """True if plain ``tensorflow`` (and any TF Serving) can load the export."""
        return not self.custom_ops

    @property
    def requires(self) -> list[str]:
        """Python packages to import before loading the export."""
        return sorted(set(self.custom_ops.values()))

    def describe(self) -> str:
        """One line per custom op, or a line saying there is none."""
        if self.portable:
            return "ops outside core TensorFlow: none (loads in any TF runtime, TF Serving too)"
        lines = ["ops outside core TensorFlow (the runtime must register them):"]
        lines += [f"  {op}  [{pkg}]" for op, pkg in sorted(self.custom_ops.items())]
        lines.append(
            f"load with `import {', '.join(self.requires)}` first; stock TF Serving links an "
            "older TF Text (tensorflow/serving#2064): use --portable for an export without them"
        )
        return "\n".join(lines)


def read_saved_model(export_dir):
    """The ``SavedModel`` proto of ``export_dir/saved_model.pb``.

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError`` naming it if it
    does not parse or holds no ``serve`` graph (a truncated or overwritten file).
    """
    path = Path(export_dir) / "saved_model.pb"
    if not path.is_file():
        raise FileNotFoundError(f"No saved_model.pb in {export_dir}: not a SavedModel folder.")
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(path.read_bytes())
    except DecodeError as err:
        raise ValueError(
            f"{path} is not a readable SavedModel ({err}); expected a tensorflow.SavedModel "
            "protobuf. The file is truncated or damaged: export the model again."
        ) from None
    if not any("serve" in m.meta_info_def.tags for m in saved_model.meta_graphs):
        raise ValueError(
            f"{path} holds no graph tagged 'serve' ({len(saved_model.meta_graphs)} graphs); "
            "expected the serving graph. The file is truncated or damaged: export the model "
            "again."
        )
    return saved_model


def graph_op_types(export_dir) -> set[str]:
    """Every op type in ``export_dir/saved_model.pb`` (graph and function library)."""
    saved_model = read_saved_model(export_dir)
    ops, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        functions |= {f.signature.name for f in library.function}
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in library.function:
            ops |= {node.op for node in function.node_def}
    return ops - functions  # a node may call a library function by name


def _provider(op) -> str:
    # kdzoo's only source of custom ops is tensorflow-text; name what registers the op.
    try:
        import tensorflow_text  # noqa: F401  (registers its ops)
        from tensorflow.python.framework import op_def_registry
    except ImportError:
        return "unknown"
    return "tensorflow_text" if op_def_registry.get(op) is not None else "unknown"


def op_report(export_dir) -> OpReport:
    """Lists the ops of an export and those ``tensorflow`` alone does not register.

    ``tf.raw_ops`` holds exactly the core ops (a custom op library loaded later, such as
    tensorflow-text's, adds no entry there), so the check needs no second process. The
    fresh-process check of ``kdzoo check-export`` confirms it against the op registry of
    a process that imported ``tensorflow`` only.
    """
    ops = graph_op_types(export_dir)
    custom = sorted(op for op in ops if not hasattr(tf.raw_ops, op))
    return OpReport(tuple(sorted(ops)), {op: _provider(op) for op in custom})
