"""Preemption: a distillation killed with SIGKILL resumes from its last finished epoch."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import SCRIPTS, python_env

from kdzoo.recipe.selection import phase_folder

SCRIPT = SCRIPTS / "preemption_run.py"
CANDIDATE = "ce:0.5,kd:0.5@t=4"
DISTIL = phase_folder(CANDIDATE)
TIMEOUT = 240


def _start(*args):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *map(str, args)],
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc):
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{SCRIPT.name} ran past {TIMEOUT} s")
    assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_killed_distillation_resumes_where_it_stopped(tmp_path):
    backup, marker = tmp_path / "backup", tmp_path / "epoch0.done"
    reference = _start(tmp_path / "reference-backup", tmp_path / "reference")
    victim = _start(backup, tmp_path / "killed", marker)
    deadline = time.monotonic() + TIMEOUT
    while not marker.exists():
        if victim.poll() is not None:
            pytest.fail(f"the run ended before being killed: {victim.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            victim.kill()
            pytest.fail("no distillation epoch finished in time")
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)  # no clean-up: a preempted machine
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    metadata = json.loads((backup / DISTIL / "training_metadata.json").read_text())
    assert metadata["epoch"] == 1  # epoch 0 was backed up before the kill

    _finish(_start(backup, tmp_path / "resumed"))
    _finish(reference)

    resumed = json.loads((tmp_path / "resumed.json").read_text())["epochs_run"]
    uninterrupted = json.loads((tmp_path / "reference.json").read_text())["epochs_run"]
    assert uninterrupted == {"teacher": [0], "scratch": [0, 1, 2], CANDIDATE: [0, 1, 2]}
    # Nothing finished is repeated: the teacher and scratch phases are read back.
    assert resumed == {"teacher": [], "scratch": [], CANDIDATE: [1, 2]}
    assert not backup.exists()  # removed once every phase finished

    final = np.load(tmp_path / "resumed.npz")
    expected = np.load(tmp_path / "reference.npz")
    assert len(final.files) == len(expected.files)
    for key in expected.files:
        np.testing.assert_allclose(final[key], expected[key], rtol=0, atol=1e-6, err_msg=key)
