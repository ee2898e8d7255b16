"""The distillation recipe, written once: teacher -> scratch student -> distilled student ->
comparison.

- ``phases``: the public phases (``train_teacher``, ``train_scratch``, ``distil_student``,
  ``compare``) and ``run``, all of them at once. ``kdzoo demo``, the ``kdzoo bench``
  studies and the notebooks call them.
- ``distil`` (``DistilConfig``): the phases on a dataset by name, under any tf.distribute
  strategy, resumable from backups (``kdzoo distil``).
- ``backup``, ``batching``, ``callbacks``: what makes a resumed run equal the
  uninterrupted one, and what stops a diverging one.

Every default comes from ``kdzoo.defaults.DEFAULTS``.
"""

from kdzoo.recipe.backup import BackupError, BackupMismatchError, ResumableBackup, backup_state
from kdzoo.recipe.callbacks import NonFiniteLossError, RaiseOnNonFinite
from kdzoo.recipe.config import DistilConfig, DistilResult, check_config, parse_terms
from kdzoo.recipe.distil import distil
from kdzoo.recipe.phases import (
    RecipeResult,
    compare,
    distil_student,
    run,
    same_initial_weights,
    train_scratch,
    train_supervised,
    train_teacher,
)

__all__ = [
    "BackupError",
    "BackupMismatchError",
    "DistilConfig",
    "DistilResult",
    "NonFiniteLossError",
    "RaiseOnNonFinite",
    "RecipeResult",
    "ResumableBackup",
    "backup_state",
    "check_config",
    "compare",
    "distil",
    "distil_student",
    "parse_terms",
    "run",
    "same_initial_weights",
    "train_scratch",
    "train_supervised",
    "train_teacher",
]
