"""Task types: what a model's outputs mean, declared once (issue 16).

A ``Task`` says what the labels are and what the outputs mean, and everything that depends
on it follows from it: the output layer (``head``), the label loss (``label_loss``), the
default teacher term (``distillation_loss``), the training metrics (``keras_metrics``), the
report (``report``), the validation metric the recipe selects on (``selection_metric``) and
the predictions a serving signature returns (``predict``).

=================  ============================  ==================  =========================
kind               labels                        outputs             report
=================  ============================  ==================  =========================
``classification`` ``[batch]`` ints in ``0..K-1``  K logits (softmax)  accuracy, macro-F1
``binary``         ``[batch]`` 0 / 1             1 logit (sigmoid)   accuracy, P/R/F1, ROC AUC,
                                                                     PR AUC
``multi_label``    ``[batch, L]`` 0 / 1          L logits (sigmoids) per-label accuracy,
                                                                     exact match, macro/micro
                                                                     F1, macro ROC/PR AUC
``regression``     ``[batch, T]`` floats         T values            MSE, MAE, R² (original
                                                                     units)
=================  ============================  ==================  =========================

A two-class problem may also be ``classification`` with two logits (a softmax); ``binary``
is the one-logit form. Regression targets may be standardised with statistics fitted on the
training split (``fit_normalisation``): the model then learns ``(y − mean) / std``, and
``predict`` and ``report`` give values in the original units.

``report`` gives the numbers the recipe selects on and the tables print, exactly: ROC AUC
is the rank statistic (ties counted half) and PR AUC is average precision over the distinct
scores, both on the raw logits (a sigmoid in float64 rounds logits beyond ±37 to 0 or 1 and
would tie them). ``keras_metrics`` are the training-time estimates Keras logs under the same
names: its ``AUC`` buckets scores into ``num_thresholds`` (ROC within about 1e-3; its PR
curve is interpolated and may differ from average precision by a few hundredths), counts a
label with one class in the data as AUC 0 where ``report`` leaves it out, and its
``R2Score`` gives a constant target 0.
"""

from __future__ import annotations

import dataclasses
import math
import operator

import keras
import numpy as np

#: The spec name of the task's label loss (``Task.label_loss``).
LABEL = "label"
#: The terms each task kind can train (``"label"`` is every kind's label loss). The softmax
#: and class-id terms (``kd``, ``kd_std``, ``dkd``, ``nkd``) need one class out of K: on one
#: logit their KL is 0, and across independent labels a softmax is the wrong objective.
TERMS_BY_KIND = {
    "classification": ("label", "ce", "kd", "kd_std", "dkd", "nkd", "logit_mse",
                       "teacher_mse", "teacher_huber"),
    "binary": ("label", "ce", "kd_multi_label", "logit_mse"),
    "multi_label": ("label", "ce", "kd_multi_label", "logit_mse"),
    "regression": ("label", "teacher_mse", "teacher_huber", "teacher_bounded", "logit_mse"),
}  # fmt: skip

KINDS = ("classification", "binary", "multi_label", "regression")
#: The validation metric the recipe selects on, per kind, unless a task names another.
SELECTION_METRICS = {
    "classification": "accuracy",
    "binary": "roc_auc",
    "multi_label": "macro_roc_auc",
    "regression": "mse",
}
#: Report metrics where lower is better (every other one: higher is better).
LOWER_IS_BETTER = ("mse", "mae")


def _names(names, count, what):
    names = tuple(str(n) for n in names)
    if names and len(names) != count:
        raise ValueError(f"Task: {len(names)} {what} for {count} outputs; give one each.")
    if len(set(names)) != len(names):
        raise ValueError(f"Task: {what} must be distinct; got {list(names)}.")
    return names


@dataclasses.dataclass(frozen=True)
class Task:
    """What a model's labels and outputs are (see the module docstring).

    Build one with ``Task.classification``, ``Task.binary``, ``Task.multi_label`` or
    ``Task.regression``.

    Attributes:
        kind: one of ``KINDS``.
        outputs: the model's output width: classes, labels or targets (binary: 1, the
            default).
        names: class names (classification; binary: the negative and the positive class),
            label names (multi-label) or target names (regression); empty: unnamed.
        threshold: the probability above which a binary or multi-label output is
            predicted positive, in (0, 1).
        target_mean, target_std: regression's standardisation (empty: none).
        selection: the validation metric the recipe selects on (a ``report`` key); empty:
            ``SELECTION_METRICS[kind]``.
    """

    kind: str = "classification"
    outputs: int | None = None
    names: tuple = ()
    threshold: float = 0.5
    target_mean: tuple = ()
    target_std: tuple = ()
    selection: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Task: `kind` must be one of {list(KINDS)}; got {self.kind!r}.")
        outputs = 1 if self.outputs is None and self.kind == "binary" else self.outputs
        try:
            if isinstance(outputs, bool):
                raise TypeError
            outputs = operator.index(outputs)
        except TypeError:
            raise ValueError(f"Task: `outputs` must be an int; got {outputs!r}.") from None
        object.__setattr__(self, "outputs", outputs)
        smallest = {"classification": 2, "binary": 1}.get(self.kind, 1)
        if self.outputs < smallest or (self.kind == "binary" and self.outputs != 1):
            expected = "1" if self.kind == "binary" else f">= {smallest}"
            raise ValueError(
                f"Task: a {self.kind} task has {expected} outputs; got {self.outputs}."
            )
        count = 2 if self.kind == "binary" else self.outputs
        names = self.names or (("negative", "positive") if self.kind == "binary" else ())
        object.__setattr__(self, "names", _names(names, count, "names"))
        if not 0.0 < float(self.threshold) < 1.0:
            raise ValueError(f"Task: `threshold` must be in (0, 1); got {self.threshold!r}.")
        object.__setattr__(self, "threshold", float(self.threshold))
        mean = tuple(float(v) for v in self.target_mean)
        std = tuple(float(v) for v in self.target_std)
        if (mean or std) and self.kind != "regression":
            raise ValueError("Task: `target_mean` / `target_std` are for regression only.")
        if len(mean) != len(std) or (mean and len(mean) != self.outputs):
            raise ValueError(
                f"Task: `target_mean` and `target_std` need one value per target "
                f"({self.outputs}); got {len(mean)} and {len(std)}."
            )
        if not all(math.isfinite(v) for v in mean) or not all(
            math.isfinite(v) and v > 0 for v in std
        ):
            raise ValueError("Task: `target_mean` must be finite and `target_std` finite and > 0.")
        object.__setattr__(self, "target_mean", mean)
        object.__setattr__(self, "target_std", std)
        selection = self.selection or SELECTION_METRICS[self.kind]
        if selection not in self.metric_names():
            raise ValueError(
                f"Task: `selection` {selection!r} is not a {self.kind} metric; choose from "
                f"{list(self.metric_names())}."
            )
        object.__setattr__(self, "selection", selection)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def classification(cls, class_names=(), num_classes=None, **kwargs) -> Task:
        """One label out of K: ``class_names`` or ``num_classes``."""
        outputs = num_classes if num_classes is not None else len(class_names)
        return cls("classification", outputs, tuple(class_names), **kwargs)

    @classmethod
    def binary(cls, names=("negative", "positive"), threshold=0.5, **kwargs) -> Task:
        """Two classes through one logit; ``names``: the class of label 0, then of 1."""
        return cls("binary", 1, tuple(names), threshold, **kwargs)

    @classmethod
    def multi_label(cls, label_names=(), num_labels=None, threshold=0.5, **kwargs) -> Task:
        """Independent 0/1 labels: ``label_names`` or ``num_labels``."""
        outputs = num_labels if num_labels is not None else len(label_names)
        return cls("multi_label", outputs, tuple(label_names), threshold, **kwargs)

    @classmethod
    def regression(cls, target_names=(), num_targets=None, **kwargs) -> Task:
        """Continuous targets: ``target_names`` or ``num_targets``."""
        outputs = num_targets if num_targets is not None else len(target_names)
        return cls("regression", outputs, tuple(target_names), **kwargs)

    # ------------------------------------------------------------------ labels
    def check_labels(self, labels, where: str = "labels") -> np.ndarray:
        """``labels`` as the array this task trains on (int32 ids, or float32 rows), or a
        ``ValueError`` naming ``where`` and the first bad row."""
        labels = np.asarray(labels)
        if self.kind in ("classification", "binary"):
            top = self.outputs if self.kind == "classification" else 2
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1:
                raise ValueError(f"{where}: a {self.kind} task needs one label per row; got "
                                 f"shape {labels.shape}.")  # fmt: skip
            values = labels.astype(np.float64)
            bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
            bad |= values >= top
            self._refuse(bad, labels, where, f"not a class id in 0..{top - 1}")
            return labels.astype(np.int32)
        width = self.outputs
        if labels.ndim == 1 and width == 1:
            labels = labels[:, None]
        if labels.ndim != 2 or labels.shape[1] != width:
            raise ValueError(f"{where}: a {self.kind} task with {width} outputs needs rows of "
                             f"{width} values; got shape {labels.shape}.")  # fmt: skip
        values = labels.astype(np.float64)
        if self.kind == "multi_label":
            bad = ~np.isin(values, (0.0, 1.0)).all(axis=1)
            self._refuse(bad, labels, where, "not 0 or 1 in every label")
        else:
            bad = ~np.isfinite(values).all(axis=1)
            self._refuse(bad, labels, where, "not a finite number in every target")
        return values.astype(np.float32)

    def unlabelled(self, count: int) -> np.ndarray:
        """``count`` rows without a label, as this task's arrays hold them
        (``kdzoo.labels``): ``UNLABELLED`` class ids, rows of ``UNLABELLED`` for multi-label,
        rows of NaN for regression."""
        from kdzoo.labels import UNLABELLED

        if self.kind in ("classification", "binary"):
            return np.full(count, UNLABELLED, np.int32)
        fill = np.nan if self.kind == "regression" else UNLABELLED
        return np.full((count, self.outputs), fill, np.float32)

    def labelled_rows(self, labels) -> np.ndarray:
        """A boolean per row of ``labels``: True where the row has a label (the marks of
        ``unlabelled``; a multi-label or regression row with any mark counts as none)."""
        labels = np.asarray(labels)
        if self.kind in ("classification", "binary"):
            return labels.reshape(len(labels), -1)[:, 0] >= 0
        values = labels.astype(np.float64).reshape(len(labels), -1)
        marked = np.isnan(values) if self.kind == "regression" else values < 0
        return ~marked.any(axis=1)

    @staticmethod
    def _refuse(bad, labels, where, what):
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value, count = labels[row].tolist(), int(bad.sum())
            raise ValueError(f"{where}: row {row}: {value!r} is {what} ({count} bad rows).")

    def fit_normalisation(self, train_targets) -> Task:
        """A regression task that standardises its targets with ``train_targets``' mean
        and standard deviation (training split only; a constant target gets std 1)."""
        if self.kind != "regression":
            raise ValueError(f"Task: fit_normalisation is for regression, not {self.kind}.")
        values = self.check_labels(train_targets, "train targets").astype(np.float64)
        std = values.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return dataclasses.replace(
            self, target_mean=tuple(values.mean(axis=0)), target_std=tuple(std)
        )

    def normalise(self, targets) -> np.ndarray:
        """Targets as the model learns them: standardised when the task is."""
        values = self.check_labels(targets, "targets")
        if not self.target_mean:
            return values
        mean, std = np.array(self.target_mean), np.array(self.target_std)
        return ((values - mean) / std).astype(np.float32)

    def denormalise(self, values) -> np.ndarray:
        """Values in the units the model learns (``normalise``), back in the original ones;
        unchanged for a task that does not standardise."""
        if not self.target_mean:
            return np.asarray(values)
        mean, std = np.array(self.target_mean), np.array(self.target_std)
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1 and self.outputs == 1:
            values = values[:, None]
        return values * std + mean

    # ------------------------------------------------------------------ model
    def head(self, name: str = "logits") -> keras.layers.Layer:
        """The output layer: ``Dense(outputs)``, linear, float32 (logits, or regression
        values in the normalised units)."""
        return keras.layers.Dense(self.outputs, name=name, dtype="float32")

    def label_loss(self, label_smoothing: float = 0.0) -> keras.losses.Loss:
        """The loss on the labels: sparse cross-entropy
        (``kdzoo.losses.HardLabelCrossentropy``, the registry's ``"ce"``), binary
        cross-entropy on logits (binary, multi-label), or MSE (regression)."""
        from kdzoo.losses import HardLabelCrossentropy

        if isinstance(label_smoothing, bool) or not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1); got {label_smoothing!r}.")

        if self.kind == "classification":
            return HardLabelCrossentropy(label_smoothing=label_smoothing)
        if self.kind == "regression":
            if label_smoothing:
                raise ValueError("Task: label smoothing does not apply to regression.")
            return keras.losses.MeanSquaredError(name="mse")
        return keras.losses.BinaryCrossentropy(
            from_logits=True, label_smoothing=label_smoothing, name="binary_crossentropy"
        )

    def distillation_loss(self, temperature: float = 4.0) -> keras.losses.Loss:
        """The default teacher term: soft-target KL (classification), per-label binary KL
        (binary, multi-label) or MSE to the teacher's prediction (regression, where
        ``temperature`` does not apply)."""
        from kdzoo.losses import SoftTargetKLDivergence
        from kdzoo.losses.task_terms import MultiLabelKLDivergence, RegressionToTeacher

        if self.kind == "classification":
            return SoftTargetKLDivergence(temperature=temperature)
        if self.kind == "regression":
            return RegressionToTeacher("mse")
        return MultiLabelKLDivergence(temperature=temperature)

    def keras_metrics(self) -> list:
        """Training-time ``keras.metrics`` on the model's outputs (logits, or normalised
        values): accuracy (classification); accuracy at ``threshold``, ROC AUC and PR AUC
        (binary, multi-label: macro over labels); MSE, MAE and R² (regression, in the
        units the model learns)."""
        m = keras.metrics
        if self.kind == "classification":
            return [m.SparseCategoricalAccuracy(name="accuracy")]
        if self.kind == "regression":
            return [
                m.MeanSquaredError(name="mse"),
                m.MeanAbsoluteError(name="mae"),
                m.R2Score(name="r2"),
            ]
        several = dict(multi_label=True, num_labels=self.outputs) if self.outputs > 1 else {}
        roc, pr = (
            ("roc_auc", "pr_auc") if self.kind == "binary" else ("macro_roc_auc", "macro_pr_auc")
        )
        return [
            m.BinaryAccuracy(name="accuracy", threshold=self.logit_threshold),
            m.AUC(name=roc, from_logits=True, **several),
            m.AUC(name=pr, curve="PR", from_logits=True, **several),
        ]

    @property
    def logit_threshold(self) -> float:
        """``threshold`` as a logit: an output above it is predicted positive."""
        return math.log(self.threshold / (1.0 - self.threshold))

    def _outputs(self, outputs) -> np.ndarray:
        """Raw model outputs as ``[rows, outputs]`` float64 (``[rows]`` for one output), or
        a ``ValueError`` for a wrong width or a non-finite value, naming the row."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if outputs.ndim == 1 and self.outputs == 1:
            outputs = outputs[:, None]
        if outputs.ndim != 2 or outputs.shape[1] != self.outputs:
            raise ValueError(
                f"outputs: a {self.kind} task has {self.outputs} outputs per row; got shape "
                f"{outputs.shape}."
            )
        bad = ~np.isfinite(outputs).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"outputs: row {row} is not finite ({int(bad.sum())} such rows; did training "
                "diverge?)."
            )
        return outputs

    # ------------------------------------------------------------------ outputs
    def predict(self, outputs) -> np.ndarray:
        """What the outputs mean: class ids (classification, binary), a 0/1 matrix
        (multi-label, at ``threshold``), or values in the original units (regression)."""
        outputs = self._outputs(outputs)
        if self.kind == "classification":
            return np.argmax(outputs, axis=-1)
        if self.kind == "regression":
            if not self.target_mean:
                return outputs
            return outputs * np.array(self.target_std) + np.array(self.target_mean)
        positive = (outputs > self.logit_threshold).astype(np.int32)
        return positive[:, 0] if self.kind == "binary" else positive

    def probabilities(self, outputs) -> np.ndarray:
        """Softmax (classification) or per-output sigmoid (binary: ``[batch]``, the
        positive class; multi-label: ``[batch, L]``); regression has none."""
        outputs = self._outputs(outputs)
        if self.kind == "classification":
            shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
            return shifted / shifted.sum(axis=-1, keepdims=True)
        if self.kind == "regression":
            raise ValueError("Task: a regression task has no probabilities.")
        probabilities = _sigmoid(outputs)
        return probabilities[:, 0] if self.kind == "binary" else probabilities

    def metric_names(self) -> tuple:
        """The keys of ``report``."""
        return {
            "classification": ("accuracy", "macro_f1"),
            "binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"),
            "multi_label": (
                "accuracy",
                "exact_match",
                "macro_f1",
                "micro_f1",
                "macro_roc_auc",
                "macro_pr_auc",
            ),
            "regression": ("mse", "mae", "r2"),
        }[self.kind]

    def report(self, outputs, labels) -> dict:
        """The task's metrics on ``outputs`` (the model's raw outputs) against ``labels``
        (as given, in original units for regression), exact and in float64.

        - ROC and PR AUC need both classes among the rows: a binary task raises without
          them; a multi-label task leaves a label with one class out of its macro means
          (``auc_labels`` counts the labels used) and raises when no label has both.
        - Classification's macro-F1 averages the classes present in the labels or the
          predictions, as scikit-learn's ``f1_score(average="macro")``: a class that is
          neither would add a 0. A label (multi-label) or the positive class (binary)
          that is neither present nor predicted has F1 0, as in Keras' ``F1Score`` and
          scikit-learn's ``zero_division=0``.
        - R² of a constant target is 1 if predicted exactly, else 0 (scikit-learn's
          ``force_finite``); the report averages R² over targets.
        """
        outputs = self._outputs(outputs)
        labels = self.check_labels(labels)
        if not len(labels):
            raise ValueError("report: no rows.")
        if len(outputs) != len(labels):
            raise ValueError(f"report: {len(outputs)} outputs for {len(labels)} labels.")
        if self.kind == "classification":
            predicted = np.argmax(outputs, axis=-1)
            present = [
                k for k in range(self.outputs) if (predicted == k).any() or (labels == k).any()
            ]
            per_class_f1 = [_f1(predicted == k, labels == k) for k in present]
            return {
                "accuracy": float(np.mean(predicted == labels)),
                "macro_f1": float(np.mean(per_class_f1)),
            }
        if self.kind == "regression":
            predicted, truth = self.predict(outputs), labels.astype(np.float64)
            error = predicted - truth
            residual = (error**2).sum(axis=0)
            total = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
            constant = np.where(residual == 0, 1.0, 0.0)
            r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), constant)
            return {
                "mse": float(np.mean(error**2)),
                "mae": float(np.mean(np.abs(error))),
                "r2": float(np.mean(r2)),
            }
        # Ranked on the logits: the same order as the probabilities, without their rounding.
        scores = outputs
        predicted = (outputs > self.logit_threshold).astype(np.int32)
        if self.kind == "binary":
            truth, guess, score = labels == 1, predicted[:, 0] == 1, scores[:, 0]
            tp = float(np.sum(truth & guess))
            precision = tp / guess.sum() if guess.sum() else 0.0
            recall = tp / truth.sum() if truth.sum() else 0.0
            return {
                "accuracy": float(np.mean(truth == guess)),
                "precision": float(precision),
                "recall": float(recall),
                "f1": _f1(guess, truth),
                "roc_auc": roc_auc(score, truth),
                "pr_auc": average_precision(score, truth),
            }
        truth = labels == 1
        both = [j for j in range(self.outputs) if 0 < truth[:, j].sum() < len(truth)]
        if not both:
            raise ValueError("report: no label has both classes among these rows; AUC undefined.")
        guess = predicted == 1
        per_label_f1 = [_f1(guess[:, j], truth[:, j]) for j in range(self.outputs)]
        return {
            "accuracy": float(np.mean(truth == guess)),
            "exact_match": float(np.mean((truth == guess).all(axis=1))),
            "macro_f1": float(np.mean(per_label_f1)),
            "micro_f1": _f1(guess.ravel(), truth.ravel()),
            "macro_roc_auc": float(np.mean([roc_auc(scores[:, j], truth[:, j]) for j in both])),
            "macro_pr_auc": float(
                np.mean([average_precision(scores[:, j], truth[:, j]) for j in both])
            ),
            "auc_labels": len(both),
        }

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` beats ``b`` on the task's selection metric (NaN is the worst)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a < b if self.selection in LOWER_IS_BETTER else a > b

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        """A JSON-ready dict; ``Task.from_dict`` reads it back."""
        return {
            "kind": self.kind,
            "outputs": self.outputs,
            "names": list(self.names),
            "threshold": self.threshold,
            "target_mean": list(self.target_mean),
            "target_std": list(self.target_std),
            "selection": self.selection,
        }

    @classmethod
    def from_dict(cls, config: dict) -> Task:
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Task: unknown key {unknown[0]!r}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})


def _sigmoid(x):
    """``1 / (1 + e^-x)`` without overflow, with full relative precision for x < 0."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _f1(predicted, truth) -> float:
    """F1 of one class from boolean arrays; 0 when it is never predicted nor present."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp = np.sum(predicted & truth)
    denominator = predicted.sum() + truth.sum()
    return float(2 * tp / denominator) if denominator else 0.0


def _binary(scores, truth, what):
    scores = np.asarray(scores, dtype=np.float64).ravel()
    truth = np.asarray(truth, dtype=bool).ravel()
    if scores.shape != truth.shape:
        raise ValueError(f"{what}: {len(scores)} scores for {len(truth)} labels.")
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"{what}: score {row} is not finite ({scores[row]}).")
    positives = int(truth.sum())
    if positives == 0 or positives == len(truth):
        raise ValueError(f"{what}: needs both classes among the labels; got {positives} "
                         f"positive of {len(truth)}.")  # fmt: skip
    return scores, truth


def roc_auc(scores, truth) -> float:
    """Exact area under the ROC curve: the probability that a random positive scores above
    a random negative, ties counted half (the Mann-Whitney U statistic over
    ``positives × negatives``), from average ranks."""
    scores, truth = _binary(scores, truth, "roc_auc")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average rank (1-based) of each run of equal scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = 0.5 * (start + 1 + end)
    positives = truth.sum()
    negatives = len(truth) - positives
    u = ranks[truth].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def average_precision(scores, truth) -> float:
    """Area under the precision-recall curve as average precision: ``Σ (R_n − R_{n−1})
    P_n`` over the distinct scores from the highest down (equal scores form one step)."""
    scores, truth = _binary(scores, truth, "average_precision")
    order = np.argsort(-scores, kind="mergesort")
    scores, truth = scores[order], truth[order]
    ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last index of each score
    true_positives = np.cumsum(truth)[ends]
    precision = true_positives / (ends + 1)
    recall = true_positives / truth.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
