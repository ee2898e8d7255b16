"""Knowledge distillation: the ``Distiller``, its loss terms, teachers, cache and schedules.

- ``Distiller`` (``distiller``): the ``keras.Model`` that trains a student against frozen
  teachers;
- ``LossTerm``, ``default_terms`` (``terms``): the objective, one weighted loss per term;
- ``TeacherEnsemble`` (``teachers``): one or several teachers and how their soft targets mix;
- ``cache_teacher_outputs``, ``with_teacher_outputs``, ``TEACHER_OUTPUTS`` (``cache``):
  offline distillation from teacher outputs computed once;
- ``read_teacher_outputs``, ``file_teacher`` (``outputs_file``): a teacher's logits or
  probabilities from an NPZ, CSV or Parquet file keyed by example id, and the weightless
  teacher that reads them from the batch (a teacher kdzoo never runs);
- ``DistillationScheduler`` and the schedules (``schedules``): term weights and the
  temperature per epoch.
"""

from kdzoo.distillation.cache import (
    TEACHER_OUTPUTS,
    cache_teacher_outputs,
    load_teacher_outputs,
    with_teacher_outputs,
)
from kdzoo.distillation.distiller import Distiller
from kdzoo.distillation.outputs_file import FILE_TEACHER_KEY, file_teacher, read_teacher_outputs
from kdzoo.distillation.schedules import (
    Constant,
    Cosine,
    DistillationScheduler,
    Exponential,
    Linear,
    Schedule,
)
from kdzoo.distillation.teachers import (
    TEACHER_COMBINATIONS,
    TeacherEnsemble,
    entropy_teacher_log_weights,
    mix_teacher_probabilities,
)
from kdzoo.distillation.terms import LossTerm, default_terms

__all__ = [
    "FILE_TEACHER_KEY",
    "TEACHER_COMBINATIONS",
    "TEACHER_OUTPUTS",
    "Constant",
    "Cosine",
    "DistillationScheduler",
    "Distiller",
    "Exponential",
    "Linear",
    "LossTerm",
    "Schedule",
    "TeacherEnsemble",
    "cache_teacher_outputs",
    "default_terms",
    "entropy_teacher_log_weights",
    "load_teacher_outputs",
    "file_teacher",
    "mix_teacher_probabilities",
    "read_teacher_outputs",
    "with_teacher_outputs",
]
