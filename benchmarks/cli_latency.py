"""Wall time of the ``kdzoo`` commands that must answer at once: ``--help``, each
subcommand's ``--help``, ``--version`` and usage errors (none of them may import
TensorFlow).

Each command runs ``--repeats`` times as a fresh process (``.venv/bin/kdzoo`` or the
``kdzoo`` on PATH); the table gives mean ± std and the maximum, in seconds. Goal: every
maximum under 1.5 s. Prints Markdown and writes benchmarks/results/cli_latency.md.

    python benchmarks/cli_latency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kdzoo.results import Provenance, record_code, script_command

COMMANDS = [
    ["--help"],
    ["demo", "--help"],
    ["distil", "--help"],
    ["bench", "--help"],
    ["export", "--help"],
    ["check-export", "--help"],
    ["distil", "--epochs", "-1"],
    ["distil", "--candidate", "kdd"],
    ["distil", "--learning-rate", "nan"],
    ["demo", "--num-examples", "0"],
    ["--version"],
    ["distil", "--foo"],
    ["distil", "--dataset", "nosuch"],
    ["distil", "--tensorboard"],
    ["demo", "--no-export", "--export-dir", "x"],
]
GOAL_S = 1.5


def _exit_code(argv) -> int:
    """0 for ``--help`` and ``--version``, 2 (a usage error) for the others."""
    return 0 if {"--help", "--version"} & set(argv) else 2


def _executable():
    local = Path(sys.executable).parent / "kdzoo"
    return str(local) if local.exists() else shutil.which("kdzoo")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cli_latency.md"))
    args = parser.parse_args()
    exe = _executable()
    rows = []
    for argv in COMMANDS:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            proc = subprocess.run([exe, *argv], capture_output=True, text=True)
            times.append(time.perf_counter() - start)
        expected = _exit_code(argv)
        if proc.returncode != expected:
            raise SystemExit(f"kdzoo {' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
        rows.append((argv, statistics.mean(times), statistics.pstdev(times), max(times)))
    # The commands run in child processes: every kdzoo file counts.
    made = Provenance.collect(script_command(), whole_package=True)
    record_code(Path(args.out).parent, made)
    lines = [
        "# `kdzoo` CLI latency (fresh process per call)",
        "",
        made.markdown(),
        "",
        "| command | exit | mean ± std (s) | max (s) | under 1.5 s |",
        "|---|---|---|---|---|",
    ]
    for argv, mean, std, worst in rows:
        code = _exit_code(argv)
        ok = "yes" if worst < GOAL_S else "**no**"
        lines.append(
            f"| `kdzoo {' '.join(argv)}` | {code} | {mean:.3f} ± {std:.3f} | {worst:.3f} | {ok} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
