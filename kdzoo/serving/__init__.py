"""Serving the distilled student: raw-input preprocessing inside the graph, the op report,
TF Serving requests and warmup, student bundles, and the export check.

The export itself is ``kdzoo.export.export_for_serving``; ``kdzoo export`` and
``kdzoo check-export`` are the command-line front ends.
"""

from kdzoo.serving.bundle import StudentBundle, load_student, save_student
from kdzoo.serving.check import CheckReport, check_export
from kdzoo.serving.ops import OpReport, op_report
from kdzoo.serving.preprocessing import RawPreprocessor, ServingPreprocessing
from kdzoo.serving.warmup import predict_request, read_warmup, write_warmup

__all__ = [
    "CheckReport",
    "OpReport",
    "RawPreprocessor",
    "ServingPreprocessing",
    "StudentBundle",
    "check_export",
    "load_student",
    "op_report",
    "predict_request",
    "read_warmup",
    "save_student",
    "write_warmup",
]
