"""The distillation recipe, written once: teacher -> tuned scratch student -> distillation
candidates -> the scratch student, or the best distilled one where validation shows it
better beyond its noise -> an honest comparison.

- ``run`` (``selection``): the recipe on a loaded dataset; returns a ``RecipeResult`` with
  the comparison table, every candidate's validation and test numbers, and the chosen
  student. ``kdzoo demo``, the ``kdzoo bench`` studies and the notebooks call it.
- ``Candidate`` (``candidates``): one distillation setting or scratch try, written as a
  string such as ``"ce:0.5,kd_std:0.5@t=2"`` or ``"scratch@ls=0.1"``.
- ``phases``: the single phases (``train_teacher``, ``train_scratch``, ``distil_student``,
  ``compare``) and the validation rules they follow (``Stopping``).
- ``distil`` (``DistilConfig``): the recipe on a dataset by name, under any tf.distribute
  strategy, resumable from backups (``kdzoo distil``).
- ``report``: the report's tables and figure, written to the run folder.
- ``backup``, ``batching``, ``callbacks``: what makes a resumed run equal the
  uninterrupted one, and what stops a diverging one.

Every default comes from ``kdzoo.defaults.DEFAULTS``.

Attributes load lazily: a study that runs the recipe imports only the modules it uses,
so the code fingerprint of its results (``kdzoo.results``) covers only those.
"""

from kdzoo._lazy import attributes

_ATTRIBUTES = {
    "BackupError": "kdzoo.recipe.backup",
    "BackupMismatchError": "kdzoo.recipe.backup",
    "ResumableBackup": "kdzoo.recipe.backup",
    "backup_state": "kdzoo.recipe.backup",
    "NonFiniteLossError": "kdzoo.recipe.callbacks",
    "PlateauSchedule": "kdzoo.recipe.callbacks",
    "RaiseOnNonFinite": "kdzoo.recipe.callbacks",
    "ValidationStopping": "kdzoo.recipe.callbacks",
    "Candidate": "kdzoo.recipe.candidates",
    "parse_candidates": "kdzoo.recipe.candidates",
    "scratch_tries": "kdzoo.recipe.candidates",
    "DistilConfig": "kdzoo.recipe.config",
    "DistilResult": "kdzoo.recipe.config",
    "check_config": "kdzoo.recipe.config",
    "parse_terms": "kdzoo.recipe.config",
    "distil": "kdzoo.recipe.distilling",
    "Stopping": "kdzoo.recipe.phases",
    "compare": "kdzoo.recipe.phases",
    "distil_student": "kdzoo.recipe.phases",
    "same_initial_weights": "kdzoo.recipe.phases",
    "train_scratch": "kdzoo.recipe.phases",
    "train_supervised": "kdzoo.recipe.phases",
    "train_teacher": "kdzoo.recipe.phases",
    "RECIPE": "kdzoo.recipe.selection",
    "RecipeResult": "kdzoo.recipe.selection",
    "SCRATCH": "kdzoo.recipe.selection",
    "Selection": "kdzoo.recipe.selection",
    "TEACHER": "kdzoo.recipe.selection",
    "decide": "kdzoo.recipe.selection",
    "paired_gain": "kdzoo.recipe.selection",
    "run": "kdzoo.recipe.selection",
    "with_validation": "kdzoo.recipe.selection",
}

__all__ = sorted(_ATTRIBUTES)


__getattr__, __dir__ = attributes(__name__, _ATTRIBUTES)
