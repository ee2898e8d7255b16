"""Knowledge distillation: the ``Distiller``, its loss terms, teachers, cache and schedules.

- ``Distiller`` (``distiller``): the ``keras.Model`` that trains a student against frozen
  teachers;
- ``LossTerm``, ``default_terms`` (``terms``): the objective, one weighted loss per term;
- ``TeacherEnsemble`` (``teachers``): one or several teachers and how their soft targets mix;
- ``cache_teacher_outputs``, ``with_teacher_outputs``, ``arrays_with_teacher_outputs``
  (``cache``), ``TEACHER_OUTPUTS`` (``keys``): offline distillation from teacher outputs
  computed once, from a tf.data pipeline or from NumPy arrays;
- ``read_teacher_outputs``, ``file_teacher`` (``outputs_file``): a teacher's logits or
  probabilities from an NPZ, CSV or Parquet file keyed by example id, and the weightless
  teacher that reads them from the batch (a teacher kdzoo never runs);
- ``load_teacher`` (``sources``): a teacher from a ``keras.Model``, a ``.keras`` file, a
  SavedModel folder or a KerasHub text classifier, with named inputs and logits out;
- ``hub_teacher``, ``with_raw_text``, ``RAW_TEXT`` (``hub``): a KerasHub task reading raw
  sentences through its own tokenizer while the student reads kdzoo's token ids;
- ``DistillationScheduler`` and the schedules (``schedules``): term weights and the
  temperature per epoch.

Attributes load lazily: a study that runs the recipe imports only the modules it uses,
so the code fingerprint of its results (``kdzoo.results``) covers only those.
"""

from kdzoo._lazy import attributes

_ATTRIBUTES = {
    "TEACHER_OUTPUTS": "kdzoo.distillation.keys",
    "arrays_with_teacher_outputs": "kdzoo.distillation.cache",
    "cache_teacher_outputs": "kdzoo.distillation.cache",
    "load_teacher_outputs": "kdzoo.distillation.cache",
    "with_teacher_outputs": "kdzoo.distillation.cache",
    "Distiller": "kdzoo.distillation.distiller",
    "FILE_TEACHER_KEY": "kdzoo.distillation.outputs_file",
    "file_teacher": "kdzoo.distillation.outputs_file",
    "read_teacher_outputs": "kdzoo.distillation.outputs_file",
    "load_teacher": "kdzoo.distillation.sources",
    "RAW_TEXT": "kdzoo.distillation.hub",
    "hub_teacher": "kdzoo.distillation.hub",
    "with_raw_text": "kdzoo.distillation.hub",
    "Constant": "kdzoo.distillation.schedules",
    "Cosine": "kdzoo.distillation.schedules",
    "DistillationScheduler": "kdzoo.distillation.schedules",
    "Exponential": "kdzoo.distillation.schedules",
    "Linear": "kdzoo.distillation.schedules",
    "Schedule": "kdzoo.distillation.schedules",
    "TEACHER_COMBINATIONS": "kdzoo.distillation.teachers",
    "TeacherEnsemble": "kdzoo.distillation.teachers",
    "entropy_teacher_log_weights": "kdzoo.distillation.teachers",
    "mix_teacher_probabilities": "kdzoo.distillation.teachers",
    "LossTerm": "kdzoo.distillation.terms",
    "default_terms": "kdzoo.distillation.terms",
}

__all__ = sorted(_ATTRIBUTES)


__getattr__, __dir__ = attributes(__name__, _ATTRIBUTES)
