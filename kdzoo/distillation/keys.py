"""Batch keys that distillation reads beside the models' own inputs.

A module of its own, with no imports, so that the teachers, the cache and the ``Distiller``
agree on the names without importing one another (or TensorFlow).
"""

#: Batch key under which precomputed teacher outputs (``{"logits": ..., <feature>: ...}``)
#: travel; when present the Distiller skips the teachers' forward passes. With several
#: teachers the keys are qualified: ``{"<teacher name>/logits": ..., "<teacher name>/<f>": ...}``.
TEACHER_OUTPUTS = "teacher_outputs"
