"""The distillation recipe, written once: teacher -> tuned scratch student -> distillation
candidates -> the student with the best validation accuracy -> an honest comparison.

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
"""

from kdzoo.recipe.backup import BackupError, BackupMismatchError, ResumableBackup, backup_state
from kdzoo.recipe.callbacks import (
    NonFiniteLossError,
    PlateauSchedule,
    RaiseOnNonFinite,
    ValidationStopping,
)
from kdzoo.recipe.candidates import Candidate, parse_candidates, scratch_tries
from kdzoo.recipe.config import DistilConfig, DistilResult, check_config, parse_terms
from kdzoo.recipe.distil import distil
from kdzoo.recipe.phases import (
    Stopping,
    compare,
    distil_student,
    same_initial_weights,
    train_scratch,
    train_supervised,
    train_teacher,
)
from kdzoo.recipe.selection import RECIPE, SCRATCH, TEACHER, RecipeResult, run, with_validation

__all__ = [
    "RECIPE",
    "SCRATCH",
    "TEACHER",
    "BackupError",
    "BackupMismatchError",
    "Candidate",
    "DistilConfig",
    "DistilResult",
    "NonFiniteLossError",
    "PlateauSchedule",
    "RaiseOnNonFinite",
    "RecipeResult",
    "ResumableBackup",
    "Stopping",
    "ValidationStopping",
    "backup_state",
    "check_config",
    "compare",
    "distil",
    "distil_student",
    "parse_candidates",
    "parse_terms",
    "run",
    "same_initial_weights",
    "scratch_tries",
    "train_scratch",
    "train_supervised",
    "train_teacher",
    "with_validation",
]
