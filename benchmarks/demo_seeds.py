"""Distilled-minus-scratch accuracy of the embedded demo over several seeds.

    python benchmarks/demo_seeds.py [--seeds 0 1 2]

Runs `kdzoo demo`'s job (defaults of DemoConfig, test split) once per seed and prints each
seed's table row plus the mean and sample standard deviation of the gain; writes
benchmarks/results/demo_seeds.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pandas as pd  # noqa: E402

from kdzoo.demo import DemoConfig, run_demo  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        keras.backend.clear_session()
        result = run_demo(DemoConfig(seed=seed, export_dir=None, verbose=0))
        acc = result.table.set_index("model")["accuracy"]
        rows.append(
            {
                "seed": seed,
                "teacher": acc["teacher"],
                "scratch": acc["student (scratch)"],
                "distilled": acc["student (distilled)"],
                "gain": result.gain,
            }
        )
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    gains = table["gain"].tolist()
    std = statistics.stdev(gains) if len(gains) > 1 else 0.0
    summary = f"distilled - scratch: mean {statistics.mean(gains):+.3f}, std {std:.3f}"
    text = table.to_string(index=False, float_format="{:.3f}".format) + "\n" + summary
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo_seeds.md").write_text(f"{_provenance()}\n\n```\n{text}\n```\n")


def _provenance() -> str:
    def git(*a):
        return subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " (dirty tree)" if git("status", "--porcelain", "--", "kdzoo") else ""
    command = " ".join(["python", "benchmarks/demo_seeds.py", *sys.argv[1:]])
    return f"Command: `{command}`; commit {commit}{dirty}; {date.today()}; {os.cpu_count()} cores."


if __name__ == "__main__":
    main()
