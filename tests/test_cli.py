import os
import subprocess
import sys

import pytest

from kdzoo.cli import build_parser, main


def _run(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "kdzoo.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_help_lists_subcommands():
    proc = _run("--help")
    assert proc.returncode == 0
    assert "list" in proc.stdout and "demo" in proc.stdout


def test_list_prints_every_family_with_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("image_cnn", "audio_crnn", "text_lstm", "multimodal_concat", "av_to_audio"):
        assert name in out
    assert "teacher_params" in out and "student_params" in out


def test_unknown_command_fails_cleanly():
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["frobnicate"])
    assert err.value.code == 2
