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
    (["distil", "--temperature", "0"], "argument --temperature: expected a finite number > 0"),
    (["distil", "--temperature", "-4"], "argument --temperature: expected a finite number > 0"),
    (["distil", "--kd-weight", "-1"], "argument --kd-weight: expected a finite number >= 0"),
    (["distil", "--term", "kdd"], "argument --term: unknown loss term 'kdd'"),
    (["distil", "--term", "at:1"], "argument --term: unknown loss term 'at'"),
    (["distil", "--term", "kd:x"], "argument --term: the weight in 'kd:x': expected a number"),
    (["distil", "--seed", "-1"], "argument --seed: expected an integer >= 0"),
    (["distil", "--strategy", "gpu"], "argument --strategy: invalid choice: 'gpu'"),
    (["demo", "--epochs", "-1"], "argument --epochs: expected an integer >= 1, got '-1'"),
    (["demo", "--num-examples", "0"], "argument --num-examples: expected an integer >= 1"),
    (["demo", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1"),
    (["demo", "--teacher-epochs", "0"], "argument --teacher-epochs: expected an integer >= 1"),
    (["bench", "nope"], "argument study: invalid choice: 'nope'"),
    (["bench", "sst2", "--epochs", "0"], "argument --epochs: expected an integer >= 1"),
    (["export", "m", "--version", "0"], "argument --version: expected an integer >= 1"),
    (["export", "m", "--preprocessing", "missing.json"], "cannot read missing.json"),
    (["export", "m", "--preprocessing", "bad.json"], "bad.json is not valid JSON"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
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
    from kdzoo import losses, studies

    assert cli.STUDY_NAMES == studies.STUDIES
    accepted = [n for n in losses.names() if losses.get(n).compares != "features"]
    assert list(cli.TERM_NAMES) == accepted


def test_terms_beside_convenience_weights_are_a_usage_error(capsys):
    assert cli.main(["distil", "--term", "kd", "--ce-weight", "0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --term: replaces --ce-weight/--kd-weight" in err[0]


def test_library_settings_errors_are_usage_errors_before_training(tmp_path, capsys):
    shared = str(tmp_path / "d")
    argv = ["distil", "--backup-dir", shared, "--export-dir", shared, "--quiet"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "overlap" in err[0]
    assert not (tmp_path / "d").exists()
    assert cli.main(["distil", "--dataset", "sst2", "--num-examples", "50"]) == 2
    assert "num_examples sizes a generated set" in capsys.readouterr().err


def test_demo_refuses_a_student_dir_that_is_not_a_bundle_before_training(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    argv = ["demo", "--student-dir", str(mine), "--export-dir", str(tmp_path / "exports")]
    assert cli.main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"student_dir {mine} exists and has no kdzoo marker" in err[0]
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert not (tmp_path / "exports").exists()  # refused before training and exporting


@pytest.mark.slow
def test_distil_export_passes_check_export(tmp_path, capsys):
    argv = ["distil", "--num-examples", "200", "--global-batch-size", "16"]
    argv += ["--teacher-epochs", "1", "--epochs", "1", "--no-baseline", "--strategy", "default"]
    argv += ["--export-dir", str(tmp_path / "exports"), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    version = tmp_path / "exports" / "audio_student" / "1"
    assert f"distilled student exported to {version}" in out
    assert cli.main(["check-export", str(version)]) == 0, capsys.readouterr().out
    assert "all checks passed" in capsys.readouterr().out
