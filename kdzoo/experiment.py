"""Experiment files: one YAML or JSON file describes a run of the recipe (``kdzoo run``).

.. code-block:: yaml

    # intents.yaml
    data:
      csv: intents.csv          # or parquet: ..., folder: ..., dataset: sst2
      label: intent
      text: utterance
      numeric: [age, spend]     # optional: numeric and categorical columns (the tabular input)
      categorical: [plan]
      id: uid
      test_fraction: 0.2
      # task: regression        # optional: binary, multi_label or regression labels
      #                         # (label: may then list several columns)
    teacher: teacher.keras      # optional: a .keras file or SavedModel folder, not trained
    student: text_lstm/student
    pair: text_lstm             # builds what teacher/student do not give
    epochs: 30                  # any other DistilConfig field, by its name
    export_dir: exports
    export_name: intent_student
    run_dir: runs/intents       # default: runs/<file name> beside the file

``load_experiment(path)`` reads the file with a safe loader (``yaml.safe_load``: no Python
objects; JSON for ``.json``), checks every key before anything loads or trains, with errors
naming the key, and returns an ``Experiment``: the ``DistilConfig`` and how to load the data.
Relative paths are read from the file's folder. ``run_experiment`` runs it with ``distil()``
and saves a copy of the file in ``run_dir`` beside the report, so the results carry the file
that made them. A YAML copy starts with a comment naming the original and the folder its
relative paths are read from (a JSON copy, which cannot hold a comment, is the file as is).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from kdzoo.recipe.config import DistilConfig, check_config

#: ``data:`` keys that say where the data comes from (exactly one).
SOURCES = ("csv", "parquet", "folder", "dataset")
#: Other ``data:`` keys: the columns, and the loaders' options.
DATA_KEYS = (
    "label",
    "text",
    "image",
    "audio",
    "numeric",
    "categorical",
    "id",
    "split",
    "class_names",
    "validation_fraction",
    "test_fraction",
    "image_size",
    "sample_rate",
    "clip_seconds",
    "max_tokens",
    "sequence_length",
    "skip_bad",
    "unlabelled",
    "task",
    "label_separator",
)
_PATHS = ("teacher", "run_dir", "export_dir", "backup_dir")
_TUPLES = ("candidates", "scratch", "teacher_inputs", "student_inputs")
_NOT_IN_FILES = ("dataset",)  # ``data:`` holds it


class ExperimentError(ValueError):
    """An experiment file that cannot run; the message names the file and the key."""


@dataclasses.dataclass
class Experiment:
    """A loaded experiment file: ``config`` (``dataset`` is a loader ``distil`` calls after
    the strategy is made), the file, and its text (what ``run_experiment`` saves)."""

    path: Path
    config: DistilConfig
    text: str


def _read(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ExperimentError(f"{path}: not valid JSON ({err}).") from None
    elif path.suffix in (".yaml", ".yml"):
        from kdzoo.optional import require

        yaml = require("yaml", "YAML experiment files")
        try:
            value = yaml.load(text, Loader=_strict_loader(yaml))
        except yaml.YAMLError as err:
            raise ExperimentError(f"{path}: not valid YAML ({err}).") from None
    else:
        raise ExperimentError(f"{path}: an experiment file is .yaml, .yml or .json.")
    if not isinstance(value, dict):
        raise ExperimentError(
            f"{path}: must hold a mapping of settings, not {type(value).__name__}."
        )
    return value


def _strict_loader(yaml):
    """``yaml.SafeLoader`` that refuses a key given twice (YAML keeps the last, silently)
    and reads ``1e-3`` as a number (YAML 1.1 wants ``1.0e-3``; JSON and Python do not)."""
    import re

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        lambda loader, node: dict(mapping(loader, node)),
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


def _close(name, valid) -> str:
    import difflib

    match = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _data(path: Path, block, seed) -> object:
    """The ``data:`` block as a dataset name, or a loader of the user's data."""
    if not isinstance(block, dict):
        raise ExperimentError(f"{path}: data: must be a mapping (csv:, label:, text: ...).")
    unknown = [k for k in block if k not in (*SOURCES, *DATA_KEYS)]
    if unknown:
        k = unknown[0]
        raise ExperimentError(
            f"{path}: data.{k}: unknown key{_close(k, (*SOURCES, *DATA_KEYS))}; valid: "
            f"{', '.join((*SOURCES, *DATA_KEYS))}."
        )
    given = [k for k in SOURCES if k in block]
    if len(given) != 1:
        raise ExperimentError(
            f"{path}: data: give exactly one of {', '.join(SOURCES)}; got {given or 'none'}."
        )
    source = given[0]
    options = {k: v for k, v in block.items() if k != source}
    if source == "dataset":
        if options:
            raise ExperimentError(
                f"{path}: data.{next(iter(options))}: a built-in dataset takes no column or "
                "loader options."
            )
        return block["dataset"]
    from kdzoo.datasets import frames

    location = Path(_resolve(path, block[source]))
    if source == "folder":
        if not location.is_dir():
            raise ExperimentError(f"{path}: data.folder: {location}: no such folder.")
        roles = ("label", "text", "image", "audio", "numeric", "categorical", "id", "split")
        roles += ("task", "label_separator")
        columns = [k for k in roles if k in options]
        if columns:
            raise ExperimentError(
                f"{path}: data.{columns[0]}: a folder's labels are its class folders; it "
                "takes no column keys."
            )
        loader = frames.from_folder
    else:
        if not location.is_file():
            raise ExperimentError(f"{path}: data.{source}: {location}: no such file.")
        if "label" not in options:
            raise ExperimentError(f"{path}: data.label: the label column is required.")
        if not {"text", "image", "audio", "numeric", "categorical"} & set(options):
            raise ExperimentError(
                f"{path}: data: name at least one input column (text:, image:, audio:, "
                "numeric:, categorical:)."
            )
        for key in ("numeric", "categorical"):
            value = options.get(key)
            if key in options and (
                not isinstance(value, list) or not all(isinstance(c, str) for c in value)
            ):
                raise ExperimentError(f"{path}: data.{key}: a list of column names; got {value!r}.")
            twice = sorted({c for c in value or () if value.count(c) > 1})
            if twice:
                raise ExperimentError(f"{path}: data.{key}: names {twice[0]!r} twice.")
        both = sorted(set(options.get("numeric", ())) & set(options.get("categorical", ())))
        if both:
            raise ExperimentError(
                f"{path}: data.categorical: {both[0]!r} is also in data.numeric; a column is "
                "standardised as a number or one-hot encoded as a category, not both."
            )
        if "task" in options:
            from kdzoo.tasks import KINDS

            if options["task"] not in KINDS:
                raise ExperimentError(
                    f"{path}: data.task: one of {', '.join(KINDS)}; got {options['task']!r}."
                )
        label = options["label"]
        if isinstance(label, list) and (
            options.get("task") not in ("multi_label", "regression")
            or not all(isinstance(c, str) for c in label)
        ):
            raise ExperimentError(
                f"{path}: data.label: a list of columns is a multi_label or regression task's "
                "(task: multi_label / regression); a class label is one column."
            )
        loader = frames.from_csv if source == "csv" else frames.from_parquet
    _check_data_options(path, options)
    if source == "folder":
        _check_folder(path, location)
    else:
        _check_columns(path, source, location, options)
    if "image_size" in options:
        options["image_size"] = tuple(options["image_size"])
    options.setdefault("seed", seed)
    return functools.partial(loader, location, **options)


def _is_int(value, minimum) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value, low, high=float("inf")) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value < high


#: What each ``data:`` option must be: a test, and what it says when the value fails it.
_OPTION_TYPES = {
    "image_size": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x, 1) for x in v),
        "[height, width] in pixels",
    ),
    "sample_rate": (lambda v: _is_int(v, 1), "an integer number of Hz"),
    "clip_seconds": (lambda v: _is_number(v, 1e-9), "a number of seconds > 0"),
    "max_tokens": (lambda v: _is_int(v, 2), "an integer >= 2"),
    "sequence_length": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "validation_fraction": (lambda v: _is_number(v, 0, 1), "a number in [0, 1)"),
    "test_fraction": (lambda v: _is_number(v, 0, 1), "a number in [0, 1)"),
    "class_names": (
        lambda v: isinstance(v, list) and all(isinstance(c, str | int) for c in v),
        "a list of class names",
    ),
    "skip_bad": (lambda v: isinstance(v, bool), "true or false"),
    "unlabelled": (lambda v: isinstance(v, bool), "true or false"),
    "label_separator": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    **{
        key: (lambda v: isinstance(v, str) and v != "", "a column name")
        for key in ("text", "image", "audio", "id", "split")
    },
}


def _check_data_options(path: Path, options) -> None:
    for key, value in options.items():
        test, expected = _OPTION_TYPES.get(key, (None, None))
        if test is not None and not test(value):
            raise ExperimentError(f"{path}: data.{key}: {expected}; got {value!r}.")


def _check_folder(path: Path, location: Path) -> None:
    """A class-folder tree with files of one modality and two classes or more, before
    anything loads (``kdzoo distil --data`` checks the same)."""
    from kdzoo.datasets import frames

    try:
        frame, _ = frames.folder_frame(location)
    except ValueError as err:  # no image or wav files, or both kinds
        raise ExperimentError(f"{path}: data.folder: {err}") from None
    classes = sorted(set(frame["label"]))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "no class"
        raise ExperimentError(
            f"{path}: data.folder: {location} has {found} in its class folders; a classifier "
            "needs two classes or more."
        )


def _parquet_columns(location) -> list:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pandas' other engine reads the whole file
        import pandas as pd

        return list(pd.read_parquet(location).columns)
    return list(pq.read_schema(location).names)


def _check_columns(path: Path, source, location: Path, options) -> None:
    """Every column the ``data:`` block names is in the file's header."""
    import pandas as pd

    try:
        if source == "csv":
            header = pd.read_csv(location, nrows=0).columns
        else:
            header = _parquet_columns(location)
    except (OSError, ValueError) as err:
        raise ExperimentError(f"{path}: data.{source}: cannot read {location}: {err}") from None
    header = [str(c) for c in header]
    for key in ("label", "text", "image", "audio", "id", "split", "numeric", "categorical"):
        value = options.get(key)
        names = value if isinstance(value, list) else [value] if value is not None else []
        missing = [str(c) for c in names if str(c) not in header]
        if missing:
            raise ExperimentError(
                f"{path}: data.{key}: {location} has no column {', '.join(map(repr, missing))}; "
                f"its columns are {', '.join(header)}."
            )


def _own_data_defaults(path: Path, block, values) -> None:
    """What ``kdzoo distil --data`` does for a file or folder of the user's, done for an
    experiment file too: with no ``pair:`` (and not both ``teacher:`` and ``student:``), the
    models are the family of the data's one modality (``kdzoo.families``; ``distil()`` would
    pick the same, but this says which file line to change before anything loads)."""
    from kdzoo import families

    source = next(k for k in SOURCES if k in block)
    if source == "dataset":
        return
    location = Path(_resolve(path, block[source]))
    if values.get("pair") or (values.get("teacher") and values.get("student")):
        return
    if source == "folder":
        modalities = {families.folder_modality(location)}
    else:
        modalities = families.modalities_of(block)
    try:
        family = families.family_for(modalities)
    except ValueError:
        raise ExperimentError(
            f"{path}: pair: data: gives {' and '.join(sorted(modalities))}; name the models "
            "(pair: FAMILY, or student: FAMILY/PRESET with teacher:; kdzoo list)."
        ) from None
    if family is not None:
        values["pair"] = family


def _resolve(path: Path, value) -> str:
    """A path of the file, read from the file's folder; ``~`` expanded; a URI
    (``gs://...``) or an absolute path kept."""
    value = str(value)
    if "://" in value:
        return value
    value = Path(value).expanduser()
    return str(value if value.is_absolute() else path.parent / value)


def load_experiment(path) -> Experiment:
    """Reads and checks the experiment file at ``path``; raises ``ExperimentError`` (or the
    ``ValueError`` of ``check_config``, naming the field) before anything loads."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"{path}: no such experiment file.")
    settings = _read(path)
    fields = {f.name for f in dataclasses.fields(DistilConfig)} - set(_NOT_IN_FILES)
    valid = ("data", *sorted(fields))
    for key in settings:
        if key not in valid:
            raise ExperimentError(
                f"{path}: {key}: unknown key{_close(key, valid)}. Keys are data: and the "
                "DistilConfig fields (kdzoo.recipe.DistilConfig)."
            )
    if "data" not in settings:
        raise ExperimentError(f"{path}: data: is required (csv:, parquet:, folder: or dataset:).")
    values = {k: v for k, v in settings.items() if k != "data"}
    if "run_dir" in values and not values["run_dir"]:
        raise ExperimentError(
            f"{path}: run_dir: must name a folder (the report and a copy of this file go "
            "there); leave it out for runs/<file name> beside the file."
        )
    for key in _PATHS:
        if values.get(key) is not None:
            values[key] = _resolve(path, values[key])
    values.setdefault("run_dir", str(path.parent / "runs" / path.stem))
    for key in _TUPLES:
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
        elif isinstance(values.get(key), str):  # one candidate, or one input key
            values[key] = (values[key],)
    seed = values.get("seed", DistilConfig.seed)
    values["dataset"] = _data(path, settings["data"], seed)
    _own_data_defaults(path, settings["data"], values)
    config = DistilConfig(**values)
    try:
        check_config(config)
    except ValueError as err:
        hint = ""
        if "candidates" in str(err) and "Candidate " in str(err) and path.suffix != ".json":
            hint = " (In a YAML [...] list, quote each candidate: its commas split it.)"
        raise ExperimentError(f"{path}: {err}{hint}") from None
    export_dir = config.export_dir
    if export_dir and Path(export_dir).exists() and not Path(export_dir).is_dir():
        raise ExperimentError(f"{path}: export_dir: {export_dir} is a file, not a folder.")
    if config.candidates and not isinstance(config.dataset, str):  # own data: task known
        task = getattr(config.dataset, "task", None)
        from kdzoo.recipe.candidates import parse_candidates

        try:
            for candidate in parse_candidates(config.candidates):
                candidate.loss_terms(task)
        except ValueError as err:
            raise ExperimentError(f"{path}: candidates: {err}") from None
    return Experiment(path, config, path.read_text(encoding="utf-8"))


def run_experiment(experiment, callbacks=None):
    """Runs an experiment (an ``Experiment``, or the path of its file) with ``distil`` and
    saves a copy of the file in the run folder (``copy_text``); returns the ``DistilResult``."""
    from kdzoo.files import atomic_file
    from kdzoo.recipe import distil
    from kdzoo.recipe.report import record_experiment_copy

    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    result = distil(experiment.config, callbacks=callbacks)
    if result.is_chief:
        record = Path(experiment.config.run_dir) / f"experiment{experiment.path.suffix}"
        with atomic_file(record, "w", encoding="utf-8") as f:
            f.write(copy_text(experiment))
        record_experiment_copy(record.parent, record.name)  # the next run removes it
    return result


def copy_text(experiment) -> str:
    """What ``run_experiment`` saves in the run folder: the file's text, after (for YAML) a
    comment naming the original and the folder its relative paths are read from; the copy
    sits elsewhere, so run the original to repeat the run."""
    if experiment.path.suffix == ".json":  # JSON has no comments
        return experiment.text
    original = experiment.path.resolve()
    return (
        f"# A copy of {original}, saved with the report by kdzoo. Its relative paths are read\n"
        f"# from {original.parent}: to repeat the run, run the original there.\n"
        f"{experiment.text}"
    )


__all__ = ["Experiment", "ExperimentError", "copy_text", "load_experiment", "run_experiment"]
