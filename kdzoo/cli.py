"""The ``kdzoo`` command line: argparse subcommands that call library functions.

Every argument is checked before anything trains. ``--help``, the parser's checks, the files
and columns of ``--data`` and the output folders are checked before TensorFlow is imported,
so their errors answer at once; checks that need the library (settings against each other,
``--candidate`` against ``--task``, a folder's class folders) answer once it has loaded. A
usage error is one line naming the flag and what was expected, with exit code 2; a bad input
file, a refused folder or a diverging run is one line with exit code 1; a traceback means a
bug.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
from pathlib import Path

from kdzoo.datasets.catalog import CATALOG
from kdzoo.defaults import DEFAULTS
from kdzoo.validation import finite_number, int_at_least

#: ``kdzoo.studies.STUDIES``, ``"zoo"`` (``kdzoo.zoo_strength``), ``"label-scarce"``
#: (``kdzoo.label_scarce``), ``"sst2-transfer"`` (``kdzoo.sst2_transfer``) and
#: ``"privileged"`` (``kdzoo.privileged``), ``"fusion-strong-teacher"``
#: (``kdzoo.fusion_strong_teacher``), ``"tabular-views"`` (``kdzoo.tabular_views``),
#: ``"tasks"`` (``kdzoo.task_study``) and ``"function-matching"``
#: (``kdzoo.function_matching``), kept here so that parsing imports no TensorFlow (a
#: test checks that they agree).
STUDY_NAMES = (
    "embedded",
    "av-digits-crossmodal",
    "av-digits-fusion",
    "sst2",
    "sms-spam",
    "mnist",
    "fsdd",
    "av-digits-methods",
    "default-recipe",
    "zoo",
    "label-scarce",
    "sst2-transfer",
    "privileged",
    "fusion-strong-teacher",
    "tabular-views",
    "tasks",
    "function-matching",
)
#: ``kdzoo.studies.DEFAULT_RECIPE``: what ``kdzoo bench default-recipe`` runs.
DEFAULT_RECIPE_NAMES = STUDY_NAMES[:7]
#: ``kdzoo.zoo_strength.SETTINGS``: what ``kdzoo bench zoo`` runs.
ZOO_SETTING_NAMES = (
    "mnist",
    "fsdd",
    "fsdd-speaker",
    "sst2",
    "sms-spam",
    "av-digits",
    "mnist-views",
    "av-digits-official",
)
#: ``kdzoo.privileged.PAIRINGS``: what ``kdzoo bench privileged`` runs.
PRIVILEGED_NAMES = (
    "mnist-thumbnail",
    "fsdd-lowpass",
    "mnist-thumbnail-50",
    "fsdd-lowpass-50",
    "mnist-thumbnail-50-unlabelled",
    "fsdd-lowpass-50-unlabelled",
)
#: ``kdzoo.function_matching.PAIRING_NAMES``: what ``kdzoo bench function-matching`` runs.
FUNCTION_MATCHING_NAMES = ("mnist-thumbnail-50", "fsdd-lowpass-50")
#: ``kdzoo.task_study.SETTINGS``: what ``kdzoo bench tasks`` runs.
TASK_SETTING_NAMES = (
    "embedded-regression",
    "embedded-multi-label",
    "diabetes",
    "embedded-regression-scarce",
    "embedded-multi-label-scarce",
)
#: ``kdzoo.datasets.mnist_views.VIEWS``: the views ``kdzoo bench tabular-views`` students read.
TABULAR_VIEW_NAMES = ("pix", "prof", "fou", "hog", "mor")
#: Loss names the terms of ``--candidate`` accept: those ``LossTerm.parse`` compares on
#: logits (a test checks them).
TERM_NAMES = (
    "ce",
    "dkd",
    "kd",
    "kd_multi_label",
    "kd_std",
    "logit_mse",
    "nkd",
    "teacher_bounded",
    "teacher_huber",
    "teacher_mse",
)
#: The label term of any task (``kdzoo.tasks.LABEL``).
LABEL_TERM = "label"


class UsageError(Exception):
    """A command-line setting that cannot be honoured (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block) and exit 2, and
    which takes no abbreviated flags (``bench --seed 1`` is not ``--seeds 1``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _term(text):
    name, sep, weight = text.partition(":")
    if name not in (*TERM_NAMES, LABEL_TERM):
        raise argparse.ArgumentTypeError(
            f"unknown loss term {name!r} in {text!r}; expected NAME[:WEIGHT] with NAME one of "
            f"{', '.join((LABEL_TERM, *TERM_NAMES))}"
        )
    if sep:
        try:
            _NON_NEGATIVE(weight)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"the weight in {text!r}: {err}") from None
    return text


_CANDIDATE_SETTINGS = {"t": "temperature", "lr": "learning rate", "ls": "label smoothing"}


def _settings(text, tail, allowed):
    seen = set()
    for item in filter(None, (p.strip() for p in tail.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise argparse.ArgumentTypeError(
                f"{item!r} in {text!r} is not a setting; expected KEY=VALUE with KEY one of "
                + ", ".join(f"{k} ({_CANDIDATE_SETTINGS[k]})" for k in allowed)
            )
        if key in seen:
            raise argparse.ArgumentTypeError(f"{key} is set twice in {text!r}")
        seen.add(key)
        try:
            number = _NON_NEGATIVE(value) if key == "ls" else _POSITIVE(value)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{item!r} in {text!r}: {err}") from None
        if key == "ls" and number >= 1:
            raise argparse.ArgumentTypeError(f"{item!r} in {text!r}: ls must be below 1")


def _candidate(text):
    """A distillation candidate, ``TERM[:W],TERM[:W]...[@t=T,lr=LR,ls=LS]``."""
    head, _, tail = text.partition("@")
    if head.strip() == "scratch":
        raise argparse.ArgumentTypeError(f"{text!r} is a scratch try, not a distillation setting")
    terms = [t.strip() for t in head.split(",") if t.strip()]
    if not terms:
        raise argparse.ArgumentTypeError(f"{text!r} names no loss terms")
    for term in terms:
        _term(term)
    if all(t.partition(":")[0] in ("ce", LABEL_TERM) for t in terms):
        raise argparse.ArgumentTypeError(
            f"{text!r} has no teacher term (a distillation setting compares with the teacher)"
        )
    _settings(text, tail, ("t", "lr", "ls"))
    return text


def _scratch(text):
    """A scratch try, ``scratch[@lr=LR,ls=LS]``."""
    head, _, tail = text.partition("@")
    if head.strip() != "scratch":
        raise argparse.ArgumentTypeError(f"{text!r} must start with 'scratch'")
    _settings(text, tail, ("lr", "ls"))
    return text


def _json_file(text):
    try:
        with open(text, encoding="utf-8") as f:
            json.load(f)
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {err.strerror}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise argparse.ArgumentTypeError(f"{text} is not valid JSON ({err})") from None
    return text


#: Datasets the demo's image+audio -> audio pair runs on (``kdzoo.datasets.catalog``).
_AUDIO_VISUAL = tuple(s.name for s in CATALOG if {"image", "audio"} <= set(s.modalities))
_POSITIVE_INT = int_at_least(1)
_SEED = int_at_least(0)
_COUNT = int_at_least(0)
_POSITIVE = finite_number(strict=True)
_NON_NEGATIVE = finite_number(strict=False)
D = DEFAULTS


def _retracing_filter(record) -> bool:
    """Drops TensorFlow's "triggered tf.function retracing" warning: each phase of the
    recipe fits a new model, whose step functions trace once each, so it is expected."""
    return "triggered tf.function retracing" not in record.getMessage()


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    logger = logging.getLogger("tensorflow")  # the one tf.get_logger() returns
    if _retracing_filter not in logger.filters:
        logger.addFilter(_retracing_filter)


#: ``--quiet``: Keras's ``verbose=2``.
_QUIET = "no progress bars: each epoch's number and its summary line (Keras verbose=2)"


def _folder_flag(flag: str, path) -> None:
    """Refuses ``path`` for ``flag`` when it exists and is not a folder, before anything
    trains (the export would fail only after training)."""
    if path and Path(path).exists() and not Path(path).is_dir():
        raise UsageError(f"argument {flag}: {path} is a file, not a folder")


def _check_candidates_for_task(args) -> None:
    """Refuses, before anything loads, a --candidate whose terms the --data task's kind
    cannot train (``kdzoo.tasks.TERMS_BY_KIND``)."""
    if not (args.candidate and args.data):
        return
    from kdzoo.recipe.candidates import Candidate
    from kdzoo.tasks import TERMS_BY_KIND

    kind = args.task or "classification"
    for spec in args.candidate:
        try:
            candidate = Candidate.parse(spec)
        except ValueError as err:
            raise UsageError(f"argument --candidate: {err}") from None
        wrong = [t for t in candidate.terms if t.partition(":")[0] not in TERMS_BY_KIND[kind]]
        if wrong:
            raise UsageError(
                f"argument --candidate: {spec!r}: {', '.join(wrong)} cannot train a {kind} "
                f"student; its terms are {', '.join(TERMS_BY_KIND[kind])}"
            )


def _checked(check, config, spell=None):
    """Runs a library config check; its ``ValueError`` becomes a usage error, with the
    config's field names spelt as the command's flags by ``spell`` (e.g. ``_as_flags``)."""
    try:
        check(config)
    except ValueError as err:
        raise UsageError(spell(str(err)) if spell else str(err)) from None


def cmd_list(args) -> int:
    import pandas as pd

    from kdzoo import models

    rows = []
    for name in models.list_models():
        spec = models.get_spec(name)
        row = {"model": name, "inputs": "+".join(spec.modalities)}
        for preset in spec.presets:
            row[f"{preset}_params"] = models.build(name, preset).count_params()
        row["description"] = spec.description
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))
    print()
    pairs = []
    for name in models.list_pairs():
        pair = models.registry.get_pair(name)
        pairs.append(
            {
                "pair": name,
                "teacher": "/".join(pair.teacher),
                "student": "/".join(pair.student),
                "description": pair.description,
            }
        )
    print(pd.DataFrame(pairs).to_string(index=False))
    return 0


def cmd_demo(args) -> int:
    for flag in ("--run-dir", "--export-dir", "--student-dir"):
        _folder_flag(flag, getattr(args, flag[2:].replace("-", "_")))
    if args.no_export and (args.export_dir or args.student_dir):
        flag = "--export-dir" if args.export_dir else "--student-dir"
        raise UsageError(f"argument {flag}: not with --no-export (nothing is exported)")
    if args.num_examples is not None and args.dataset not in (None, "embedded"):
        raise UsageError(
            f"argument --num-examples: only with the generated embedded dataset; {args.dataset} "
            "has its own size"
        )
    from kdzoo.demo import DemoConfig, check_config, run_demo

    # Options left unset keep DemoConfig's defaults, so they are defined in one place.
    given = {
        "dataset": args.dataset,
        "num_examples": args.num_examples,
        "labels_per_class": args.labels_per_class,
        "teacher_epochs": args.teacher_epochs,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "export_dir": args.export_dir,
        "student_dir": args.student_dir,
        "run_dir": args.run_dir,
        "candidates": tuple(args.candidate) if args.candidate else None,
    }
    config = DemoConfig(**{k: v for k, v in given.items() if v is not None})
    if args.all_labels:
        config.labels_per_class = None
    if args.no_export:
        config.export_dir = None
    if args.quiet:
        config.verbose = 2
    _checked(check_config, config, _demo_flags)
    result = run_demo(config)
    _print_recipe(result.recipe)
    if result.export_path:
        print(f"the recipe's student exported to {result.export_path}")
        _note_custom_ops(result.export_path)
        print(f"student bundle (input of `kdzoo export`) saved to {result.student_path}")
    return 0


def _print_recipe(recipe):
    from kdzoo.demo import format_candidates, format_table

    split = recipe.evaluated_on
    if split == "validation":
        print(
            "\nEvery student tried (chosen on validation; the data has no test split, so "
            "every number below is the validation one the choice was made on: an optimistic "
            "estimate. Hold out a test split: --test-fraction, or test_fraction under data: "
            "in an experiment file):"
        )
    else:
        print(f"\nEvery student tried (chosen on validation; {split} shown, never used to choose):")
    shown = ("validation",) if split == "validation" else ("validation", "test")
    print(format_candidates(recipe.candidates, recipe.metric, shown))
    print(f"\nOn the {split} split:")
    print(format_table(recipe.table))
    print(f"\nchosen: {recipe.chosen.describe()}")
    if recipe.selection is not None:
        print(f"why: {recipe.selection.describe()}")
    gains = f"{_signed(recipe.validation_gain, recipe.metric)} (validation)"
    if split != "validation":
        gains = f"{_signed(recipe.gain, recipe.metric)} ({split}), {gains}"
    print(f"recipe - tuned scratch {recipe.metric}: {gains}")
    if recipe.report_dir:
        task = getattr(recipe, "task", None)
        panels = (
            "confusion matrices"
            if task is None or task.kind == "classification"
            else ("predicted against true values" if task.kind == "regression" else "ROC curves")
        )
        print(f"report (tables, learning curves, {panels}): {recipe.report_dir}")


def _signed(value, metric) -> str:
    """A gain as the CLI prints it: 3 decimals for scores in [0, 1], 4 significant digits
    for errors (MSE, MAE), whose scale is the target's."""
    return f"{value:+.4g}" if metric in ("mse", "mae") else f"{value:+.3f}"


def _check_names(given, valid, what) -> None:
    """Refuses ``--datasets`` names that are not among ``valid`` (``what`` they are)."""
    bad = sorted(set(given or ()) - set(valid))
    if bad:
        raise UsageError(
            f"argument --datasets: {what} are {', '.join(valid)}; got {', '.join(bad)}"
        )


def _study_config(args, config_class, **fields):
    """A study's settings from the ``kdzoo bench`` flags; unset ones keep the defaults."""
    given = {
        "seeds": tuple(args.seeds) if args.seeds else None,
        "teacher_epochs": args.teacher_epochs,
        "epochs": args.epochs,
        "out_dir": args.out_dir,
        **fields,
    }
    config = config_class(**{k: v for k, v in given.items() if v is not None})
    config.tiny = args.tiny
    config.verbose = 0 if args.quiet else 2
    return config


def _bench_label_scarce(args) -> int:
    from kdzoo.label_scarce import NAME, LabelScarceConfig, goal, run

    ks = tuple(args.labels_per_class) if args.labels_per_class else None
    config = _study_config(args, LabelScarceConfig, labels_per_class=ks)
    _, summary = run(config)
    print(summary.to_string(index=False))
    checked = goal(summary)
    share = checked["zero_share"]
    zero = "not run" if share != share else f"{share:.0%} of the supervised student"
    print(
        f"G1: distilled - scratch at 5 labels per class {checked['gap_points']:+.1f} points; "
        f"at 0 labels: {zero}"
    )
    if config.out_dir:
        print(f"wrote {Path(config.out_dir) / NAME}.csv / .md / .png")
    return 0


def _bench_sst2_transfer(args) -> int:
    from kdzoo.sst2_transfer import NAME, Sst2TransferConfig, goals, run

    config = _study_config(
        args,
        Sst2TransferConfig,
        transfer_examples=args.transfer_examples,
        augment_copies=args.augment_copies,
    )
    _, summary = run(config)
    print(summary.to_string(index=False))
    checked = goals(summary)
    print(
        f"G3: teacher {checked['teacher']:.4f} on Kim test; distilled - scratch "
        f"{checked['gap_points']:+.1f} points"
    )
    if config.out_dir:
        print(f"wrote {Path(config.out_dir) / NAME}.csv / .md")
    return 0


def _bench_fusion_teacher(args) -> int:
    from kdzoo.fusion_strong_teacher import NAME, FusionTeacherConfig, goals, run

    config = _study_config(args, FusionTeacherConfig)
    per_seed, summary = run(config)
    print(summary.to_string(index=False))
    checked = goals(per_seed)
    print(
        f"G2: fused teacher - best single modality {checked['teacher_gap']:+.1f} points; "
        f"teacher - distilled {checked['student_gap']:+.1f} points; distilled - scratch "
        f"{checked['over_scratch']:+.1f} points"
    )
    if config.out_dir:
        print(f"wrote {Path(config.out_dir) / NAME}.csv / .md / .png")
    return 0


def _bench_settings_study(args, module_name, config_name, field, verdict) -> int:
    """A study whose ``--datasets`` name its settings (``field`` of its config): runs it,
    prints its summary and the table of ``verdict`` (its goals or gains)."""
    import importlib

    module = importlib.import_module(f"kdzoo.{module_name}")
    chosen = tuple(args.datasets) if args.datasets else None
    config = _study_config(args, getattr(module, config_name), **{field: chosen})
    _, summary = module.run(config)
    print(summary.to_string(index=False))
    print(getattr(module, verdict)(summary).to_string(index=False))
    if config.out_dir:
        print(f"wrote {Path(config.out_dir) / module.NAME}.csv / .md")
    return 0


def _bench_privileged(args) -> int:
    return _bench_settings_study(args, "privileged", "PrivilegedConfig", "pairings", "goals")


def _bench_function_matching(args) -> int:
    return _bench_settings_study(
        args, "function_matching", "FunctionMatchingConfig", "pairings", "gains"
    )


def _bench_tabular_views(args) -> int:
    return _bench_settings_study(
        args, "tabular_views", "TabularViewsConfig", "student_views", "gains"
    )


def _bench_tasks(args) -> int:
    return _bench_settings_study(args, "task_study", "TasksConfig", "settings", "goals")


def _bench_zoo(args) -> int:
    from kdzoo.results import markdown_table
    from kdzoo.zoo_strength import ZooConfig, mean_std, run

    given = {
        "seeds": tuple(args.seeds) if args.seeds else None,
        "epochs": args.epochs,
        "out_dir": args.out_dir,
        "settings": tuple(args.datasets) if args.datasets else None,
    }
    config = ZooConfig(**{k: v for k, v in given.items() if v is not None})
    config.tiny = args.tiny
    config.verbose = 0 if args.quiet else 2
    _, summary, checked = run(config)
    shown = summary.assign(score=mean_std(summary))
    shown = shown[["setting", "model", "role", "params", "metric", "score", "latency_ms"]]
    print(markdown_table(shown))
    if len(checked):
        print()
        print(markdown_table(checked.round(2)))
    if config.out_dir:
        print(f"\nwritten: {config.out_dir}/zoo-strength.csv and .md")
    return 0


def _bench_stale(args) -> int:
    from kdzoo.results import RESULTS_DIR, STALE_FILE, prune_code, stale_markdown, stale_tables

    folder = Path(args.out_dir) if args.out_dir else RESULTS_DIR
    if not folder.is_dir():
        flag = "--out-dir" if args.out_dir else "--stale"
        raise UsageError(
            f"argument {flag}: {folder} is not a folder of results"
            + ("" if args.out_dir else " (run it in a kdzoo checkout, or give --out-dir)")
        )
    statuses = stale_tables(folder)
    for status in statuses:
        made = f" (made at {', '.join(status.commits)})" if status.commits else ""
        print(f"{'fresh' if status.fresh else 'STALE'}  {status.file}: {status.reason}{made}")
        if status.changed:
            print(f"       changed since: {', '.join(status.changed)}")
    stale = sum(not s.fresh for s in statuses)
    print(f"{stale} of {len(statuses)} tables stale")
    if args.write:
        prune_code(folder)
        (folder / STALE_FILE).write_text(stale_markdown(statuses), encoding="utf-8")
        print(f"written: {folder / STALE_FILE}")
        return 0
    return 1 if stale else 0


def _bench_figure(args) -> int:
    import pandas as pd

    from kdzoo.results import study_figure

    path = Path(args.figure)
    if not path.is_file():
        raise UsageError(f"argument --figure: no such file: {path}")
    if path.suffix != ".csv":
        raise UsageError(f"argument --figure: {path} is not a results CSV (.csv)")
    per_seed = pd.read_csv(path)
    missing = {"model", "seed", "test_accuracy"} - set(per_seed.columns)
    if missing:
        raise UsageError(f"argument --figure: {path} has no column {sorted(missing)[0]!r}")
    group = "pairing" if "pairing" in per_seed else None
    out = path.with_suffix(".png")
    if not study_figure(per_seed, out, group=group):
        raise UsageError("argument --figure: needs matplotlib (pip install 'kdzoo[plots]')")
    print(f"written: {out}")
    return 0


def _bench_verify(args) -> int:
    from kdzoo.verify import DEFAULT_TOLERANCE, verify

    path = Path(args.verify)
    if not path.is_file():
        raise UsageError(f"argument --verify: no such file: {path}")
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance

    def rerun(command, out_dir):
        print(f"rerunning: {command}", flush=True)
        again = build_parser().parse_args([*shlex.split(command)[1:], "--out-dir", str(out_dir)])
        again.quiet = args.quiet
        cmd_bench(again)
        written = Path(out_dir) / path.name  # e.g. mnist.csv, also made by default-recipe
        if written.is_file():
            return written
        name = "zoo-strength" if again.study == "zoo" else again.study
        return Path(out_dir) / f"{name}.csv"

    try:
        result = verify(
            path,
            rerun,
            only=tuple(args.datasets) if args.datasets else None,
            tolerance=tolerance,
        )
    except ValueError as err:
        raise UsageError(f"argument --verify: {err}") from err
    print(result.format())
    return 0 if result.passed else 1


def cmd_bench(args) -> int:
    from kdzoo.studies import StudyConfig, markdown_table, run_study

    modes = (("--verify", args.verify), ("--stale", args.stale), ("--figure", args.figure))
    checks = [flag for flag, on in modes if on]
    if len(checks) > 1:
        raise UsageError(f"argument {checks[0]}: not with {checks[1]}")
    if checks and args.study:
        raise UsageError(f"argument {checks[0]}: give no study (the file names its command)")
    if args.write and not args.stale:
        raise UsageError("argument --write: only with --stale")
    if args.tolerance is not None and not args.verify:
        raise UsageError("argument --tolerance: only with --verify")
    if args.stale:
        return _bench_stale(args)
    if args.figure:
        return _bench_figure(args)
    if args.verify:
        return _bench_verify(args)
    if not args.study:
        raise UsageError("the following arguments are required: STUDY (or --verify / --stale)")
    if args.labels_per_class and args.study != "label-scarce":
        raise UsageError("argument --labels-per-class: only with label-scarce")
    for flag, value in (
        ("--transfer-examples", args.transfer_examples),
        ("--augment-copies", args.augment_copies),
    ):
        if value and args.study != "sst2-transfer":
            raise UsageError(f"argument {flag}: only with sst2-transfer")
    if args.study == "privileged":
        if args.no_keras_peer:
            raise UsageError("argument --no-keras-peer: privileged runs no keras.distillation")
        _check_names(args.datasets, PRIVILEGED_NAMES, "privileged pairings")
        return _bench_privileged(args)
    if args.study == "function-matching":
        if args.no_keras_peer:
            raise UsageError(
                "argument --no-keras-peer: function-matching runs no keras.distillation"
            )
        _check_names(args.datasets, FUNCTION_MATCHING_NAMES, "function-matching pairings")
        return _bench_function_matching(args)
    if args.study == "tabular-views":
        if args.no_keras_peer:
            raise UsageError("argument --no-keras-peer: tabular-views runs no keras.distillation")
        _check_names(args.datasets, TABULAR_VIEW_NAMES, "tabular-views student views")
        return _bench_tabular_views(args)
    if args.study == "tasks":
        if args.no_keras_peer:
            raise UsageError("argument --no-keras-peer: tasks runs no keras.distillation")
        _check_names(args.datasets, TASK_SETTING_NAMES, "tasks settings")
        return _bench_tasks(args)
    if args.study in ("label-scarce", "sst2-transfer", "fusion-strong-teacher"):
        refused = [
            flag
            for flag, on in (("--datasets", args.datasets), ("--no-keras-peer", args.no_keras_peer))
            if on
        ]
        if refused:
            raise UsageError(f"argument {refused[0]}: {args.study} runs one dataset")
        if args.study == "sst2-transfer":
            return _bench_sst2_transfer(args)
        if args.study == "fusion-strong-teacher":
            return _bench_fusion_teacher(args)
        return _bench_label_scarce(args)
    if args.study == "zoo":
        if args.teacher_epochs:
            raise UsageError(
                "argument --teacher-epochs: zoo gives every model one budget: --epochs"
            )
        if args.no_keras_peer:
            raise UsageError("argument --no-keras-peer: zoo runs no keras.distillation timing")
        _check_names(args.datasets, ZOO_SETTING_NAMES, "zoo settings")
        return _bench_zoo(args)
    if args.datasets and args.study != "default-recipe":
        raise UsageError(
            f"argument --datasets: {args.study} runs one dataset; --datasets is for "
            "default-recipe, zoo, privileged, function-matching, tabular-views and tasks"
        )
    _check_names(args.datasets, DEFAULT_RECIPE_NAMES, "default-recipe datasets")
    given = {
        "seeds": tuple(args.seeds) if args.seeds else None,
        "teacher_epochs": args.teacher_epochs,
        "epochs": args.epochs,
        "out_dir": args.out_dir,
        "datasets": tuple(args.datasets) if args.datasets else None,
    }
    config = StudyConfig(**{k: v for k, v in given.items() if v is not None})
    config.tiny = args.tiny
    config.keras_peer = not args.no_keras_peer
    config.verbose = 0 if args.quiet else 2
    _, summary, _ = run_study(args.study, config)
    print(markdown_table(summary))
    if config.out_dir:
        print(f"\nwritten: {config.out_dir}/{args.study}.csv and .md")
    return 0


def _preprocessing_file(path):
    import json
    from pathlib import Path

    from kdzoo.serving import ServingPreprocessing

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"kdzoo export: error: --preprocessing {path}: no such file.")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise SystemExit(
            f"kdzoo export: error: --preprocessing {path}: not JSON ({err})."
        ) from None
    # A bundle's serving.json holds the preprocessing under a key; a bare dict is accepted too.
    if isinstance(config, dict):
        config = config.get("preprocessing", config)
    if not isinstance(config, dict) or not config:
        raise SystemExit(
            f"kdzoo export: error: --preprocessing {path}: not a preprocessing config (a JSON "
            "object as a bundle's serving.json holds under 'preprocessing', or that object itself)."
        )
    try:
        return ServingPreprocessing.from_dict(config, base_dir=path.parent)
    except (KeyError, TypeError, ValueError) as err:
        raise SystemExit(
            f"kdzoo export: error: --preprocessing {path}: not a preprocessing config ({err!r})."
        ) from None


def _format_specs(specs) -> str:
    return ", ".join(f"{k} {v['dtype']} {v['shape']}" for k, v in specs.items())


def cmd_export(args) -> int:
    from kdzoo.serving import export_for_serving, export_student, load_student, read_metadata
    from kdzoo.serving.ops import op_report

    if args.name is not None and (not args.name or "/" in args.name or args.name[0] == "."):
        raise UsageError(
            f"argument --name: {args.name!r} is not a plain folder name (no '/', not starting "
            "with '.')"
        )
    if "://" in args.base_dir:
        raise UsageError(
            f"argument --base-dir: {args.base_dir} is a URL; kdzoo exports to this machine's "
            "file system (copy the version folder with gsutil -m cp -r)"
        )
    _folder_flag("--base-dir", args.base_dir)
    if args.dataset and args.dataset not in CATALOG.names():
        raise UsageError(
            f"argument --dataset: unknown dataset {args.dataset!r}; kdzoo's are "
            f"{', '.join(CATALOG.names())}"
        )
    preprocessing = _preprocessing_file(args.preprocessing) if args.preprocessing else None
    try:
        bundle = load_student(args.model, preprocessing)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"kdzoo export: error: {err}") from None
    options = {
        "name": args.name or bundle.name,
        "version": args.version,
        "portable": args.portable,
        "teacher_name": args.teacher_name or bundle.teacher_name,
    }
    if args.dataset:
        from kdzoo import datasets

        modalities = [t.name for t in bundle.model.inputs]
        data = datasets.load(args.dataset, seed=args.seed, modalities=modalities)
        split = "test" if "test" in data.splits else "validation"
        path = export_student(bundle.model, args.base_dir, data=data, split=split, **options)
    elif bundle.preprocessing is None:
        raise SystemExit(
            f"kdzoo export: error: {args.model} has no serving.json beside it; give "
            "--preprocessing FILE or --dataset NAME (the dataset the student was trained on)."
        )
    else:
        path = export_for_serving(
            bundle.model,
            args.base_dir,
            preprocessing=bundle.preprocessing,
            metrics=dict(bundle.metrics),
            warmup_inputs=bundle.examples,
            dataset=bundle.dataset,
            **options,
        )
    meta = read_metadata(path)
    print(f"exported {path}{' (portable)' if args.portable else ''}")
    print(f"  student: {meta['model']} ({meta['params']:,} params); teacher: {meta['teacher']}")
    for name, sig in meta["signatures"].items():
        outputs = _format_specs(sig["outputs"])
        print(f"  {name}: {_format_specs(sig['inputs'])} -> {outputs}")
    written = meta["warmup"]
    if written.get("skipped"):
        print(f"  warmup: none ({written['skipped']})")
    else:
        print(f"  warmup: {written['requests']} requests ({written['inputs']} inputs)")
    print(op_report(path).describe())
    print(f"check it: kdzoo check-export {path}")
    return 0


def _latest_version(path):
    from pathlib import Path

    path = Path(path)
    if not path.is_dir():
        what = "is a file, not an export folder" if path.exists() else "no such folder"
        raise SystemExit(f"kdzoo check-export: error: {path}: {what}.")
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.glob("*") if p.name.isdigit() and p.is_dir()]
    if not versions:
        raise SystemExit(f"kdzoo check-export: error: {path} holds no saved_model.pb nor versions.")
    return max(versions, key=lambda p: int(p.name))  # as TF Serving picks it: "007" is 7


def cmd_check_export(args) -> int:
    from kdzoo.optional import MissingExtraError
    from kdzoo.serving.check import check_export

    try:
        report = check_export(_latest_version(args.path), data_dir=args.data_dir)
    except (FileNotFoundError, ValueError, MissingExtraError) as err:  # no kdzoo export
        raise SystemExit(f"kdzoo check-export: error: {err}") from None
    print(report.format())
    return 0 if report.passed else 1


#: ``kdzoo distil`` flags that map a file's columns (``--data``) to roles.
_COLUMN_FLAGS = ("text", "image", "audio", "id", "split")
#: ``kdzoo.tasks.KINDS``: what ``--task`` accepts.
TASK_KINDS = ("classification", "binary", "multi_label", "regression")
#: ... and those that take a list of columns (the tabular modality's).
_COLUMN_LIST_FLAGS = ("numeric", "categorical")
#: ``frames.from_dataframe``'s default ``sample_rate`` (the CLI checks flags before it loads).
_SAMPLE_RATE = 16_000
#: ``kdzoo distil`` flags for the loader's options (``frames.from_dataframe``'s keywords):
#: the flag, its ``add_argument`` options, its help, and the modality it is for.
_LOADER_FLAGS = (
    (
        "--image-size",
        {"nargs": 2, "type": int_at_least(1), "metavar": ("H", "W")},
        "resize every image to H x W pixels (default: every image must have the first's size)",
    ),
    (
        "--sample-rate",
        {"type": int_at_least(1), "metavar": "HZ"},
        f"the wav files' sample rate; a file at another rate is a bad example ({_SAMPLE_RATE})",
    ),
    (
        "--clip-seconds",
        {"type": finite_number(strict=True), "metavar": "S"},
        "audio clip length: shorter clips are zero-padded, longer ones cropped (the longest)",
    ),
    (
        "--max-tokens",
        {"type": int_at_least(2), "metavar": "N"},
        f"text vocabulary size, [PAD] included, OOV on top ({D.text_max_tokens})",
    ),
    (
        "--sequence-length",
        {"type": int_at_least(1), "metavar": "N"},
        f"token ids per text: longer texts are cut, shorter padded ({D.text_sequence_length})",
    ),
)
#: Where each modality comes from, as the loader options' errors say.
_FOR = {
    "image": "images (--image COLUMN, or a folder of images)",
    "audio": "audio (--audio COLUMN, or a folder of wavs)",
    "text": "text (--text COLUMN)",
}
#: The modality each loader option is for.
_LOADER_MODALITY = {
    "image_size": "image",
    "sample_rate": "audio",
    "clip_seconds": "audio",
    "max_tokens": "text",
    "sequence_length": "text",
}


def _own_data(args):
    """``--data`` and its column flags as a loader ``distil()`` calls after the strategy is
    made (no TensorFlow op may run before it); the file and its columns are checked now."""
    import functools

    columns = {k: getattr(args, k) for k in _COLUMN_FLAGS if getattr(args, k)}
    lists = {k: list(getattr(args, k)) for k in _COLUMN_LIST_FLAGS if getattr(args, k)}
    labels = list(args.label or ())
    if labels:
        columns["label"] = labels[0]
    task = args.task or "classification"
    if not args.data:
        columns = {**columns, **lists}
        if args.task or args.label_separator:
            raise UsageError(
                f"argument {'--task' if args.task else '--label-separator'}: only with --data "
                "(a CSV or Parquet file)"
            )
        others = {
            "--test-fraction": args.test_fraction is not None,
            "--unlabelled": args.unlabelled,
            "--skip-bad": args.skip_bad,
            **{flag: _loader_option(args, flag) is not None for flag, *_ in _LOADER_FLAGS},
        }
        if columns or any(others.values()):
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in columns) or next(
                flag for flag, given in others.items() if given
            )
            raise UsageError(f"argument {flags}: only with --data (a CSV, Parquet or folder)")
        return None
    if args.dataset:
        raise UsageError("argument --data: not with --dataset (one source of data)")
    path = Path(args.data)
    seed = D.seed if args.seed is None else args.seed
    options = {"validation_fraction": D.validation_fraction, "seed": seed}
    if args.test_fraction is not None:
        if args.test_fraction + D.validation_fraction >= 1:
            raise UsageError(
                f"argument --test-fraction: {args.test_fraction:g} leaves no training examples "
                f"(validation holds out {D.validation_fraction:g} of each class); give less "
                f"than {1 - D.validation_fraction:g}"
            )
        options["test_fraction"] = args.test_fraction
    if args.skip_bad:
        options["skip_bad"] = True
    if path.is_dir():
        if args.unlabelled:
            raise UsageError(
                f"argument --unlabelled: {path} is a folder of class folders, where every "
                "file has a label; it takes a CSV or Parquet file with empty label cells"
            )
        if columns or lists:
            raise UsageError(
                f"argument --data: {path} is a folder of class folders; its labels are the "
                "folder names, so it takes no column flags"
            )
        if task != "classification":
            raise UsageError(
                f"argument --task: {path} is a folder of class folders (classification); a "
                f"{task} task reads its labels from a CSV or Parquet file"
            )
        from kdzoo.datasets import frames

        frames.log.disabled = True  # its skipped files are logged once, when it loads
        try:
            frame, modality = frames.folder_frame(path)
        except ValueError as err:  # no image or wav files, or both kinds
            raise UsageError(f"argument --data: {err}") from None
        finally:
            frames.log.disabled = False
        _check_classes(path, frame["label"], "class folders")
        options.update(_loader_options(args, path, {modality}))
        return functools.partial(frames.from_folder, path, **options)
    if not path.is_file():
        raise UsageError(f"argument --data: no such file or folder: {path}")
    readers = {".csv": ("from_csv", "read_csv"), ".parquet": ("from_parquet", "read_parquet")}
    if path.suffix not in readers:
        raise UsageError(f"argument --data: {path} is not a .csv, .parquet or folder")
    if "label" not in columns:
        raise UsageError("argument --label: the label column of --data is required")
    if len(labels) > 1 and task not in ("multi_label", "regression"):
        raise UsageError(
            "argument --label: several columns are a multi_label or regression task's "
            "(--task multi_label / regression); a class label is one column"
        )
    if args.label_separator and task != "multi_label":
        raise UsageError("argument --label-separator: only with --task multi_label")
    if task == "multi_label" and args.unlabelled and len(labels) == 1:
        raise UsageError(
            "argument --unlabelled: a multi_label task needs one 0/1 --label column per "
            "label (in one column listing the labels, an empty cell means none of them)"
        )
    for kind, names in lists.items():
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise UsageError(f"argument --{kind}: names {twice[0]} twice")
    both = sorted(set(lists.get("numeric", ())) & set(lists.get("categorical", ())))
    if both:
        raise UsageError(
            f"argument --categorical: {both[0]} is also a --numeric column; a column is "
            "standardised as a number or one-hot encoded as a category, not both"
        )
    if not set(columns) & {"text", "image", "audio"} and not lists:
        raise UsageError(
            "argument --data: name at least one input column (--text, --image, --audio, "
            "--numeric, --categorical)"
        )
    import pandas as pd

    loader, reader = readers[path.suffix]
    try:
        header = getattr(pd, reader)(path, **({"nrows": 0} if reader == "read_csv" else {}))
    except (OSError, ValueError) as err:
        raise UsageError(f"argument --data: cannot read {path}: {err}") from None
    for role, name in [*(("label", n) for n in labels), *columns.items()]:
        if role not in ("label", "id", "split"):
            continue
        for kind, names in lists.items():
            if name in names:
                raise UsageError(
                    f"argument --{kind}: {name} is the --{role} column; a feature that "
                    f"is the {role} would leak it into the model"
                )
    named = [(role, name) for role, name in columns.items() if role != "label"]
    named += [("label", name) for name in labels]
    named += [(role, name) for role, names in lists.items() for name in names]
    missing = [f"--{role} {name}" for role, name in named if name not in header.columns]
    if missing:
        raise UsageError(
            f"argument --data: {path} has no column for {', '.join(missing)}; its columns "
            f"are {', '.join(map(str, header.columns))}"
        )
    try:
        only = {"usecols" if reader == "read_csv" else "columns": labels}  # the labels alone
        read = getattr(pd, reader)(path, **only)
    except (OSError, ValueError) as err:
        raise UsageError(f"argument --data: cannot read {path}: {err}") from None
    if read.empty:
        raise UsageError(f"argument --data: {path} has its header but no rows")
    if task == "classification":
        _check_classes(path, read[labels[0]], f"label column {labels[0]!r}", args.unlabelled)
        _note_fractional_labels(read[labels[0]], labels[0])
    if args.export_dir:
        from kdzoo import families

        tabular = [name for kind in _COLUMN_LIST_FLAGS for name in lists.get(kind, ())]
        inputs = families.modalities_of([*columns, *lists])
        problem = families.unservable_message(tabular, inputs)
        if problem:
            raise UsageError(
                f"argument --export-dir: {path}: {problem} in the file, or leave out --export-dir"
            )
    options.update(
        _loader_options(args, path, {k for k in columns if k in ("text", "image", "audio")})
    )
    if args.unlabelled:
        options["unlabelled"] = True
    if task != "classification":
        options["task"] = task
        columns["label"] = labels if len(labels) > 1 else labels[0]
    if args.label_separator:
        options["label_separator"] = args.label_separator
    from kdzoo.datasets import frames  # TensorFlow: imported once the flags are checked

    return functools.partial(getattr(frames, loader), path, **columns, **lists, **options)


def _loader_option(args, flag):
    return getattr(args, flag[2:].replace("-", "_"))


def _loader_options(args, path, modalities) -> dict:
    """The loader options given (``--image-size``...), each checked against the data's
    modalities: an option for a modality the data lacks would be ignored, so it is refused."""
    options = {}
    for flag, *_ in _LOADER_FLAGS:
        value = _loader_option(args, flag)
        if value is None:
            continue
        name = flag[2:].replace("-", "_")
        modality = _LOADER_MODALITY[name]
        if modality not in modalities:
            given = " and ".join(sorted(modalities)) or "no text, image or audio"
            raise UsageError(f"argument {flag}: {path} has {given}; {flag} is for {_FOR[modality]}")
        options[name] = tuple(value) if name == "image_size" else value
    rate = options.get("sample_rate", _SAMPLE_RATE)
    if "clip_seconds" in options and round(options["clip_seconds"] * rate) < 1:
        raise UsageError(
            f"argument --clip-seconds: {options['clip_seconds']:g} s is less than one sample "
            f"at {rate} Hz"
        )
    return options


def _check_classes(path, labels, what, unlabelled=False) -> None:
    """Refuses data whose labels (a pandas Series) name fewer than two classes before
    anything loads: the model would have nothing to tell apart. Cells the loader would read
    as no label (empty) do not count; with ``--unlabelled`` they are the transfer set."""
    classes = labels.dropna().astype(str)
    classes = sorted(set(classes[classes.str.strip() != ""]))
    if len(classes) >= 2:
        return
    found = f"only {classes[0]!r}" if classes else "no label"
    hint = " (a number to predict is --task regression)" if "column" in what else ""
    empty = " (empty cells are the --unlabelled transfer set)" if unlabelled else ""
    raise UsageError(
        f"argument --data: {path} has {found} in its {what}{empty}; a classifier needs two "
        f"classes or more{hint}"
    )


def _note_fractional_labels(labels, column) -> None:
    """Says so, at once, when a class label column holds numbers that are not whole (2.43,
    2.14, ...): each distinct value becomes a class of its own, which is what half-star
    ratings want and a measured quantity does not."""
    import pandas as pd

    if not pd.api.types.is_float_dtype(labels):
        return
    values = labels.dropna()
    fractional = values[values != values.round()]
    if len(fractional):
        print(
            f"kdzoo distil: note: label column {column!r} holds numbers that are not whole "
            f"(e.g. {fractional.iloc[0]:g}); each of its {values.nunique()} values is a class. "
            "A number to predict is --task regression.",
            file=sys.stderr,
        )


def _pair_for_data(args):
    """``--pair`` for ``--data``: as given, else the family of the file's one modality, else
    None (the default pair, which reads image and audio); a file with other modalities than
    those must name its models (``kdzoo.families``)."""
    from kdzoo import families

    if args.pair or (args.teacher and args.student) or not args.data:
        return args.pair  # a side not given comes from the pair (DistilConfig.pair)
    roles = [m for m in (*_COLUMN_FLAGS, *_COLUMN_LIST_FLAGS) if getattr(args, m)]
    modalities = families.modalities_of(roles)
    if Path(args.data).is_dir():  # a class-folder tree: images or recordings
        modalities = {families.folder_modality(Path(args.data))}
    try:
        return families.family_for(modalities)
    except ValueError as err:
        raise UsageError(
            f"argument --pair: --data gives {' and '.join(sorted(modalities))}; name the models "
            "(--pair FAMILY, or --student FAMILY/PRESET with --teacher; kdzoo list)"
        ) from err


def cmd_distil(args) -> int:
    # No TensorFlow op may run before distil(): a TPU or multi-worker strategy comes first.
    # The data flags are checked before TensorFlow is imported, so their errors come at once.
    for flag in ("--export-dir", "--run-dir", "--backup-dir"):
        _folder_flag(flag, getattr(args, flag[2:].replace("-", "_")))
    if args.tensorboard and not args.run_dir:
        raise UsageError("argument --tensorboard: its logs go under --run-dir; give --run-dir")
    if args.dataset and args.dataset not in CATALOG.names():
        raise UsageError(
            f"argument --dataset: unknown dataset {args.dataset!r}; kdzoo's are "
            f"{', '.join(CATALOG.names())} (your own file or folder: --data)"
        )
    dataset = _own_data(args) or args.dataset
    _check_candidates_for_task(args)
    args.pair = _pair_for_data(args)
    from kdzoo.recipe import DistilConfig, check_config, distil

    given = {
        "dataset": dataset,
        "teacher": args.teacher,
        "student": args.student,
        "teacher_inputs": tuple(args.teacher_inputs) if args.teacher_inputs else None,
        "student_inputs": tuple(args.student_inputs) if args.student_inputs else None,
        "pair": args.pair,
        "strategy": args.strategy,
        "tpu": args.tpu,
        "global_batch_size": args.global_batch_size,
        "teacher_epochs": args.teacher_epochs,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "patience": args.patience,
        "candidates": tuple(args.candidate) if args.candidate else None,
        "scratch": tuple(args.scratch) if args.scratch else None,
        "distil_margin_se": args.distil_margin_se,
        "run_dir": args.run_dir,
        "mixed_precision": args.mixed_precision,
        "steps_per_execution": args.steps_per_execution,
        "backup_dir": args.backup_dir,
        "export_dir": args.export_dir,
        "export_name": args.export_name,
        "seed": args.seed,
        "num_examples": args.num_examples,
        "train_examples": args.train_examples,
    }
    config = DistilConfig(**{k: v for k, v in given.items() if v is not None})
    if args.jit_compile is not None:
        config.jit_compile = {"true": True, "false": False}.get(args.jit_compile, "auto")
    config.tensorboard = args.tensorboard
    config.portable = args.portable
    if args.op_determinism is not None:
        config.op_determinism = {"on": True, "off": False, "auto": "auto"}[args.op_determinism]
    if args.quiet:
        config.verbose = 2
    _checked(check_config, config, _as_flags)
    if not (args.run_dir or args.export_dir):  # a finished run's --backup-dir is emptied
        print(
            "kdzoo distil: note: no --run-dir or --export-dir, so nothing is saved: the tables "
            "are printed, the report and the student are not.",
            file=sys.stderr,
        )
    _print_distil(distil(config), args.teacher, args.global_batch_size)
    return 0


def _print_distil(result, teacher, given_batch=None) -> None:
    if result.is_chief:
        print(f"\nstrategy: {result.strategy}")
        how = "given" if given_batch else "auto: sized for the training examples"
        print(f"global batch: {result.global_batch_size} ({how})")
        how = f"given ({teacher}), not trained" if teacher else "trained here"
        print(f"teacher: {result.teacher.name}, {how}; student: {result.student.name}")
        _print_recipe(result.recipe)
    if result.export_path:
        print(f"the recipe's student exported to {result.export_path}")
        _note_custom_ops(result.export_path)


def _note_custom_ops(export_path) -> None:
    """Says so when an export needs ops outside core TensorFlow (e.g. tensorflow_text's
    tokenizer), which stock TF Serving does not link."""
    import json

    from kdzoo.serving.export import METADATA_FILE

    try:
        requires = json.loads((Path(export_path) / METADATA_FILE).read_text())["requires"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if requires:
        print(
            f"note: it needs {', '.join(requires)} (ops outside core TensorFlow): import "
            "them before loading it; stock TF Serving does not have them (--portable, or "
            f"portable: true in an experiment file, exports without them). kdzoo check-export "
            f"{export_path} lists the ops"
        )


def cmd_run(args) -> int:
    # As for distil: the data is loaded after the strategy is made.
    from kdzoo.experiment import ExperimentError, load_experiment, run_experiment

    try:
        experiment = load_experiment(args.path)
    except ExperimentError as err:  # the file's fault, not the command line's
        print(f"kdzoo run: error: {_as_keys(str(err))}", file=sys.stderr)
        return 1
    if args.quiet:
        experiment.config.verbose = 2
    result = run_experiment(experiment)
    _print_distil(result, experiment.config.teacher, experiment.config.global_batch_size)
    if result.is_chief:
        print(f"the experiment file is saved with the report: {experiment.config.run_dir}")
    return 0


def _candidate_flags(p, scratch):
    p.add_argument(
        "--candidate",
        action="append",
        type=_candidate,
        metavar="TERMS[@t=T,lr=LR,ls=LS]",
        help="a distillation setting to try (repeat; replaces the defaults: "
        f"{' '.join(D.candidates)})"
        + (
            f"; with --task binary or multi_label they are {' '.join(D.multi_label_candidates)}"
            f", with --task regression {' '.join(D.regression_candidates)}"
            if scratch  # kdzoo distil; the demo's task is classification
            else ""
        )
        + "; one --candidate is a single fixed setting. Terms: "
        f"{', '.join((LABEL_TERM, *TERM_NAMES))} ({LABEL_TERM}: the task's label loss)",
    )
    if scratch:
        p.add_argument(
            "--scratch",
            action="append",
            type=_scratch,
            metavar="scratch[@lr=LR,ls=LS]",
            help="a scratch try (repeat; default: as many as candidates: scratch, "
            "scratch@ls=0.1, scratch@lr=<half>, ...; with --task regression, whose labels "
            "are not smoothed: scratch, scratch@lr=<half>, scratch@lr=<twice>, ...)",
        )
        p.add_argument(
            "--distil-margin-se",
            type=_NON_NEGATIVE,
            metavar="K",
            help="return the best distilled student only if it beats tuned scratch on "
            "validation by more than K standard errors of their paired difference "
            f"({D.distil_margin_se:g}: the one-standard-error rule; 0: any gain)",
        )


def _version() -> str:
    """The installed kdzoo's version (its package metadata; no TensorFlow import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kdzoo")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kdzoo", description="Multimodal knowledge distillation for Keras.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "list",
        help="list the model zoo's families, presets and pairs",
        description="Prints every model family with its inputs, its presets' parameter counts "
        "(at the builders' default shapes) and a description, then the teacher-student pairs.",
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "demo",
        help="cross-modal demo on the embedded dataset: teacher, scratch and distilled student",
    )
    p.add_argument(
        "--dataset",
        choices=_AUDIO_VISUAL,
        help="embedded (generated, default) or av_digits (FSDD + MNIST from $KDZOO_DATA_DIR)",
    )
    p.add_argument("--seed", type=_SEED, help=f"data, initialisation and shuffling seed ({D.seed})")
    p.add_argument(
        "--num-examples", type=_POSITIVE_INT, help="examples generated, embedded only (5000)"
    )
    labels = p.add_mutually_exclusive_group()
    labels.add_argument(
        "--labels-per-class",
        type=_POSITIVE_INT,
        metavar="K",
        help="training examples of each class that keep their label; the others are an "
        "unlabelled transfer set only the teacher labels (150)",
    )
    labels.add_argument(
        "--all-labels", action="store_true", help="label every training example instead"
    )
    p.add_argument(
        "--teacher-epochs",
        type=_POSITIVE_INT,
        help=f"teacher epoch budget; early stopping ends it sooner ({D.teacher_epochs})",
    )
    p.add_argument(
        "--epochs", type=_POSITIVE_INT, help=f"epoch budget of each student ({D.epochs})"
    )
    p.add_argument("--batch-size", type=_POSITIVE_INT, help=f"batch size ({D.batch_size})")
    _candidate_flags(p, scratch=False)
    p.add_argument("--run-dir", help="where the report goes (runs/demo)")
    p.add_argument("--export-dir", help="where the student is exported (saved_models)")
    p.add_argument(
        "--student-dir",
        help="where the student bundle goes (<export-dir>/bundles/demo_audio_student); an "
        "existing folder is replaced only if it is a kdzoo bundle",
    )
    p.add_argument("--no-export", action="store_true", help="do not export the student")
    p.add_argument("--quiet", action="store_true", help=_QUIET)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "distil",
        help="the recipe on a dataset: teacher, tuned scratch, distillation candidates, the "
        "best on validation; under any tf.distribute strategy",
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help=f"a kdzoo dataset: {', '.join(CATALOG.names())} (embedded)",
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="your own data: a CSV or Parquet file (name its columns with --label, --text, "
        "--image, --audio, --numeric, --categorical, --id, --split) or a folder of <class>/ "
        "folders of images or wavs",
    )
    p.add_argument(
        "--label",
        nargs="+",
        metavar="COLUMN",
        help="--data: the label column (strings or integers); with --task multi_label or "
        "regression, one column per label or target",
    )
    p.add_argument(
        "--task",
        choices=TASK_KINDS,
        help="--data: what the labels are (classification): binary (0/1), multi_label (0/1 "
        "columns, or one column listing labels), regression (numbers, standardised on train)",
    )
    p.add_argument(
        "--label-separator",
        metavar="TEXT",
        help="--data --task multi_label with one label column: what separates a cell's labels (|)",
    )
    for role, what in (
        ("text", "a text column"),
        ("image", "a column of image file paths"),
        ("audio", "a column of wav file paths"),
        ("id", "an example id column"),
        ("split", "a column of train/validation/test"),
    ):
        p.add_argument(f"--{role}", metavar="COLUMN", help=f"--data: {what}")
    for role, what in (
        ("numeric", "numeric columns (the 'tabular' input, standardised on train)"),
        ("categorical", "categorical columns (the 'tabular' input, one-hot over train's values)"),
    ):
        p.add_argument(f"--{role}", nargs="+", metavar="COLUMN", help=f"--data: {what}")
    for flag, options, what in _LOADER_FLAGS:
        p.add_argument(flag, **options, help=f"--data: {what}")
    p.add_argument(
        "--test-fraction",
        type=_NON_NEGATIVE,
        help="--data without a split column: share of each class held out for test (0)",
    )
    p.add_argument(
        "--unlabelled",
        action="store_true",
        help="--data: training rows with an empty label are an unlabelled transfer set that "
        "only the teacher labels (otherwise they are bad rows)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="--data: skip bad rows or files (each named in the log, and counted) instead of "
        "stopping at the first",
    )
    p.add_argument(
        "--pair",
        help="kdzoo.models pair or family. Default: the data's; for data of one modality its "
        "family (tabular_mlp, text_lstm, image_cnn or audio_crnn), for image with audio "
        "av_to_audio",
    )
    p.add_argument(
        "--teacher",
        metavar="PATH",
        help="your own teacher instead of the pair's: a .keras file, a SavedModel folder, a "
        "KerasHub preset folder (reads the raw text), or a file of its outputs (.npz, .csv, "
        ".parquet) whose 'id' column or array holds the --id column's values; used as it is, "
        "not trained",
    )
    p.add_argument(
        "--student",
        metavar="FAMILY/PRESET",
        help="the student instead of the pair's, e.g. text_lstm/student (kdzoo list)",
    )
    p.add_argument(
        "--teacher-inputs",
        nargs="+",
        metavar="KEY",
        help="batch keys the teacher reads (its input names)",
    )
    p.add_argument(
        "--student-inputs",
        nargs="+",
        metavar="KEY",
        help="batch keys the student reads (its input names)",
    )
    p.add_argument(
        "--strategy",
        choices=("auto", "default", "mirrored", "multiworker", "tpu"),
        help="tf.distribute strategy; auto: a TPU if one connects, multiworker if $TF_CONFIG "
        "names several workers, mirrored over several GPUs, else the default (auto)",
    )
    p.add_argument("--tpu", help="TPU name, grpc:// address or 'local'")
    p.add_argument(
        "--global-batch-size",
        type=_POSITIVE_INT,
        help=f"examples per step, all replicas (default: {D.batch_size}, halved for a small "
        "training set so that an epoch takes enough steps: kdzoo.recipe.config."
        "auto_batch_size)",
    )
    p.add_argument(
        "--teacher-epochs",
        type=int_at_least(0),
        help=f"teacher epoch budget; 0: untrained ({D.teacher_epochs})",
    )
    p.add_argument(
        "--epochs", type=_POSITIVE_INT, help=f"epoch budget of each student ({D.epochs})"
    )
    p.add_argument(
        "--patience",
        type=_POSITIVE_INT,
        help=f"epochs without a better validation accuracy before a phase stops ({D.patience})",
    )
    p.add_argument(
        "--learning-rate",
        type=_POSITIVE,
        help=f"starting learning rate, halved on validation plateaus ({D.learning_rate:g})",
    )
    _candidate_flags(p, scratch=True)
    p.add_argument("--run-dir", help="where the report (tables, figure) goes")
    p.add_argument(
        "--tensorboard", action="store_true", help="TensorBoard logs under <run-dir>/logs"
    )
    p.add_argument(
        "--mixed-precision",
        choices=("float32", "mixed_float16", "mixed_bfloat16", "auto"),
        help="Keras dtype policy; logits and losses stay float32; auto: mixed_bfloat16 on "
        "TPU, mixed_float16 on GPU, float32 otherwise (float32)",
    )
    p.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        help="XLA for the train steps; auto: Keras's choice (on for GPUs when every layer "
        "supports it; TPUs always compile) (auto)",
    )
    p.add_argument(
        "--steps-per-execution",
        type=_POSITIVE_INT,
        help="train steps per tf.function call, as Keras's compile() (1)",
    )
    p.add_argument(
        "--backup-dir",
        help="BackupAndRestore folder: a rerun with the same settings resumes there; only "
        "what the run wrote is removed when it ends",
    )
    p.add_argument(
        "--export-dir",
        help="TF Serving folder for the distilled student (raw-input signatures, as `kdzoo "
        "export` writes); must not overlap --backup-dir",
    )
    p.add_argument(
        "--export-name",
        help="exported model name (default: <data name>_student for --data, else the "
        "student's input: audio_student for the default pair)",
    )
    p.add_argument(
        "--portable",
        action="store_true",
        help="--export-dir: tokenise text with core TF ops, so the export loads in stock TF "
        "Serving (the default keeps tensorflow-text's op; exports without text are portable "
        "either way)",
    )
    p.add_argument(
        "--seed", type=_SEED, help=f"data split, initialisation and shuffling seed ({D.seed})"
    )
    p.add_argument(
        "--op-determinism",
        choices=("auto", "on", "off"),
        help="TensorFlow's op determinism: on gives bit-identical reruns; Keras turns XLA "
        "off under it, so auto is on only without XLA (CPU) (auto)",
    )
    p.add_argument(
        "--num-examples", type=_POSITIVE_INT, help="examples generated, embedded only (5000)"
    )
    p.add_argument("--train-examples", type=_POSITIVE_INT, help="a seeded random training subset")
    p.add_argument("--quiet", action="store_true", help=_QUIET)
    p.set_defaults(func=cmd_distil)

    p = sub.add_parser(
        "run",
        help="run an experiment file (YAML or JSON): data, teacher, student, recipe settings, "
        "export",
        description="Runs the recipe as an experiment file describes it (kdzoo.experiment); "
        "every key is checked before anything loads, and the file is saved with the report.",
    )
    p.add_argument("path", help="the experiment file (.yaml, .yml or .json)")
    p.add_argument("--quiet", action="store_true", help=_QUIET)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "bench",
        help="the recipe on real data over seeds (mean ± std); writes CSV + Markdown; "
        "default-recipe runs all seven datasets; zoo measures every preset against a "
        "reference model; label-scarce: an image teacher and k labelled clips per class; "
        "sst2-transfer: a phrase-trained teacher and the phrases as a transfer set; "
        "privileged: a full-view teacher and a degraded-view student; "
        "fusion-strong-teacher: warm-started fused teachers and a fused student; "
        "tabular-views: a teacher on five numeric views, students on one; tasks: regression "
        "and multi-label students; function-matching: consistent mixup as the transfer set; "
        "--stale, "
        "--verify FILE and --figure FILE check and draw committed tables",
    )
    p.add_argument(
        "study",
        nargs="?",
        choices=STUDY_NAMES,
        metavar="STUDY",
        help=f"one of {', '.join(STUDY_NAMES)}; embedded, mnist and the other dataset names "
        "run the default recipe on that dataset alone, av-digits-methods compares the "
        "distillation methods cross-modally",
    )
    p.add_argument("--seeds", type=_SEED, nargs="+", help="student seeds (0 1 2)")
    p.add_argument(
        "--teacher-epochs",
        type=_POSITIVE_INT,
        help=f"teacher epoch budget; not for zoo ({D.teacher_epochs})",
    )
    p.add_argument(
        "--epochs",
        type=_POSITIVE_INT,
        help=f"student epoch budget; zoo: every model's ({D.epochs})",
    )
    p.add_argument("--out-dir", help="where the CSV and Markdown go (benchmarks/results)")
    p.add_argument(
        "--datasets",
        nargs="+",
        choices=tuple(
            dict.fromkeys(
                (
                    *DEFAULT_RECIPE_NAMES,
                    *ZOO_SETTING_NAMES,
                    *PRIVILEGED_NAMES,
                    *TABULAR_VIEW_NAMES,
                    *TASK_SETTING_NAMES,
                )
            )
        ),
        metavar="NAME",
        help="default-recipe, zoo, privileged, function-matching, tabular-views or tasks: run "
        "these datasets / "
        f"settings / pairings / student views (default-recipe and zoo keep the others' rows); "
        f"default-recipe: {', '.join(DEFAULT_RECIPE_NAMES)}; zoo: {', '.join(ZOO_SETTING_NAMES)}; "
        f"privileged: {', '.join(PRIVILEGED_NAMES)}; function-matching: "
        f"{', '.join(FUNCTION_MATCHING_NAMES)}; tabular-views: "
        f"{', '.join(TABULAR_VIEW_NAMES)}; tasks: {', '.join(TASK_SETTING_NAMES)}",
    )
    p.add_argument(
        "--no-keras-peer", action="store_true", help="skip the keras.distillation timing"
    )
    p.add_argument(
        "--labels-per-class",
        type=_COUNT,
        nargs="+",
        metavar="K",
        help="label-scarce: labelled clips per class to run, 0 for none (0 1 5 20)",
    )
    p.add_argument(
        "--transfer-examples",
        type=_POSITIVE_INT,
        metavar="N",
        help="sst2-transfer: a seeded subset of N phrases as the transfer set (all 67,349)",
    )
    p.add_argument(
        "--augment-copies",
        type=_POSITIVE_INT,
        metavar="N",
        help="sst2-transfer: also N augmented copies of each labelled sentence (masking, "
        "n-gram sampling; Tang et al. 2019) in the transfer set (default: none)",
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        help="smoke size: 96 examples per split, the first candidate, one scratch try",
    )
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument(
        "--verify",
        metavar="FILE",
        help="rerun one seed of a committed table (its recorded command) and compare every "
        "row; with --datasets, only those",
    )
    p.add_argument(
        "--tolerance",
        type=_NON_NEGATIVE,
        help="--verify: largest accepted accuracy/F1 difference (0.01)",
    )
    p.add_argument(
        "--stale",
        action="store_true",
        help="list the tables under --out-dir that the current code did not make",
    )
    p.add_argument("--write", action="store_true", help="--stale: write them to STALE.md")
    p.add_argument(
        "--figure",
        metavar="FILE",
        help="draw a study's figure from its results CSV (test accuracy per model, mean ± std "
        "and each seed) beside it, as FILE's name with .png",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "export",
        help="export a trained student for TF Serving (raw inputs in, probabilities out)",
        description="Exports a student to <base-dir>/<name>/<next int>/ with raw-input "
        "signatures, a warmup file and kdzoo_export.json, and reports every op that is not "
        "core TensorFlow.",
    )
    p.add_argument(
        "model",
        help="a student bundle folder (student.keras + serving.json, as `kdzoo demo` writes) "
        "or a .keras file",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--preprocessing", type=_json_file, help="a serving.json / preprocessing JSON file"
    )
    source.add_argument(
        "--dataset",
        help="take the preprocessing, metrics and warmup examples from this kdzoo dataset "
        "(e.g. av_digits, sst2), loaded with --seed as for training",
    )
    p.add_argument("--seed", type=_SEED, default=D.seed, help=f"--dataset seed ({D.seed})")
    p.add_argument("--name", help="served model name (default: the bundle's)")
    p.add_argument("--base-dir", default="saved_models", help="models folder (saved_models)")
    p.add_argument("--version", type=_POSITIVE_INT, help="integer version (default: next free)")
    p.add_argument(
        "--portable",
        action="store_true",
        help="tokenise text with core TF ops: no tensorflow-text ops in the graph",
    )
    p.add_argument("--teacher-name", help="teacher recorded in the metadata")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "check-export",
        help="validate an export as TF Serving would load it (fresh process, saved_model_cli)",
        description="Checks an export as TF Serving would load it, each step pass/fail: the "
        "ops outside core TensorFlow, a load and run in a fresh process that imports no "
        "kdzoo, saved_model_cli show and run, the outputs recorded at export, the warmup "
        "requests, and bad inputs refused; exit 1 if a step fails.",
    )
    p.add_argument("path", help="a version folder, or a model folder (its highest version)")
    p.add_argument("--data-dir", help="data root for real inputs ($KDZOO_DATA_DIR)")
    p.set_defaults(func=cmd_check_export)
    return parser


def _user_errors() -> tuple:
    """Errors that report bad input or a refused action, not a bug: one line, exit 1."""
    from kdzoo.data.bad_input import BadExampleError
    from kdzoo.datasets.root import DataNotFoundError
    from kdzoo.distillation.outputs_file import TeacherOutputsError
    from kdzoo.distillation.sources import TeacherLoadError
    from kdzoo.files import NotOwnedError
    from kdzoo.recipe import BackupError, NonFiniteLossError
    from kdzoo.recipe.config import DataConfigError

    return (
        BadExampleError,
        DataNotFoundError,
        NotOwnedError,
        FileExistsError,  # an export version that exists
        BackupError,
        NonFiniteLossError,
        DataConfigError,
        TeacherOutputsError,  # a file of teacher outputs: its format, an id, a value
        TeacherLoadError,  # a teacher file kdzoo cannot load as one
    )


#: What a message quotes as the user gave it, which is never re-spelt: a quoted span, or a
#: token with a slash in it (a path such as runs/seed=0, which holds ``name=`` patterns).
_AS_GIVEN = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S*/\S*)""")


def _respell(message: str, spell) -> str:
    """``spell`` applied to the parts of ``message`` outside what the user gave (``_AS_GIVEN``)."""
    parts = _AS_GIVEN.split(message)
    return "".join(part if i % 2 else spell(part) for i, part in enumerate(parts))


def _as_flags(message: str) -> str:
    """A library message as ``kdzoo distil`` spells its options: ``global_batch_size=16``
    -> ``--global-batch-size 16``, ``DistilConfig.run_dir`` and ``run_dir`` -> ``--run-dir``,
    for each ``DistilConfig`` field or loader option with a flag of its name (a one-word
    field, such as ``seed``, only after ``DistilConfig.`` or "set ", where it cannot be an
    ordinary word). Quoted values and paths are left as given."""
    import dataclasses

    from kdzoo.recipe import DistilConfig

    distil = build_parser()._subparsers._group_actions[0].choices["distil"]
    flags = {o for a in distil._actions for o in a.option_strings}
    config_fields = {f.name for f in dataclasses.fields(DistilConfig)}
    aliases = {"candidates": "--candidate"}  # a field of a repeated flag, one setting each

    def option(name, fields=config_fields | set(_LOADER_MODALITY), alias=False):
        flag = aliases.get(name) if alias else None
        flag = flag or f"--{name.replace('_', '-')}"
        return flag if name in fields and flag in flags else None

    def with_value(match):  # global_batch_size=16 -> --global-batch-size 16
        flag = option(match.group(1))
        return f"{flag} " if flag else match.group(0)

    def named(match):  # DistilConfig.run_dir, set run_dir -> --run-dir, set --run-dir
        flag = option(match.group(2), alias=True)
        return f"{match.group(1) or ''}{flag}" if flag else match.group(0)

    def bare(match):  # run_dir -> --run-dir (a DistilConfig field; the loader's own words stay)
        return option(match.group(1), config_fields, alias=True) or match.group(0)

    def spell(text):
        text = text.replace("skip_bad=True", "--skip-bad")
        text = text.replace("image_size=(H, W)", "--image-size H W")
        text = re.sub(r"(?:DistilConfig\.)?\b([a-z_]+)=", with_value, text)
        text = re.sub(r"(?:DistilConfig\.|\b(set ))([a-z_]+)\b", named, text)
        text = re.sub(r"\b([a-z]+(?:_[a-z]+)+)\b", bare, text)  # run_dir, never "seed"
        for flag, (yes, no) in (
            ("--op-determinism", ("on", "off")),
            ("--jit-compile", ("true", "false")),
        ):
            text = text.replace(f"{flag} True", f"{flag} {yes}")
            text = text.replace(f"{flag} False", f"{flag} {no}")
        return text

    message = message.replace("DistilConfig.candidates/scratch", "--candidate/--scratch")
    return _respell(message, spell)


def _demo_flags(message: str) -> str:
    """``kdzoo.demo.check_config``'s messages as ``kdzoo demo`` spells its options: a
    backquoted field, such as run_dir's, becomes ``argument --run-dir``."""
    flags = {"candidates": "--candidate"}  # repeated, one setting each

    def flag(match):
        name = match.group(1)
        return f"argument {flags.get(name, '--' + name.replace('_', '-'))}"

    return re.sub(r"`([a-z_]+)`", flag, message)


def _as_keys(message: str) -> str:
    """A library message as an experiment file (``kdzoo run``) spells its options:
    ``sample_rate=8000`` -> ``data.sample_rate: 8000``, ``global_batch_size=16`` ->
    ``global_batch_size: 16``. Quoted values and paths are left as given."""
    import dataclasses

    from kdzoo.experiment import DATA_KEYS
    from kdzoo.recipe import DistilConfig

    fields = {f.name for f in dataclasses.fields(DistilConfig)} - {"dataset"}

    def key(match):
        verb, name = "set " if match.group(1) else "", match.group(2)
        if name in DATA_KEYS:
            return f"{verb}data.{name}: "
        return f"{verb}{name}: " if name in fields else match.group(0)

    def spell(text):
        text = text.replace("skip_bad=True", "skip_bad=true")
        text = text.replace("image_size=(H, W)", "image_size=[H, W]")
        text = re.sub(r"(pass )?(?:DistilConfig\.)?\b([a-z_]+)=", key, text)
        return re.sub(r"DistilConfig\.([a-z_]+)\b", r"\1", text)  # a field, as its key

    message = message.replace("DistilConfig.candidates/scratch", "candidates/scratch")
    return _respell(message, spell)


def main(argv=None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the subcommand that refused them, whose --help lists its flags
        subcommands = parser._subparsers._group_actions[0].choices
        subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    _quiet_tensorflow()
    prog = f"kdzoo {args.command}"
    try:
        return args.func(args)
    except UsageError as err:
        print(f"{prog}: error: {err} (see {prog} --help)", file=sys.stderr)
        return 2
    except Exception as err:
        if isinstance(err, _user_errors()):
            message = str(err)
            if args.command == "distil":  # the library's options, as this command spells them
                message = _as_flags(message)
            elif args.command == "run":  # ... and as an experiment file does
                message = _as_keys(message)
            print(f"{prog}: error: {message}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
