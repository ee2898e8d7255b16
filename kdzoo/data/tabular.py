"""Tabular preprocessing: named numeric and categorical columns -> one float32 vector.

A tabular example is a row of ``numeric`` columns (numbers) and ``categorical`` columns
(strings). Everything learnt from data is learnt from the training split only
(``TabularConfig.fit``): each numeric column's mean and standard deviation, and each
categorical column's vocabulary (its distinct training values, sorted).

Rows travel through tf.data as a float64 matrix ``[n, numeric + categorical]``: the numeric
values, then each categorical value's index in its vocabulary plus one, 0 for a value not in
it (unseen in training, or missing). ``TabularConfig.encode`` makes that matrix from a
DataFrame's columns, and a serving graph makes it from named raw features
(``kdzoo.serving``) with a lookup table of the same vocabulary. ``tabular_features`` then
standardises the numbers (in float64, so that large values such as timestamps keep their
differences) and one-hot encodes the categories, returning float32, in the tf.data map and
in the serving graph alike (core TF ops only), so there is one implementation of the
features.

Categories are compared by a canonical key (``category_key``, and ``category_keys`` in a
graph): a whole number is its digits (``1``, ``1.0``, ``"01"`` and ``" 1 "`` are all ``"1"``),
a boolean is ``"True"`` or ``"False"`` (``true``, ``TRUE`` too), any other value its text as
written. So a client may send a category as it appears in its own CSV, however pandas read
the column in training.

One-hot codes into the model's first ``Dense`` layer are an embedding lookup (the kernel's
rows are the embeddings, summed over the columns), so a separate ``Embedding`` per column
buys nothing at the cardinalities of a table's columns.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import tensorflow as tf

#: The code of a category not in the training vocabulary (or missing).
UNSEEN = 0
#: What a column's name must look like to name a serving input (``kdzoo.serving``).
INPUT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: A decimal number as text (what ``category_key`` and ``category_keys`` read as a number).
NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_NUMBER = re.compile(NUMBER)
#: Whole numbers up to this size are keyed by their digits (float64 holds them exactly).
_EXACT = 2.0**53


def _is_missing(value) -> bool:
    """None, NaN, ``pd.NA`` or ``NaT`` (not a list or an array)."""
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def category_key(value) -> str:
    """The canonical key of a categorical cell (see the module docstring): whole numbers as
    their digits, booleans as ``"True"`` / ``"False"``, anything else as written."""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        text, number = repr(float(value)), float(value)
    else:
        text = str(value)
        word = text.strip()
        if word.lower() in ("true", "false"):
            return word.lower().capitalize()
        if not _NUMBER.fullmatch(word):
            return text
        number = float(word)
    if number.is_integer() and abs(number) < _EXACT:
        return str(int(number))
    return text


def category_keys(strings: tf.Tensor) -> tf.Tensor:
    """``category_key`` of each string of a ``tf.string`` tensor, in-graph (core ops)."""
    word = tf.strings.strip(strings)
    lower = tf.strings.lower(word)
    boolean = tf.logical_or(tf.equal(lower, "true"), tf.equal(lower, "false"))
    numeric = tf.strings.regex_full_match(word, NUMBER)
    number = tf.strings.to_number(tf.where(numeric, word, "0"), tf.float64)
    whole = numeric & tf.equal(tf.math.floor(number), number) & (tf.abs(number) < _EXACT)
    digits = tf.strings.as_string(tf.cast(tf.where(whole, number, 0.0), tf.int64))
    named = tf.where(tf.equal(lower, "true"), "True", "False")
    return tf.where(boolean, named, tf.where(whole, digits, strings))


@dataclasses.dataclass(frozen=True)
class TabularConfig:
    """The tabular front end, fitted on the training split (``TabularConfig.fit``).

    Attributes:
        numeric: the numeric columns, in feature order.
        mean, std: each numeric column's training mean and standard deviation (a constant
            column has std 1, so it standardises to 0 as scikit-learn's scaler does).
        categorical: the categorical columns, after the numeric ones.
        vocabularies: each categorical column's training values, sorted; a value's code is
            its index + 1 (``UNSEEN``, 0, for any other value).
    """

    numeric: tuple = ()
    mean: tuple = ()
    std: tuple = ()
    categorical: tuple = ()
    vocabularies: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "numeric", tuple(str(c) for c in self.numeric))
        object.__setattr__(self, "categorical", tuple(str(c) for c in self.categorical))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(
            self, "vocabularies", tuple(tuple(str(v) for v in vocab) for vocab in self.vocabularies)
        )
        if not self.numeric and not self.categorical:
            raise ValueError("A TabularConfig needs at least one numeric or categorical column.")
        if len(self.mean) != len(self.numeric) or len(self.std) != len(self.numeric):
            raise ValueError(
                f"TabularConfig: {len(self.numeric)} numeric column(s) but {len(self.mean)} "
                f"mean(s) and {len(self.std)} std(s)."
            )
        if len(self.vocabularies) != len(self.categorical):
            raise ValueError(
                f"TabularConfig: {len(self.categorical)} categorical column(s) but "
                f"{len(self.vocabularies)} vocabularies."
            )
        if any(not (s > 0 and math.isfinite(s)) for s in self.std):
            raise ValueError(f"TabularConfig.std must be finite and > 0; got {self.std}.")
        if any(not math.isfinite(m) for m in self.mean):
            raise ValueError(f"TabularConfig.mean must be finite; got {self.mean}.")
        names = self.columns
        if len(set(names)) != len(names):
            raise ValueError(f"TabularConfig: a column is named twice in {names}.")
        for column, vocab in zip(self.categorical, self.vocabularies, strict=True):
            if len(set(vocab)) != len(vocab):
                raise ValueError(f"TabularConfig: column {column!r}'s vocabulary repeats a value.")

    @property
    def columns(self) -> tuple:
        """Every column, in the order of the raw matrix: numeric, then categorical."""
        return self.numeric + self.categorical

    @property
    def raw_size(self) -> int:
        """Width of the raw matrix (one value per column)."""
        return len(self.columns)

    @property
    def feature_size(self) -> int:
        """Width of the features a model reads: the numbers, then a one-hot per category
        column (its vocabulary and ``UNSEEN``)."""
        return len(self.numeric) + sum(len(v) + 1 for v in self.vocabularies)

    @classmethod
    def fit(cls, numeric=None, categorical=None) -> TabularConfig:
        """Learns the front end from training columns.

        Args:
            numeric: ``{column: values}`` of numbers (finite; check them first).
            categorical: ``{column: values}``; missing cells (None, NaN) are not values.

        Returns:
            A ``TabularConfig``.
        """
        numeric = dict(numeric or {})
        categorical = dict(categorical or {})
        mean, std = [], []
        for column, values in numeric.items():
            values = np.asarray(values, np.float64)
            if not len(values):
                raise ValueError(f"Numeric column {column!r} has no training values.")
            mean.append(float(values.mean()))
            spread = float(values.std())
            std.append(spread if spread > 0 else 1.0)
        vocabularies = []
        for values in categorical.values():
            vocabularies.append(sorted({category_key(v) for v in values if not _is_missing(v)}))
        return cls(tuple(numeric), tuple(mean), tuple(std), tuple(categorical), tuple(vocabularies))

    def encode(self, numeric=None, categorical=None) -> tuple[np.ndarray, dict]:
        """The raw float64 matrix ``[n, raw_size]`` of columns, and per categorical column
        the count of cells not in its vocabulary (they get code ``UNSEEN``).

        Args:
            numeric: ``{column: values}`` for every ``self.numeric`` column.
            categorical: ``{column: values}`` for every ``self.categorical`` column.
        """
        numeric = dict(numeric or {})
        categorical = dict(categorical or {})
        absent = [c for c in self.numeric if c not in numeric]
        absent += [c for c in self.categorical if c not in categorical]
        if absent:
            raise KeyError(f"No value(s) for tabular column(s) {absent}; it reads {self.columns}.")
        columns = [np.asarray(numeric[c], np.float64) for c in self.numeric]
        unseen = {}
        for column, vocab in zip(self.categorical, self.vocabularies, strict=True):
            lookup = {v: i + 1 for i, v in enumerate(vocab)}
            values = categorical[column]
            codes = [
                UNSEEN if _is_missing(v) else lookup.get(category_key(v), UNSEEN) for v in values
            ]
            codes = np.asarray(codes, np.float64)
            unseen[column] = int((codes == UNSEEN).sum())
            columns.append(codes)
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            raise ValueError(f"Tabular columns have different lengths {sorted(lengths)}.")
        return np.stack(columns, axis=1).astype(np.float64), unseen

    def to_dict(self) -> dict:
        return {
            "numeric": list(self.numeric),
            "mean": list(self.mean),
            "std": list(self.std),
            "categorical": list(self.categorical),
            "vocabularies": [list(v) for v in self.vocabularies],
        }

    @classmethod
    def from_dict(cls, config: dict) -> TabularConfig:
        return cls(**config)


def tabular_features(raw: tf.Tensor, config: TabularConfig) -> tf.Tensor:
    """Raw rows ``[batch, raw_size]`` (``TabularConfig.encode``) -> float32
    ``[batch, feature_size]``: standardised numbers (computed in float64), then one one-hot
    per categorical column.

    A category code outside ``0..len(vocabulary)`` (not made by ``encode``) one-hot encodes
    to all zeros, as ``tf.one_hot`` does.
    """
    raw = tf.cast(tf.convert_to_tensor(raw), tf.float64)
    raw = tf.ensure_shape(raw, [None, config.raw_size])
    parts = []
    n = len(config.numeric)
    if n:
        mean = tf.constant(config.mean, tf.float64)
        std = tf.constant(config.std, tf.float64)
        parts.append(tf.cast((raw[:, :n] - mean) / std, tf.float32))
    for i, vocab in enumerate(config.vocabularies):
        codes = tf.cast(tf.round(raw[:, n + i]), tf.int32)
        parts.append(tf.one_hot(codes, len(vocab) + 1, dtype=tf.float32))
    features = parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)
    return tf.ensure_shape(features, [None, config.feature_size])
