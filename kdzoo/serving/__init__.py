"""Serving the distilled student: the versioned TF Serving export, raw-input preprocessing
inside the graph, the op report, TF Serving requests and warmup, student bundles, and the
export check.

Export a student ``keras.Model`` (``distiller.student``, never the Distiller):

>>> kdzoo.serving.export_student(distiller.student, "saved_models", name="audio_student",
...                              data=data, teacher_name=distiller.teacher.name)

``kdzoo export`` and ``kdzoo check-export`` are the command-line front ends.
"""

from kdzoo.serving.bundle import StudentBundle, bundle_student, load_student, save_student
from kdzoo.serving.check import CheckReport, check_export, real_inputs
from kdzoo.serving.export import (
    METADATA_FILE,
    SERVING_DEFAULT,
    SERVING_PREPROCESSED,
    SERVING_WAV_BYTES,
    DatasetServing,
    check_finite_weights,
    check_student,
    export_for_serving,
    export_saved_model,
    export_student,
    next_version,
    read_metadata,
    serving_from_dataset,
)
from kdzoo.serving.ops import OpReport, op_report
from kdzoo.serving.preprocessing import RawPreprocessor, ServingPreprocessing, raw_examples
from kdzoo.serving.warmup import predict_request, proto_array, read_warmup, write_warmup

__all__ = [
    "METADATA_FILE",
    "SERVING_DEFAULT",
    "SERVING_PREPROCESSED",
    "SERVING_WAV_BYTES",
    "CheckReport",
    "DatasetServing",
    "OpReport",
    "RawPreprocessor",
    "ServingPreprocessing",
    "StudentBundle",
    "bundle_student",
    "check_export",
    "check_finite_weights",
    "check_student",
    "export_for_serving",
    "export_saved_model",
    "export_student",
    "load_student",
    "next_version",
    "op_report",
    "predict_request",
    "proto_array",
    "raw_examples",
    "read_metadata",
    "read_warmup",
    "real_inputs",
    "save_student",
    "serving_from_dataset",
    "write_warmup",
]
