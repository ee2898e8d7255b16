"""Strategies: choosing one, sharding, the Keras compat layer, XLA, steps_per_execution,
mixed precision, MirroredStrategy (2 logical CPUs) and MultiWorkerMirroredStrategy
(2 processes on 127.0.0.1) parity with one device."""

import json
import logging
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import SCRIPTS, last_json_line, python_env, run_python
from scripts import fit_parity

from kdzoo import distribute
from kdzoo._keras_compat import check_steps_per_execution, enable_multi_worker_fit
from kdzoo.recipe import DistilConfig, distil

TWO_WORKERS = json.dumps({"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker"}})


# ----------------------------------------------------------------------------- choosing
@pytest.mark.parametrize(
    "environ, gpus, kind",
    [
        ({}, 0, "default"),
        ({}, 1, "default"),
        ({}, 2, "mirrored"),
        ({"TF_CONFIG": TWO_WORKERS}, 2, "multiworker"),  # before GPUs
        ({"COLAB_TPU_ADDR": "10.0.0.2:8470", "TF_CONFIG": TWO_WORKERS}, 2, "tpu"),  # first
        ({"TPU_NAME": "my-tpu"}, 0, "tpu"),
    ],
)
def test_auto_plans_tpu_then_workers_then_gpus(environ, gpus, kind):
    plan = distribute.plan_strategy("auto", environ=environ, num_gpus=gpus)
    assert plan.kind == kind
    assert plan.reason.startswith("auto: ")
    if "COLAB_TPU_ADDR" in environ:
        assert plan.tpu == "grpc://10.0.0.2:8470"


def test_plan_strategy_explicit_names_and_errors():
    assert distribute.plan_strategy("default", environ={}).kind == "default"
    assert distribute.plan_strategy("tpu", tpu="local", environ={}).tpu == "local"
    assert distribute.plan_strategy("mirrored", environ={}, num_gpus=0).kind == "mirrored"
    with pytest.raises(ValueError, match="Valid strategies: auto, default, mirrored"):
        distribute.plan_strategy("horovod")
    with pytest.raises(ValueError, match=r"\$TF_CONFIG must be JSON"):
        distribute.plan_strategy("auto", environ={"TF_CONFIG": "{oops"})
    with pytest.raises(ValueError, match="parameter servers"):
        distribute.tf_config_workers({"TF_CONFIG": json.dumps({"cluster": {"ps": ["h:1"]}})})


def test_a_tpu_that_does_not_connect_falls_back_under_auto_only(monkeypatch, caplog):
    def refuse(tpu):
        raise ValueError(f"no TPU at {tpu}")

    monkeypatch.setattr(distribute, "connect_tpu", refuse)
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with caplog.at_level(logging.INFO, logger="kdzoo"):
        choice = distribute.select_strategy("auto")
    assert choice.kind == "default" and choice.num_replicas == 1
    assert "grpc://10.0.0.2:8470 did not connect" in caplog.text
    assert "Strategy: _DefaultDistributionStrategy with 1 replica: auto:" in caplog.text
    with pytest.raises(RuntimeError, match="could not connect to grpc://10.0.0.2:8470"):
        distribute.select_strategy("tpu")


def test_batch_sizes_and_chief_on_one_device():
    strategy = tf.distribute.get_strategy()
    assert distribute.per_replica_batch_size(64, strategy) == 64
    assert distribute.is_chief(strategy) and distribute.num_workers(strategy) == 1
    assert distribute.describe_strategy(strategy) == "_DefaultDistributionStrategy with 1 replica"
    assert distribute.strategy_kind(strategy) == "default"

    class TwoReplicas:
        num_replicas_in_sync = 2

    assert distribute.per_replica_batch_size(64, TwoReplicas()) == 32
    with pytest.raises(ValueError, match="multiple of the 2 replicas"):
        distribute.per_replica_batch_size(63, TwoReplicas())


def test_tfrecords_are_sharded_by_file_other_data_by_data(tmp_path):
    from kdzoo.data.tfrecord import read_tfrecords, write_tfrecords

    policy = tf.data.experimental.AutoShardPolicy
    write_tfrecords({"label": np.arange(8), "x": np.ones((8, 2), "float32")}, tmp_path / "d", 2)
    records = read_tfrecords(tmp_path / "d").batch(4).map(lambda e: e["label"])
    assert distribute.shard_policy(records) == policy.FILE
    arrays = tf.data.Dataset.from_tensor_slices(np.arange(8)).batch(4)
    assert distribute.shard_policy(arrays) == policy.DATA
    sharded = distribute.with_shard_policy(arrays)
    assert sharded.options().experimental_distribute.auto_shard_policy == policy.DATA


def test_keras_compat_applies_to_multiworker_only():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    assert enable_multi_worker_fit(model) is False  # one process: nothing to work around
    check_steps_per_execution(tf.distribute.get_strategy(), 8)
    with pytest.raises(ValueError, match="keras-team/keras#19246"):
        check_steps_per_execution(tf.distribute.MirroredStrategy(["/cpu:0"]), 2)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "epochs must be an integer >= 1"),
        ("steps_per_execution", 0, "steps_per_execution must be an integer >= 1"),
        ("optimizer", "lion", "optimizer must be one of"),
        ("mixed_precision", "float16", "mixed_precision must be one of 'float32'"),
        ("strategy", "horovod", "strategy must be one of 'auto', 'default'"),
        ("seed", "3", "seed must be an integer >= 0"),
        ("jit_compile", "false", "jit_compile must be one of True, False, 'auto'; got 'false'"),
        ("jit_compile", 1, "jit_compile must be one of True, False, 'auto'; got 1"),
        ("verbose", "loud", "verbose must be one of 0, 1, 2, 'auto'"),
        ("verbose", True, "verbose must be one of 0, 1, 2, 'auto'; got True"),
        ("tensorboard", "no", "tensorboard must be one of True, False; got 'no'"),
        ("teacher_overrides", 5, "teacher_overrides must be a dict"),
        ("student_inputs", "text", r"student_inputs must be a tuple of strings.*\('text',\)"),
        ("candidates", "kd", r"candidates must be a tuple of specs, or None; got 'kd' \(one"),
        ("export_name", "a/b", "export_name must be a plain folder name"),
        ("export_name", ".hidden", "export_name must be a plain folder name"),
        ("export_dir", "gs://bucket/models", "export_dir: 'gs://bucket/models' is a URL"),
        ("run_dir", "gs://bucket/run", "run_dir: 'gs://bucket/run' is a URL"),
    ],
)
def test_distil_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        distil(DistilConfig(**{field: value}))


# ------------------------------------------------------------ XLA, steps_per_execution
@pytest.mark.slow
def test_xla_distillation_matches_no_xla():
    """Every per-example loss, sample weights, metrics, 8 SGD steps: jit_compile=True gives
    the weights and reported losses of the plain step (the TPU-readiness check: static
    shapes, no string ops in the step)."""
    initial = fit_parity.initial_weights()
    strategy = tf.distribute.get_strategy()
    plain, plain_logs, _ = fit_parity.run_fit(strategy, initial, jit_compile=False)
    xla, xla_logs, distiller = fit_parity.run_fit(strategy, initial, jit_compile=True)
    assert distiller.jit_compile is True
    start = [np.array(v) for v in fit_parity.build_distiller(initial).trainable_weights]
    assert fit_parity.max_diff(plain, start) > 1e-2  # the steps really moved the weights
    assert fit_parity.max_diff(xla, plain) < 1e-5
    assert xla_logs.keys() == plain_logs.keys()
    for key, values in plain_logs.items():
        assert xla_logs[key] == pytest.approx(values, rel=1e-5, abs=1e-6), key


def test_steps_per_execution_matches_one_step_per_call():
    initial = fit_parity.initial_weights()
    strategy = tf.distribute.get_strategy()
    one, one_logs, _ = fit_parity.run_fit(strategy, initial)
    three, three_logs, distiller = fit_parity.run_fit(strategy, initial, steps_per_execution=3)
    assert distiller.steps_per_execution == 3  # 4 steps per epoch: calls of 3 and 1
    assert fit_parity.max_diff(three, one) < 1e-6
    for key, values in one_logs.items():
        assert three_logs[key] == pytest.approx(values, rel=1e-6, abs=1e-7), key


# Library runs whose float32 rounding stays at rounding level (tests/scripts/fit_parity.py).
EXACT = {
    "num_examples": 200,
    "global_batch_size": 16,
    "teacher_epochs": 1,
    "epochs": 1,
    "candidates": ("ce:0.5,kd:0.5@t=4",),
    "scratch": ("scratch",),
    "teacher_overrides": {"dropout": 0.0},  # XLA draws other random numbers than TF
    "optimizer": "sgd",
    "learning_rate": 0.05,
    "normalize_audio": True,
    "strategy": "default",
    "verbose": 0,
}


@pytest.mark.slow
def test_library_distil_with_xla_and_steps_per_execution_matches_plain():
    plain = distil(DistilConfig(**EXACT, jit_compile=False))
    keras.backend.clear_session()
    fast = distil(DistilConfig(**EXACT, jit_compile=True, steps_per_execution=4))
    assert fast.distiller.jit_compile is True and fast.distiller.steps_per_execution == 4
    diff = fit_parity.max_diff(fast.student.get_weights(), plain.student.get_weights())
    assert diff < 1e-5
    # XLA fuses and reorders float32 arithmetic, and the rounding depends on the CPU's
    # kernels: after a teacher phase and a distillation phase, one validation loss differed
    # by 1.1e-5 relative (2.6e-5 absolute, of 2.31) on an AMD EPYC, against < 1e-5 on an
    # Intel Xeon. A wrong objective or reduction differs by far more (e.g. a loss scaled
    # twice on 2 replicas: a factor 2).
    for phase in ("teacher", "scratch", "ce:0.5,kd:0.5@t=4"):
        for key, values in plain.history[phase].items():
            assert fast.history[phase][key] == pytest.approx(values, rel=5e-5), (phase, key)


# ----------------------------------------------------------------------- mixed precision
TINY = {**EXACT, "teacher_epochs": 0, "optimizer": "adam", "learning_rate": 2e-3}


@pytest.mark.slow
def test_mixed_bfloat16_keeps_logits_losses_and_weights_float32():
    result = distil(DistilConfig(**TINY, mixed_precision="mixed_bfloat16"))
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    student = result.student
    assert result.precision == "mixed_bfloat16"
    assert student.get_layer("audio_block0_conv").compute_dtype == "bfloat16"
    frames, mels = student.inputs[0].shape[1:]
    logits = student({"audio": np.zeros((2, frames, mels), "float32")})
    assert logits.dtype == "float32"
    assert {v.dtype for v in student.weights} == {"float32"}
    losses = result.history["ce:0.5,kd:0.5@t=4"]
    assert all(np.isfinite(v[-1]) for v in losses.values())
    assert result.table["accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_mixed_float16_scales_the_loss():
    result = distil(DistilConfig(**TINY, mixed_precision="mixed_float16"))
    assert isinstance(result.distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    assert result.student.get_layer("audio_block0_conv").compute_dtype == "float16"
    assert all(np.isfinite(v[-1]) for v in result.history["ce:0.5,kd:0.5@t=4"].values())


# ----------------------------------------------------------------------- several replicas
@pytest.mark.slow
def test_mirrored_two_replicas_fit_like_one_device():
    proc = run_python([SCRIPTS / "fit_parity.py"], timeout=400, check=True)
    result = last_json_line(proc.stdout)
    assert result["replicas"] == [1, 2]
    assert result["max_update"] > 1e-2  # the 8 steps really moved the weights
    assert result["max_weight_diff"] < 1e-5, result
    single, mirrored = result["single_logs"], result["mirrored_logs"]
    assert len(single) == len(fit_parity.TERMS) + 3  # every term, loss, 2 metrics
    for key, values in single.items():
        assert len(values) == fit_parity.EPOCHS
        assert mirrored[key] == pytest.approx(values, rel=1e-5, abs=1e-6), key

    library = result["library"]  # kdzoo.recipe.distil on the same two strategies
    assert library["replicas"] == [1, 2]
    assert library["max_student_diff"] < 1e-5, library
    # The teacher's conv kernels before batch norm pick up rounding noise in directions
    # the training batches do not see; its logits stay within 1e-4.
    assert library["max_teacher_logits_diff"] < 1e-4, library
    # The logged losses read those teacher logits (the KD terms), so they agree to the same
    # order: 5e-5 relative. On an AMD EPYC of family 25 (AVX2) val_kd_loss came out 1.2e-5
    # relative apart (0.1112175 against 0.1112188).
    for phase, logs in library["single_history"].items():
        for key, value in logs.items():
            mirrored_value = library["mirrored_history"][phase][key]
            assert mirrored_value == pytest.approx(value, rel=5e-5, abs=1e-6), (phase, key)

    # Keras 3.15 cannot run steps_per_execution > 1 under MirroredStrategy; when this fails,
    # Keras has fixed it: remove kdzoo._keras_compat.check_steps_per_execution.
    assert "You must feed a value for placeholder" in result["keras_steps_per_execution_error"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_distillation(tmp_path):
    """Two worker processes (TF_CONFIG on 127.0.0.1) and one single process, same global
    batch: the same student; only the chief exports; the Keras failures still occur."""
    from kdzoo.data.tfrecord import write_tfrecords

    work, single_work, out = tmp_path / "work", tmp_path / "single", tmp_path / "out"
    for folder in (work, single_work, out):
        folder.mkdir()
    arrays = {"label": np.arange(8), "x": np.zeros((8, 2), "float32")}
    write_tfrecords(arrays, work / "shards", 2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    script = str(SCRIPTS / "multiworker_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script, str(out), str(work)],
            env=python_env(
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    procs.append(
        subprocess.Popen(
            [sys.executable, script, str(out), str(single_work)],
            env=python_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    try:
        errors = [p.communicate(timeout=400)[1] for p in procs]
    finally:
        for p in procs:  # never leave a worker waiting on its peer
            p.kill()
    for p, err in zip(procs, errors, strict=True):
        assert p.returncode == 0, err[-3000:]
    reports = {n: json.loads((out / f"{n}.json").read_text()) for n in ("worker0", "worker1")}
    single = json.loads((out / "single.json").read_text())

    for index, report in enumerate(reports.values()):
        assert report["kind"] == "multiworker" and report["replicas"] == 2
        assert f"task worker:{index}" in report["strategy"]
        assert report["epochs_run"] == {"teacher": [0], "scratch": [0], "ce:0.5,kd:0.5@t=4": [0]}
        # Un-patched Keras 3.15 fails in both places kdzoo._keras_compat works around. When
        # this fails, Keras has fixed or changed it: remove enable_multi_worker_fit.
        build_error, logs_error = report["keras_failures"]
        assert (build_error or "").startswith("Attempt to convert a value (PerReplica:")
        assert "with an unsupported type" in build_error, build_error
        assert "Invalid reduction dimension 0 for input with 0 dimensions" in (logs_error or "")
        # TFRecord shards: each worker reads one whole file.
        assert report["file_shards"]["policy"] == int(tf.data.experimental.AutoShardPolicy.FILE)
    shards = [sorted(r["file_shards"]["labels"]) for r in reports.values()]
    assert sorted(shards) == [[0, 1, 2, 3], [4, 5, 6, 7]]

    chief, other = reports["worker0"], reports["worker1"]
    assert chief["is_chief"] and not other["is_chief"]
    assert chief["export_path"] == str(work / "export" / "audio_student" / "1")
    assert other["export_path"] is None
    assert sorted(os.listdir(work / "export" / "audio_student")) == ["1"]
    assert not (work / "backup").exists()  # removed by the chief once training finished

    arrays = {n: np.load(out / f"{n}.npz") for n in ("worker0", "worker1", "single")}
    for key in arrays["single"].files:
        np.testing.assert_array_equal(arrays["worker0"][key], arrays["worker1"][key])
        np.testing.assert_allclose(
            arrays["worker0"][key], arrays["single"][key], rtol=0, atol=1e-5, err_msg=key
        )
    for phase, logs in single["history"].items():
        for key, value in logs.items():
            # Validation is reduced over two workers' (uneven) shares of the split, in another
            # order than one process sums it: 1e-6 differences on losses near 0.02.
            tolerance = 1e-5 if key.startswith("val_") else 0.0
            assert chief["history"][phase][key] == pytest.approx(value, rel=1e-5, abs=tolerance), (
                phase,
                key,
            )
