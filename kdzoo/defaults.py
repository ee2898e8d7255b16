"""kdzoo's defaults, in one table.

Every entry point takes its defaults from ``DEFAULTS``: the ``Distiller``'s default
objective (``kdzoo.distillation.default_terms``), the recipe's phases and ``distil()``,
``kdzoo demo``, the ``kdzoo bench`` studies, the CLI's help texts, and the text vectoriser.
The README's defaults table quotes it, and ``tests/test_defaults.py`` checks that every
entry point agrees with it.

Why these values: every phase of the recipe (``kdzoo.recipe.run``) trains under the same
rules, keyed to a validation split (the dataset's own, or a stratified, seeded
``validation_fraction`` of the training split): Adam at ``learning_rate``, halved
(``plateau_factor``) after ``plateau_patience`` epochs without a better validation
accuracy, stopped after ``patience`` such epochs, and returned at its best validation epoch,
within an epoch budget (``teacher_epochs``, ``epochs``) large enough that early stopping,
not the budget, ends training. The distillation settings tried are ``candidates``; the
scratch student gets as many tries over its own knobs (label smoothing, learning rate). The
best scratch try is returned unless the best distillation candidate beats it on validation
by more than ``distil_margin_se`` standard errors of their paired difference (the
one-standard-error rule), so scratch wins ties and gains within the validation noise. The
README's "Defaults" section gives the measurements behind them. The Distiller's own
``terms=None`` objective is ``temperature``, ``ce_weight`` and ``kd_weight``. The text
vocabulary keeps the 20,000 most frequent training tokens.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Defaults:
    """The default of each setting shared by several entry points.

    Attributes:
        temperature: the KD temperature τ of temperature-based loss terms.
        ce_weight: weight of the hard-label cross-entropy term.
        kd_weight: weight of the soft-target (teacher) term.
        teacher_epochs: the teacher's epoch budget (early stopping usually ends it sooner).
        epochs: each student's epoch budget (every scratch and distillation candidate).
        patience: epochs without a better validation accuracy before a phase stops (its
            best epoch's weights are kept).
        plateau_patience, plateau_factor: epochs without a better validation accuracy
            before the learning rate is multiplied by ``plateau_factor``.
        validation_fraction: share of each class of the training split held out for
            validation when a dataset has no validation split.
        candidates: the distillation settings the recipe tries
            (``kdzoo.recipe.Candidate.parse``: ``"terms@t=τ"``).
        multi_label_candidates: those of a binary or multi-label task (``kdzoo.tasks``):
            the per-label binary KL at two temperatures, and Tang et al.'s (2019) logit
            MSE.
        regression_candidates: those of a regression task: MSE and Huber to the teacher's
            prediction, and Chen et al.'s (2017) teacher-bounded loss, each beside the
            label loss (``"label"``: MSE to the targets).
        distil_margin_se: the recipe returns its best distillation candidate only if that
            candidate's validation accuracy beats the tuned scratch student's by more than
            this many standard errors of their paired difference on the validation examples;
            otherwise the scratch student. 1 is Breiman's one-standard-error rule (Breiman
            et al. 1984; Hastie et al., "The Elements of Statistical Learning", §7.10):
            prefer the simpler model, here the one that needs no teacher, unless the
            evidence is clear. 0 takes any gain, as a plain maximum does.
        batch_size: examples per step (the global batch under a strategy).
        learning_rate: the optimizer's starting rate (reduced on validation plateaus).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        seed: initialisation, data order and pairing seed.
        op_determinism: TensorFlow's op determinism when a run is seeded
            (``kdzoo.determinism.seed_everything``): ``"auto"`` is on unless XLA is in use
            (``jit_compile=True``, or a GPU or TPU), which Keras turns off under it.
        text_max_tokens: text vocabulary entries kept, ``[PAD]`` included (the OOV bucket
            comes on top).
        text_sequence_length: token ids per sentence (padded or truncated), where a dataset
            does not set its own.
    """

    temperature: float = 4.0
    ce_weight: float = 0.5
    kd_weight: float = 0.5
    teacher_epochs: int = 60
    epochs: int = 60
    patience: int = 8
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    validation_fraction: float = 0.1
    candidates: tuple = ("ce:0.5,kd:0.5@t=2", "ce:0.5,kd:0.5@t=4", "ce:0.5,kd_std:0.5@t=2")
    multi_label_candidates: tuple = (
        "label:0.5,kd_multi_label:0.5@t=2",
        "label:0.5,kd_multi_label:0.5@t=4",
        "label:0.5,logit_mse:0.5",
    )
    regression_candidates: tuple = (
        "label:0.5,teacher_mse:0.5",
        "label:0.5,teacher_huber:0.5",
        "label:0.5,teacher_bounded:0.5",
    )
    distil_margin_se: float = 1.0
    batch_size: int = 64
    learning_rate: float = 2e-3
    optimizer: str = "adam"
    seed: int = 0
    op_determinism: bool | str = "auto"
    text_max_tokens: int = 20000
    text_sequence_length: int = 64


DEFAULTS = Defaults()
