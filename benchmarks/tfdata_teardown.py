"""What tf.data's autotuning model costs kdzoo's training: wall time with it on and off.

With the model on (TensorFlow 2.21), deleting an iterator can wait for the model's thread
to wake up (``kdzoo/data/options.py``), and Keras deletes one at each validation pass and
at the end of each ``fit``. kdzoo's pipelines turn the model off;
``KDZOO_TFDATA_AUTOTUNE=1`` turns it back on.

For each workload (a zoo model trained on its real dataset under the recipe's rules,
``kdzoo.zoo_strength.fit``: the recipe's batches, validation after every epoch), one fresh
process per run trains it with the model on or off; the modes alternate, ``--repeats``
times each. The table gives the training seconds (mean ± std), the on/off ratio, the
seconds per run spent below 20% of one core (sampled every 0.25 s from
``/proc/self/stat``: waiting, not computing), and whether the two modes ended with the
same weights. Prints Markdown and writes ``benchmarks/results/tfdata_teardown.md``.

    python benchmarks/tfdata_teardown.py [--repeats 2] [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

#: (name, dataset, family, preset, training examples): one per modality.
WORKLOADS = (
    ("image_cnn student, MNIST", "mnist", "image_cnn", "student", 5000),
    ("audio_crnn student, FSDD", "fsdd", "audio_crnn", "student", None),
    ("text_lstm student, SST-2", "sst2", "text_lstm", "student", 4000),
)
OUT = Path(__file__).resolve().parent / "results" / "tfdata_teardown.md"
_IDLE_SHARE = 0.2  # of one core
_PERIOD = 0.25  # seconds between samples


class _IdleClock:
    """Seconds this process spends below ``_IDLE_SHARE`` of one core, sampled every
    ``_PERIOD`` seconds from ``/proc/self/stat`` (user + system ticks)."""

    def __init__(self):
        self.idle = 0.0
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu_seconds(self) -> float:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    def _run(self):
        last_cpu, last = self._cpu_seconds(), time.monotonic()
        while not self._stop.wait(_PERIOD):
            cpu, now = self._cpu_seconds(), time.monotonic()
            if (cpu - last_cpu) < _IDLE_SHARE * (now - last):
                self.idle += now - last
            last_cpu, last = cpu, now

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _one(workload: int, epochs: int) -> dict:
    """Trains one workload in this process (the mode is in the environment); returns
    seconds, idle seconds, epochs run and a digest of the weights."""
    from kdzoo.determinism import seed_everything
    from kdzoo.results import weights_digest
    from kdzoo.studies import load_dataset
    from kdzoo.zoo_strength import Entry, build, fit

    _, dataset, family, preset, cap = WORKLOADS[workload]
    seed_everything(0)
    data = load_dataset(dataset, train_examples=cap)
    model = build(Entry(f"{family} {preset}", preset, family, preset), data)
    with _IdleClock() as clock:
        run, seconds = fit(model, data, seed=0, epochs=epochs)
    return {"seconds": seconds, "idle": clock.idle, "epochs": run, "weights": weights_digest(model)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--child", type=int, metavar="WORKLOAD", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        from kdzoo.results import print_result

        print_result(_one(args.child, args.epochs))
        return 0

    import pandas as pd

    from kdzoo.data.options import AUTOTUNE_ENV
    from kdzoo.results import Provenance, child_result, markdown_table, mean_std, record_code

    rows = []
    for index, (name, *_rest) in enumerate(WORKLOADS):
        runs = {"on": [], "off": []}
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                env = {**os.environ, AUTOTUNE_ENV: "1" if mode == "on" else "0"}
                argv = [sys.executable, __file__, "--epochs", str(args.epochs)]
                runs[mode].append(child_result([*argv, "--child", str(index)], env=env))
                print(name, mode, runs[mode][-1], flush=True)
        seconds = {m: [r["seconds"] for r in runs[m]] for m in runs}
        idle = {m: [r["idle"] for r in runs[m]] for m in runs}
        digests = {m: {r["weights"] for r in runs[m]} for m in runs}
        ratio = statistics.mean(seconds["on"]) / statistics.mean(seconds["off"])
        rows.append(
            {
                "workload": name,
                "epochs run": "/".join(sorted({str(r["epochs"]) for m in runs for r in runs[m]})),
                "seconds, model on": mean_std(seconds["on"]),
                "seconds, off": mean_std(seconds["off"]),
                "on / off": f"{ratio:.2f}",
                "idle seconds, on": mean_std(idle["on"]),
                "idle seconds, off": mean_std(idle["off"]),
                "same weights": len(digests["on"] | digests["off"]) == 1,
            }
        )
    table = pd.DataFrame(rows)
    command = (
        f"python benchmarks/tfdata_teardown.py --repeats {args.repeats} --epochs {args.epochs}"
    )
    made = Provenance.collect(command, (0,), whole_package=True)  # the runs are child processes
    record_code(OUT.parent, made)
    text = (
        "# tf.data's autotuning model: what it costs kdzoo's training\n\n"
        f"{made.markdown()}\n\n"
        "Each run is a fresh process: seeded, the workload trained under the recipe's rules "
        f"(validation after every epoch, early stopping) for at most {args.epochs} epochs, "
        f"with `{AUTOTUNE_ENV}=1` (tf.data's autotuning model on, TensorFlow's default) or "
        "`0` (off, kdzoo's default); modes alternate. Idle seconds: time the process spent "
        f"below {_IDLE_SHARE:.0%} of one core, sampled every {_PERIOD} s. Same weights: "
        "every run of both modes ended with the same weights, bit for bit.\n\n"
        f"{markdown_table(table)}\n"
    )
    OUT.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
