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
(DKD, non-target KD, teacher-bounded regression) also receives the labels: its ``y_true`` is
``{"teacher": teacher_output, "labels": labels}`` (``kdzoo.losses.teacher_with_labels``).
Sample weights and the Keras reduction apply as for any other term.

Each loss class declares what it compares (``compares``: ``"labels"``, ``"logits"`` or
``"features"``); ``LossTerm.parse`` and ``default_terms`` read that declaration.
"""

from __future__ import annotations

import keras

from kdzoo import losses
from kdzoo.defaults import DEFAULTS
from kdzoo.losses import TemperatureMixin
from kdzoo.validation import number_problem

TARGETS = ("labels", "teacher")

#: ``default_terms(feature_loss=...)`` short names.
_FEATURE_LOSS_ALIASES = {"mse": "feature_mse", "cosine": "feature_cosine"}


def _compares(loss) -> str:
    return getattr(loss, "compares", "logits")


@keras.saving.register_keras_serializable(package="kdzoo")
class LossTerm:
    """A weighted loss and the outputs it reads.

    Args:
        loss: a ``keras.losses.Loss`` or a name from ``kdzoo.losses.names()``.
        weight: the term's weight in the total loss, a finite number >= 0. Defaults to 1.0.
        target: ``"teacher"`` or ``"labels"``. Defaults to ``"teacher"``.
        teacher_output: teacher output compared when ``target="teacher"``: ``"logits"`` or a
            feature name. Defaults to ``"logits"``.
        student_output: ``"logits"`` or a student feature name. Defaults to ``"logits"``.
        name: reported as the ``f"{name}_loss"`` metric. Defaults to the loss's name.

    Example:

    >>> LossTerm("kd", 0.5)
    >>> LossTerm("feature_cosine", 0.1, teacher_output="embedding", student_output="embedding")
    >>> LossTerm.parse("dkd:0.5", temperature=2.0)   # from a config or CLI string
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
            loss = losses.get(loss)
        if not isinstance(loss, keras.losses.Loss):
            raise TypeError(f"LossTerm `loss` must be a keras.losses.Loss or a name; got {loss!r}.")
        if target not in TARGETS:
            raise ValueError(f"LossTerm `target` must be one of {TARGETS}; got {target!r}.")
        if getattr(loss, "needs_labels", False) and target != "teacher":
            raise ValueError(
                f"LossTerm: {type(loss).__name__} compares the teacher's logits with the "
                f"student's and also reads the labels; use target='teacher', got {target!r}."
            )
        expected = number_problem(weight, strict=False)
        if expected:
            raise ValueError(f"LossTerm `weight` must be {expected}; got {weight!r}.")
        self.loss = loss
        self.weight = float(weight)
        self.target = target
        self.teacher_output = teacher_output if target == "teacher" else None
        self.student_output = student_output
        self.name = name or loss.name

    @classmethod
    def parse(cls, spec, temperature=DEFAULTS.temperature):
        """A ``LossTerm`` from a ``"name[:weight]"`` string (configs and the CLI).

        A loss that compares labels (``"ce"``) reads the labels; every other one the
        teacher's logits. Temperature-based losses (``kd``, ``kd_std``, ``dkd``, ``nkd``,
        ``kd_multi_label``) get ``temperature``. Feature losses need named outputs on both
        sides, which a string cannot say: build them as ``LossTerm(name, weight,
        teacher_output=..., student_output=...)``.

        Args:
            spec: e.g. ``"kd"`` (weight 1.0) or ``"kd:0.5"``.
            temperature: ``τ`` of a temperature-based loss. Defaults to
                ``DEFAULTS.temperature``.

        Returns:
            The ``LossTerm``, named after the loss (``"kd"``).

        Raises:
            ValueError: an unknown name (the message lists the valid ones), a feature loss,
                or a weight that is not a finite number >= 0.

        Example:

        >>> [LossTerm.parse(s, temperature=4.0) for s in ("ce:0.5", "kd:0.5")]
        """
        name, _, weight_text = str(spec).partition(":")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ValueError(
                f"Loss term {spec!r}: weight {weight_text!r} is not a number."
            ) from None
        expected = number_problem(weight, strict=False)
        if expected:
            raise ValueError(f"Loss term {spec!r}: weight {weight_text!r} must be {expected}.")
        if name not in losses.names():
            raise ValueError(
                f"Loss term {spec!r}: unknown loss {name!r}. Valid names: "
                f"{', '.join(losses.names())}."
            )
        loss_class = type(losses.get(name))
        compares = _compares(loss_class)
        if compares == "features":
            raise ValueError(
                f"Loss term {spec!r}: {name!r} compares features; build it as "
                "kdzoo.LossTerm(name, weight, teacher_output=..., student_output=...)."
            )
        kwargs = {"temperature": temperature} if issubclass(loss_class, TemperatureMixin) else {}
        target = "labels" if compares == "labels" else "teacher"
        return cls(losses.get(name, **kwargs), weight, target=target, name=name)

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


def _feature_loss_names():
    names = [n for n in losses.names() if _compares(type(losses.get(n))) == "features"]
    return sorted([*_FEATURE_LOSS_ALIASES, *names])


def default_terms(
    temperature=DEFAULTS.temperature,
    ce_weight=DEFAULTS.ce_weight,
    kd_weight=DEFAULTS.kd_weight,
    feature_weight=0.0,
    teacher_feature=None,
    student_feature=None,
    feature_loss=None,
    task=None,
):
    """The default objective as ``LossTerm``s: the Distiller's ``terms=None``.

    ``L = ce_weight · CE(y, s) + kd_weight · τ² · KL(softmax(t/τ) ‖ softmax(s/τ))
    + feature_weight · feature_loss(t_feat, adapter(s_feat))``

    with ``s``, ``t`` the student and teacher logits; the terms are named ``"ce"``, ``"kd"``
    and ``"feature"`` (the last only with ``feature_weight > 0``). Defaults come from
    ``kdzoo.defaults.DEFAULTS``.

    Args:
        temperature: softmax temperature ``τ > 0`` of the KD term. Defaults to 4.0.
        ce_weight: weight of hard-label cross-entropy. Defaults to 0.5.
        kd_weight: weight of the soft-target term. Defaults to 0.5.
        feature_weight: weight of the feature term; 0 leaves it out. Defaults to 0.0.
        teacher_feature, student_feature: the ``Feature`` names the feature term compares;
            only with ``feature_weight > 0``. Defaults to ``"embedding"``.
        feature_loss: ``"mse"``, ``"cosine"`` or the name of another loss that compares
            features (``"at"``, ``"rkd_distance"``...); only with ``feature_weight > 0``.
            Defaults to ``"mse"``.
        task: a ``kdzoo.tasks.Task``, or None (single-label classification). For another
            kind the label term is the task's ``label_loss()`` (binary cross-entropy on
            logits, or MSE for regression) and the teacher term its
            ``distillation_loss(temperature)`` (per-label binary KL, or MSE to the
            teacher's prediction); they are named ``"label"`` and ``"kd"``.

    Returns:
        A list of ``LossTerm``.

    Example:

    >>> kdzoo.Distiller(
    ...     teacher=teacher, student=student,
    ...     terms=kdzoo.distillation.default_terms(temperature=2.0, feature_weight=0.1),
    ... )
    """
    feature_arguments = {
        "teacher_feature": teacher_feature,
        "student_feature": student_feature,
        "feature_loss": feature_loss,
    }
    if task is None or task.kind == "classification":
        terms = [
            LossTerm(losses.HardLabelCrossentropy(), ce_weight, target="labels", name="ce"),
            LossTerm(losses.SoftTargetKLDivergence(temperature), kd_weight, name="kd"),
        ]
    else:
        terms = [
            LossTerm(task.label_loss(), ce_weight, target="labels", name="label"),
            LossTerm(task.distillation_loss(temperature), kd_weight, name="kd"),
        ]
    expected = number_problem(feature_weight, strict=False)
    if expected:
        raise ValueError(f"`feature_weight` must be {expected}; got {feature_weight!r}.")
    if not feature_weight:
        unused = [name for name, value in feature_arguments.items() if value is not None]
        if unused:
            raise ValueError(
                ", ".join(f"`{name}`" for name in unused)
                + (" configures" if len(unused) == 1 else " configure")
                + " the feature term, which is off: set `feature_weight` > 0 to use "
                f"it (got feature_weight={feature_weight!r})."
            )
        return terms
    feature_loss = "mse" if feature_loss is None else feature_loss
    name = _FEATURE_LOSS_ALIASES.get(feature_loss, feature_loss)
    valid = _feature_loss_names()
    if feature_loss not in valid:
        raise ValueError(f"`feature_loss` must be one of {valid}; got {feature_loss!r}.")
    terms.append(
        LossTerm(
            losses.get(name),
            feature_weight,
            teacher_output=teacher_feature or "embedding",
            student_output=student_feature or "embedding",
            name="feature",
        )
    )
    return terms
