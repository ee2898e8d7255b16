"""kdzoo's defaults, in one table.

Every entry point takes its defaults from ``DEFAULTS``: the ``Distiller``'s default
objective (``kdzoo.distillation.default_terms``), the recipe's phases and ``distil()``,
``kdzoo demo``, the ``kdzoo bench`` studies, the CLI's help texts, and the text vectoriser.
The README's defaults table quotes it, and ``tests/test_defaults.py`` checks that every
entry point agrees with it.

Why these values: τ, the CE/KD weights, the epochs, the batch size and the learning rate
(Adam, cosine-decayed to 0 over each phase) are the embedded demo's, chosen on its
validation split, never its test split. The text vocabulary keeps the 20,000 most frequent
training tokens.
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
        teacher_epochs: epochs of teacher training.
        epochs: epochs of each student phase (scratch and distilled).
        batch_size: examples per step (the global batch under a strategy).
        learning_rate: the optimizer's peak rate, cosine-decayed to 0 over each phase.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        seed: initialisation, data order and pairing seed.
        text_max_tokens: text vocabulary entries kept, ``[PAD]`` included (the OOV bucket
            comes on top).
        text_sequence_length: token ids per sentence (padded or truncated), where a dataset
            does not set its own.
    """

    temperature: float = 4.0
    ce_weight: float = 0.5
    kd_weight: float = 0.5
    teacher_epochs: int = 15
    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 2e-3
    optimizer: str = "adam"
    seed: int = 0
    text_max_tokens: int = 20000
    text_sequence_length: int = 64


DEFAULTS = Defaults()
