"""Bad-input and fault matrix, command line: every argument is checked before training, a
usage error is one line naming the flag (exit 2, no traceback), and parsing imports no
TensorFlow."""

import json

import pytest
from helpers import run_python

from kdzoo import cli

# Each is refused by the parser: (argv, text the one-line error must contain).
USAGE_ERRORS = [
    (["distil", "--epochs", "-1"], "argument --epochs: expected an integer >= 1, got '-1'"),
    (["distil", "--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
    (["distil", "--teacher-epochs", "-1"], "argument --teacher-epochs: expected an integer >= 0"),
    (["distil", "--patience", "0"], "argument --patience: expected an integer >= 1, got '0'"),
    (["distil", "--train-examples", "-5"], "argument --train-examples: expected an integer >= 1"),
    (["distil", "--num-examples", "0"], "argument --num-examples: expected an integer >= 1"),
    (["distil", "--global-batch-size", "0"], "argument --global-batch-size: expected an integer"),
    (["distil", "--steps-per-execution", "0"], "argument --steps-per-execution: expected an"),
    (
        ["distil", "--learning-rate", "nan"],
        "argument --learning-rate: expected a finite number > 0",
    ),
    (
        ["distil", "--learning-rate", "inf"],
        "argument --learning-rate: expected a finite number > 0",
    ),
    (["distil", "--learning-rate", "0"], "--learning-rate: expected a finite number > 0"),
    # --candidate TERMS[@t=T,lr=LR,ls=LS]: the loss terms...
    (["distil", "--candidate", "kdd"], "argument --candidate: unknown loss term 'kdd' in 'kdd'"),
    (["distil", "--candidate", "ce:0.5,at:1"], "argument --candidate: unknown loss term 'at'"),
    (
        ["distil", "--candidate", "kd:x"],
        "argument --candidate: the weight in 'kd:x': expected a number, got 'x'",
    ),
    (
        ["distil", "--candidate", "ce:0.5,kd:-1"],
        "argument --candidate: the weight in 'kd:-1': expected a finite number >= 0",
    ),
    (["distil", "--candidate", "@t=2"], "argument --candidate: '@t=2' names no loss terms"),
    (
        ["distil", "--candidate", "ce"],
        "argument --candidate: 'ce' has no teacher term (a distillation setting compares",
    ),
    (["distil", "--candidate", "ce:0.3,ce:0.7@t=2"], "'ce:0.3,ce:0.7@t=2' has no teacher term"),
    # ...and its settings
    (
        ["distil", "--candidate", "kd@t=0"],
        "argument --candidate: 't=0' in 'kd@t=0': expected a finite number > 0, got '0'",
    ),
    (["distil", "--candidate", "kd@t=-4"], "'t=-4' in 'kd@t=-4': expected a finite number > 0"),
    (["distil", "--candidate", "kd@t=nan"], "'t=nan' in 'kd@t=nan': expected a finite number"),
    (["distil", "--candidate", "kd@lr=0"], "'lr=0' in 'kd@lr=0': expected a finite number > 0"),
    (["distil", "--candidate", "kd@ls=1"], "'ls=1' in 'kd@ls=1': ls must be below 1"),
    (["distil", "--candidate", "kd@ls=-0.1"], "'ls=-0.1' in 'kd@ls=-0.1': expected a finite"),
    (
        ["distil", "--candidate", "kd@x=1"],
        "argument --candidate: 'x=1' in 'kd@x=1' is not a setting; expected KEY=VALUE with KEY "
        "one of t (temperature), lr (learning rate), ls (label smoothing)",
    ),
    (["distil", "--candidate", "kd@t"], "argument --candidate: 't' in 'kd@t' is not a setting"),
    # --scratch scratch[@lr=LR,ls=LS]
    (["distil", "--scratch", "kd"], "argument --scratch: 'kd' must start with 'scratch'"),
    (
        ["distil", "--scratch", "scratch@t=2"],
        "argument --scratch: 't=2' in 'scratch@t=2' is not a setting; expected KEY=VALUE with "
        "KEY one of lr (learning rate), ls (label smoothing)",
    ),
    (["distil", "--scratch", "scratch@ls=1.5"], "'ls=1.5' in 'scratch@ls=1.5': ls must be below"),
    (["distil", "--scratch", "scratch@lr=-1"], "'lr=-1' in 'scratch@lr=-1': expected a finite"),
    (["distil", "--seed", "-1"], "argument --seed: expected an integer >= 0"),
    (["distil", "--strategy", "gpu"], "argument --strategy: invalid choice: 'gpu'"),
    # The flags the recipe replaced are refused, not ignored.
    (["distil", "--temperature", "4"], "unrecognized arguments: --temperature 4"),
    (["distil", "--ce-weight", "0.3"], "unrecognized arguments: --ce-weight 0.3"),
    (["distil", "--kd-weight", "0.7"], "unrecognized arguments: --kd-weight 0.7"),
    (["distil", "--term", "kd"], "unrecognized arguments: --term kd"),
    (["distil", "--no-baseline"], "unrecognized arguments: --no-baseline"),
    (["demo", "--epochs", "-1"], "argument --epochs: expected an integer >= 1, got '-1'"),
    (["demo", "--num-examples", "0"], "argument --num-examples: expected an integer >= 1"),
    (["demo", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1"),
    (["demo", "--teacher-epochs", "0"], "argument --teacher-epochs: expected an integer >= 1"),
    (["demo", "--candidate", "kdd"], "argument --candidate: unknown loss term 'kdd' in 'kdd'"),
    (["demo", "--candidate", "ce"], "argument --candidate: 'ce' has no teacher term"),
    (["demo", "--candidate", "kd@t=0"], "argument --candidate: 't=0' in 'kd@t=0': expected a"),
    (["demo", "--temperature", "4"], "unrecognized arguments: --temperature 4"),
    (["demo", "--scratch", "scratch"], "unrecognized arguments: --scratch scratch"),
    (["bench", "nope"], "argument STUDY: invalid choice: 'nope'"),
    (["bench", "sst2", "--epochs", "0"], "argument --epochs: expected an integer >= 1"),
    (["bench", "sst2", "--teacher-epochs", "0"], "argument --teacher-epochs: expected an integer"),
    (["bench", "sst2", "--seeds", "0", "-1"], "argument --seeds: expected an integer >= 0"),
    (["bench", "sst2", "--datasets", "mnist"], "argument --datasets: sst2 runs one dataset;"),
    # a name that no study of this one has: the study is refused first, not the name
    (["bench", "mnist", "--datasets", "pix"], "argument --datasets: mnist runs one dataset;"),
    (
        ["bench", "default-recipe", "--datasets", "av-digits-methods"],
        "argument --datasets: invalid choice: 'av-digits-methods'",
    ),
    (
        ["bench", "default-recipe", "--datasets", "fsdd-speaker"],
        "argument --datasets: default-recipe datasets are embedded,",
    ),
    (["bench", "zoo", "--datasets", "embedded"], "argument --datasets: zoo settings are mnist,"),
    (["bench", "zoo", "--teacher-epochs", "3"], "argument --teacher-epochs: zoo gives every"),
    (["bench", "sst2", "--batch-size", "8"], "unrecognized arguments: --batch-size 8"),
    (["bench", "sst2", "--no-robustness"], "unrecognized arguments: --no-robustness"),
    (["export", "m", "--version", "0"], "argument --version: expected an integer >= 1"),
    (["export", "m", "--preprocessing", "missing.json"], "cannot read missing.json"),
    (["export", "m", "--preprocessing", "bad.json"], "bad.json is not valid JSON"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    # an unknown flag is named by its subcommand, whose --help lists the flags it has
    (["distil", "--foo"], "kdzoo distil: error: unrecognized arguments: --foo (see kdzoo distil"),
    (["bench", "sst2", "x"], "kdzoo bench: error: unrecognized arguments: x (see kdzoo bench"),
    (["distil", "--dataset", "nosuch"], "argument --dataset: unknown dataset 'nosuch'; kdzoo's"),
    (["distil", "--tensorboard"], "argument --tensorboard: its logs go under --run-dir"),
    (["distil", "--run-dir", "rows.csv"], "argument --run-dir: rows.csv is a file, not a folder"),
    (["distil", "--backup-dir", "rows.csv"], "argument --backup-dir: rows.csv is a file, not"),
    (["demo", "--run-dir", "rows.csv"], "argument --run-dir: rows.csv is a file, not a folder"),
    (["demo", "--no-export", "--export-dir", "e"], "argument --export-dir: not with --no-export"),
    (
        ["demo", "--dataset", "av_digits", "--num-examples", "10"],
        "argument --num-examples: only with the generated embedded dataset",
    ),
    # --data's flags are checked against the file before TensorFlow loads.
    (["distil", "--data", "nope.csv", "--label", "y", "--text", "t"], "no such file or folder"),
    (
        ["distil", "--data", "bad.json", "--label", "y", "--text", "t"],
        "bad.json is not a .csv, .parquet or folder",
    ),
    (
        ["distil", "--data", "rows.csv", "--label", "y", "--text", "t", "--test-fraction", "0.9"],
        "argument --test-fraction: 0.9 leaves no training examples",
    ),
    (["distil", "--data", "rows.csv", "--label", "z", "--text", "t"], "no column for --label z"),
    (
        ["distil", "--data", "rows.csv", "--label", "y", "--numeric", "a b", "--export-dir", "e"],
        "argument --export-dir: rows.csv: column(s) 'a b' cannot name a serving input",
    ),
    (["distil", "--data", "empty.csv", "--label", "y", "--text", "t"], "empty.csv has its header"),
    # no abbreviated flags: --seed is not bench's --seeds, --label not --labels-per-class
    (["bench", "sst2", "--seed", "1"], "unrecognized arguments: --seed 1"),
    (["demo", "--labels", "3"], "unrecognized arguments: --labels 3"),
    (
        [
            "distil",
            "--data",
            "rows.csv",
            "--label",
            "y",
            "--numeric",
            "a b",
            "--categorical",
            "a b",
        ],
        "argument --categorical: a b is also a --numeric column; a column is standardised",
    ),
    (
        ["distil", "--data", "rows.csv", "--label", "y", "--numeric", "a b", "t", "a b"],
        "argument --numeric: names a b twice",
    ),
    (
        ["distil", "--data", "one.csv", "--label", "y", "--text", "t"],
        "one.csv has only 'yes' in its label column 'y'; a classifier needs two classes or more",
    ),
    (
        ["distil", "--data", "one.csv", "--label", "y", "--text", "t", "--unlabelled"],
        "(empty cells are the --unlabelled transfer set)",
    ),
]

# Runs the CLI in a fresh interpreter and reports whether TensorFlow or Keras got imported.
PROBE = """
import json, sys
from kdzoo.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def _probe(argv, cwd):
    proc = run_python(["-c", PROBE, *argv], cwd=cwd, timeout=120)
    *lines, report = proc.stderr.strip().splitlines()
    return json.loads(report), lines, proc.stdout


@pytest.mark.parametrize("argv, expected", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_exit_2_and_import_no_tensorflow(argv, expected, tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "rows.csv").write_text("t,a b,y\nhello,1,yes\nbye,2,no\n")
    (tmp_path / "empty.csv").write_text("t,y\n")
    (tmp_path / "one.csv").write_text("t,y\nhello,yes\nbye,\nhi,yes\n")
    report, lines, _ = _probe(argv, tmp_path)
    assert report == {"code": 2, "heavy": []}
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert lines[0].startswith("kdzoo")


@pytest.mark.parametrize(
    "argv", [["--help"], *([c, "--help"] for c in ("list", "demo", "distil", "bench", "export"))]
)
def test_help_imports_no_tensorflow(argv, tmp_path):
    report, _, out = _probe(argv, tmp_path)
    assert report == {"code": 0, "heavy": []}
    assert "usage: kdzoo" in out


def test_check_export_help_imports_no_tensorflow(tmp_path):
    report, _, out = _probe(["check-export", "--help"], tmp_path)
    assert report == {"code": 0, "heavy": []}


def test_the_parsers_name_lists_match_the_library():
    from kdzoo import (
        function_matching,
        fusion_strong_teacher,
        label_scarce,
        losses,
        privileged,
        sst2_transfer,
        studies,
        tabular_views,
        task_study,
        tasks,
        zoo_strength,
    )
    from kdzoo.datasets import mnist_views
    from kdzoo.recipe.candidates import LABEL

    assert cli.STUDY_NAMES == (
        *studies.STUDIES,
        "zoo",
        label_scarce.NAME,
        sst2_transfer.NAME,
        privileged.NAME,
        fusion_strong_teacher.NAME,
        tabular_views.NAME,
        task_study.NAME,
        function_matching.NAME,
    )
    assert cli.FUNCTION_MATCHING_NAMES == function_matching.PAIRING_NAMES
    assert set(function_matching.PAIRING_NAMES) <= set(privileged.PAIRINGS)
    assert cli.TASK_SETTING_NAMES == task_study.SETTINGS
    assert cli.TASK_KINDS == tasks.KINDS
    assert cli.LABEL_TERM == LABEL
    assert cli.PRIVILEGED_NAMES == tuple(privileged.PAIRINGS)
    assert cli.TABULAR_VIEW_NAMES == tuple(mnist_views.VIEWS)
    assert cli.ZOO_SETTING_NAMES == tuple(zoo_strength.SETTINGS)
    assert cli.DEFAULT_RECIPE_NAMES == studies.DEFAULT_RECIPE
    accepted = [n for n in losses.names() if losses.get(n).compares != "features"]
    assert list(cli.TERM_NAMES) == accepted


# (spec, what the library makes of it: "distil", "scratch" or None for refused).
SPECS = [
    ("kd@t =2", "distil"),
    ("kd", "distil"),
    ("nkd", "distil"),
    ("dkd:1@t=4", "distil"),
    ("ce:0.5,kd:0.5@t=2", "distil"),
    ("ce:0.5,kd_std:0.5@t=2,lr=0.001,ls=0.1", "distil"),
    ("ce:0.3, kd:0.7 @ t=2", "distil"),
    ("kd@", "distil"),
    ("scratch", "scratch"),
    ("scratch@ls=0.1", "scratch"),
    ("scratch@lr=0.001,ls=0.2", "scratch"),
    ("kdd", None),
    ("KD", None),
    ("at:1", None),
    ("ce", None),
    ("ce:1,ce:0.5", None),
    ("kd:x", None),
    ("kd:-1", None),
    ("kd:nan", None),
    ("kd@t=0", None),
    ("kd@t=-1", None),
    ("kd@t=inf", None),
    ("kd@lr=0", None),
    ("kd@ls=1", None),
    ("kd@x=1", None),
    ("kd@t", None),
    ("kd@t=2@t=3", None),
    ("kd@t=2,t=3", None),
    ("@t=2", None),
    ("", None),
    ("scratch@t=2", None),
]


def _accepts(flag, spec):
    try:
        cli.build_parser().parse_args(["distil", flag, spec])
    except SystemExit as exit:
        assert exit.code == 2
        return False
    return True


@pytest.mark.parametrize("spec, kind", SPECS, ids=[repr(s) for s, _ in SPECS])
def test_the_parser_accepts_exactly_the_candidates_the_library_accepts(spec, kind, capsys):
    """--candidate takes what ``Candidate.parse`` reads as a distillation setting, --scratch
    what it reads as a scratch try; what the library refuses, the parser refuses."""
    from kdzoo.recipe import Candidate

    try:
        parsed = Candidate.parse(spec)
    except ValueError:
        library = None
    else:
        library = "distil" if parsed.distils else "scratch"
    assert library == kind
    assert _accepts("--candidate", spec) == (kind == "distil")
    assert _accepts("--scratch", spec) == (kind == "scratch")


def test_the_defaults_the_help_quotes_are_accepted_on_the_command_line():
    from kdzoo.defaults import DEFAULTS
    from kdzoo.recipe import scratch_tries

    argv = ["distil"]
    for spec in DEFAULTS.candidates:
        argv += ["--candidate", spec]
    for try_ in scratch_tries(9):
        argv += ["--scratch", try_.name]
    args = cli.build_parser().parse_args(argv)
    assert tuple(args.candidate) == DEFAULTS.candidates
    assert args.scratch == [t.name for t in scratch_tries(9)]


def test_a_label_column_of_fractional_numbers_gets_a_note_at_once(tmp_path, capsys):
    (tmp_path / "float.csv").write_text("t,y\nhello,1.0\nbye,2.43\nhi,2.14\nyo,2.43\n")
    (tmp_path / "whole.csv").write_text("t,y\nhello,1.0\nbye,2.0\nhi,\n")
    # a refused --candidate stops the run after the data's checks, before anything loads
    wrong = ["--text", "t", "--candidate", "label:0.5,teacher_bounded:0.5"]
    assert cli.main(["distil", "--data", str(tmp_path / "float.csv"), "--label", "y", *wrong]) == 2
    err = capsys.readouterr().err
    assert (
        "note: label column 'y' holds numbers that are not whole (e.g. 2.43); each of its 3 " in err
    )
    assert "A number to predict is --task regression." in err
    argv = ["distil", "--data", str(tmp_path / "whole.csv"), "--label", "y", "--unlabelled"]
    assert cli.main([*argv, *wrong]) == 2
    assert "note:" not in capsys.readouterr().err  # whole numbers (NaN for no label) are ids


def test_library_settings_errors_are_usage_errors_before_training(tmp_path, capsys):
    shared = str(tmp_path / "d")
    argv = ["distil", "--backup-dir", shared, "--export-dir", shared, "--quiet"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "overlap" in err[0]
    assert not (tmp_path / "d").exists()
    assert cli.main(["distil", "--dataset", "sst2", "--num-examples", "50"]) == 2
    assert "--num-examples sizes a generated set" in capsys.readouterr().err  # as a flag
    # Each --candidate is fine alone; the list repeats one.
    assert cli.main(["distil", "--candidate", "kd@t=2", "--candidate", "kd@t=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--candidate/--scratch: Candidates repeat: kd@t=2" in err[0]
    assert cli.main(["demo", "--candidate", "kd", "--candidate", "kd", "--no-export"]) == 2
    assert "argument --candidate: Candidates repeat: kd" in capsys.readouterr().err
    # The library's field names are spelt as the command's flags.
    assert cli.main(["distil", "--train-examples", "4", "--global-batch-size", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DistilConfig" not in err[0], err
    assert "--train-examples 4 keeps fewer training examples than one global batch" in err[0]
    assert "(--global-batch-size 8)" in err[0]
    message = "DistilConfig.tensorboard writes under run_dir; set run_dir."
    assert cli._as_flags(message) == "--tensorboard writes under --run-dir; set --run-dir."
    assert cli._as_keys(message) == "tensorboard writes under run_dir; set run_dir."
    # What the user gave is quoted as given: paths such as runs/seed=0 are not flags.
    sweep = tmp_path / "seed=0"
    argv = ["distil", "--backup-dir", f"{sweep}/bk", "--export-dir", f"{sweep}/bk/e"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"--backup-dir '{sweep}/bk' and --export-dir '{sweep}/bk/e' overlap" in err
    # A value the flag takes, not the library's True.
    assert cli.main(["distil", "--op-determinism", "on", "--jit-compile", "true"]) == 2
    assert "--op-determinism on and --jit-compile true exclude" in capsys.readouterr().err
    # A one-word field is an ordinary word unless the message names it as a field.
    assert cli._as_flags("the dataset has its own seed") == "the dataset has its own seed"
    assert cli._demo_flags("`run_dir`: r is a file") == "argument --run-dir: r is a file"


def test_demo_refuses_folders_it_did_not_write_before_training(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    exports, run = tmp_path / "exports", tmp_path / "run"
    argv = ["demo", "--student-dir", str(mine), "--export-dir", str(exports), "--run-dir", str(run)]
    assert cli.main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"student_dir {mine} exists and has no kdzoo marker" in err[0]
    assert (mine / "thesis.tex").read_text() == "years of work"
    argv = ["demo", "--run-dir", str(mine), "--export-dir", str(exports), "--quiet"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"run_dir {mine} exists and has no kdzoo marker" in err[0]
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert not exports.exists() and not run.exists()  # refused before training and exporting


def test_distil_refuses_a_run_dir_it_did_not_write(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    argv = ["distil", "--run-dir", str(mine), "--num-examples", "100", "--strategy", "default"]
    argv += ["--export-dir", str(tmp_path / "exports"), "--quiet"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--run-dir {mine} exists and has no kdzoo marker" in err[0]
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert not (tmp_path / "exports").exists()


def test_distil_refuses_a_run_dir_it_did_not_write_before_anything_else(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    argv = ["distil", "--run-dir", str(mine), "--backup-dir", str(tmp_path / "backups")]
    assert cli.main([*argv, "--num-examples", "100", "--strategy", "default", "--quiet"]) == 1
    assert "exists and has no kdzoo marker" in capsys.readouterr().err
    assert not (tmp_path / "backups").exists()


@pytest.mark.slow
def test_distil_export_passes_check_export(tmp_path, capsys):
    argv = ["distil", "--num-examples", "200", "--global-batch-size", "16"]
    argv += ["--teacher-epochs", "1", "--epochs", "1", "--strategy", "default"]
    argv += ["--candidate", "ce:0.5,kd:0.5@t=4", "--scratch", "scratch"]
    argv += ["--export-dir", str(tmp_path / "exports"), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    version = tmp_path / "exports" / "audio_student" / "1"
    assert f"the recipe's student exported to {version}" in out
    assert cli.main(["check-export", str(version)]) == 0, capsys.readouterr().out
    assert "all checks passed" in capsys.readouterr().out
