"""``LossTerm``: one weighted loss of a distillation objective and what it compares.

A Distiller's objective is ``Σ_i weight_i · loss_i(target_i, student_output_i)``:

- ``target="labels"``: the loss compares the batch labels with a student output
  (``"logits"``), e.g. hard-label cross-entropy;
- ``target="teacher"``: the loss compares a teacher output with a student output, each
  ``"logits"`` or a named ``Feature`` (``kdzoo.models.feature_names``). When the widths
  differ the Distiller inserts a trainable adapter on the student side (FitNets), unless
  the loss compares different widths itself (its class attribute ``needs_adapter = False``:
  attention transfer, RKD).

A ``target="teacher"`` term whose loss has the class attribute ``needs_labels = True``
(DKD, non-target KD) also receives the labels: its ``y_true`` is
``{"teacher": teacher_output, "labels": labels}`` (``kdzoo.losses.teacher_with_labels``).
Sample weights and the Keras reduction apply as for any other term.
"""

from __future__ import annotations

import keras

import kdzoo.losses

TARGETS = ("labels", "teacher")


@keras.saving.register_keras_serializable(package="kdzoo")
class LossTerm:
    """A weighted loss and the outputs it reads.

    Args:
        loss: a ``keras.losses.Loss`` or a name from ``kdzoo.losses.names()``.
        weight: the term's weight in the total loss. Defaults to 1.0.
        target: ``"teacher"`` or ``"labels"``. Defaults to ``"teacher"``.
        teacher_output: teacher output compared when ``target="teacher"``: ``"logits"`` or a
            feature name. Defaults to ``"logits"``.
        student_output: ``"logits"`` or a student feature name. Defaults to ``"logits"``.
        name: reported as the ``f"{name}_loss"`` metric. Defaults to the loss's name.
    """

    def __init__(
        self,
        loss,
        weight=1.0,
        target="teacher",
        teacher_output="logits",
        student_output="logits",
        name=None,
    ):
        if isinstance(loss, str):
            loss = kdzoo.losses.get(loss)
        if not isinstance(loss, keras.losses.Loss):
            raise TypeError(f"LossTerm `loss` must be a keras.losses.Loss or a name; got {loss!r}.")
        if target not in TARGETS:
            raise ValueError(f"LossTerm `target` must be one of {TARGETS}; got {target!r}.")
        if getattr(loss, "needs_labels", False) and target != "teacher":
            raise ValueError(
                f"LossTerm: {type(loss).__name__} compares the teacher's logits with the "
                f"student's and also reads the labels; use target='teacher', got {target!r}."
            )
        if not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"LossTerm `weight` must be a number >= 0; got {weight!r}.")
        self.loss = loss
        self.weight = float(weight)
        self.target = target
        self.teacher_output = teacher_output if target == "teacher" else None
        self.student_output = student_output
        self.name = name or loss.name

    @property
    def needs_labels(self) -> bool:
        """Whether the loss's ``y_true`` is ``{"teacher": ..., "labels": ...}``."""
        return bool(getattr(self.loss, "needs_labels", False))

    @property
    def needs_adapter(self) -> bool:
        """Whether a width mismatch calls for a FitNets adapter (False: the loss copes)."""
        return bool(getattr(self.loss, "needs_adapter", True))

    def get_config(self):
        return {
            "loss": keras.saving.serialize_keras_object(self.loss),
            "weight": self.weight,
            "target": self.target,
            "teacher_output": self.teacher_output,
            "student_output": self.student_output,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
        return cls(**config)

    def __repr__(self):
        return (
            f"LossTerm({self.name!r}, weight={self.weight}, target={self.target!r}, "
            f"teacher_output={self.teacher_output!r}, student_output={self.student_output!r})"
        )
