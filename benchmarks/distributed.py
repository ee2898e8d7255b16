"""Distillation steps/s under each tf.distribute strategy this machine can run.

    python benchmarks/distributed.py [--steps 30] [--batch 64] [--rounds 3] [--out DIR]

Rows: the default strategy (one process, one device); ``MirroredStrategy`` over 2 logical
CPU devices (one process); ``MultiWorkerMirroredStrategy`` with 2 worker processes on
127.0.0.1 (``TF_CONFIG``). Each runs in its own process (logical devices and collectives
are set up at start-up) and trains the README's ``av_to_audio`` Distiller (online teacher)
on the same in-memory global batches of ``--batch`` examples: one warm-up epoch (tracing),
then ``--repeats`` timed epochs of ``--steps`` steps each, of which the best counts. The rows
are measured in turn, ``--rounds`` times, and the median is reported, since on a shared
machine other jobs slow down whichever row runs at the time.

On a 2-core CPU the replicas share the same cores, so no speed-up is possible: the table
measures what each strategy costs over the default one (cross-replica reductions,
synchronised batch norm, per-replica dispatch, and for two workers gRPC collectives and two
processes competing for the cores). On GPUs the same command gives real scaling figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kdzoo.results import Provenance, record_code, script_command

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROWS = (
    ("default", "default strategy, 1 process"),
    ("mirrored", "MirroredStrategy, 2 logical CPUs, 1 process"),
    ("multiworker", "MultiWorkerMirroredStrategy, 2 processes on 127.0.0.1"),
)


def measure(role, steps, batch, repeats):
    """Runs in a child process: ``{"steps_per_s": ..., "replicas": ...}`` (JSON on stdout)."""
    from kdzoo import distribute

    if role == "mirrored":
        distribute.configure_logical_cpus(2)
    strategy = distribute.resolve_strategy(
        {"default": "default", "mirrored": "mirrored", "worker": "multiworker"}[role]
    )
    import keras
    import numpy as np
    import tensorflow as tf

    from kdzoo import models
    from kdzoo._keras_compat import enable_multi_worker_fit
    from kdzoo.data import AudioConfig
    from kdzoo.distillation import Distiller, default_terms

    keras.utils.set_random_seed(0)
    frames, mels = AudioConfig.embedded().feature_shape
    rng = np.random.default_rng(0)
    n = batch * 4
    x = {
        "image": rng.standard_normal((n, 16, 16, 1)).astype("float32"),
        "audio": rng.standard_normal((n, frames, mels)).astype("float32"),
    }
    y = rng.integers(0, 10, n).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    data = distribute.with_shard_policy(data.cache().repeat().prefetch(tf.data.AUTOTUNE))
    with strategy.scope():
        teacher, student = models.build_pair("av_to_audio", 10)
        terms = default_terms(temperature=4.0, ce_weight=0.5, kd_weight=0.5)
        distiller = Distiller(teacher=teacher, student=student, terms=terms)
        distiller.compile(optimizer="adam", metrics=["accuracy"])
    enable_multi_worker_fit(distiller)

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    distiller.fit(data, epochs=1 + repeats, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    best = min(timer.seconds[1:])  # epoch 0 includes tracing
    return {
        "steps_per_s": steps / best,
        "replicas": strategy.num_replicas_in_sync,
        "audio_shape": f"{frames}x{mels}",
    }


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _child(role, args, env):
    cmd = [sys.executable, __file__, "--role", role]
    cmd += ["--steps", str(args.steps), "--batch", str(args.batch), "--repeats", str(args.repeats)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError(f"a benchmark process ran past {timeout} s") from None
    if proc.returncode:
        raise RuntimeError(f"a benchmark process failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_round(args):
    """One measurement of each row, each in its own process(es)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    results = {}
    for role in ("default", "mirrored"):
        results[role] = _result(_child(role, args, env), args.timeout)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    workers = []
    try:
        for i in range(2):
            task = {"cluster": cluster, "task": {"type": "worker", "index": i}}
            workers.append(_child("worker", args, {**env, "TF_CONFIG": json.dumps(task)}))
        results["multiworker"] = [_result(w, args.timeout) for w in workers][0]
    finally:
        for w in workers:
            w.kill()
    return results


def table(rounds, args):
    """Median steps/s over the rounds (min-max in brackets); overhead from the medians."""
    first = rounds[0]
    median = {k: statistics.median(r[k]["steps_per_s"] for r in rounds) for k, _ in ROWS}
    lines = [
        f"Distiller (av_to_audio pair, online teacher; image 16x16x1 + log-mel "
        f"{first['default']['audio_shape']}), global batch {args.batch}; per row the median "
        f"of {len(rounds)} rounds (min-max), each the best of {args.repeats} epochs of "
        f"{args.steps} steps; {os.cpu_count()} CPU cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        "| strategy | replicas | steps/s | examples/s | time per step vs default |",
        "|---|---|---|---|---|",
    ]
    for key, label in ROWS:
        values = [r[key]["steps_per_s"] for r in rounds]
        spread = f" ({min(values):.1f}-{max(values):.1f})" if len(values) > 1 else ""
        overhead = median["default"] / median[key] - 1
        lines.append(
            f"| {label} | {first[key]['replicas']} | {median[key]:.1f}{spread} | "
            f"{median[key] * args.batch:.0f} | "
            f"{'(reference)' if key == 'default' else f'{overhead:+.0%}'} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per epoch")
    parser.add_argument("--batch", type=int, default=64, help="global batch size")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs (best is kept)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the rows (median)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per process")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        print(json.dumps(measure(args.role, args.steps, args.batch, args.repeats)))
        return 0
    text = table([run_round(args) for _ in range(args.rounds)], args)
    made = Provenance.collect(script_command(), whole_package=True)  # child processes
    text = f"# tf.distribute strategies on this machine\n\n{made.markdown()}\n\n{text}"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record_code(out, made)
    (out / "distributed.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
