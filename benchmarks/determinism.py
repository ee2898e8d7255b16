"""What TensorFlow's op determinism costs, and what it buys, on kdzoo's own training.

For each workload (a zoo teacher trained on its real dataset for a fixed number of epochs
under the recipe's rules), one fresh process per run trains it with op determinism on or
off; the modes alternate, ``--repeats`` times each. The table gives the training seconds
(mean ± std), the on/off ratio, and whether every run of a mode ended with bit-identical
weights. Prints Markdown and writes ``benchmarks/results/determinism.md``.

    python benchmarks/determinism.py [--repeats 2] [--epochs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

#: (name, dataset, family, training examples): one per modality.
WORKLOADS = (
    ("image_cnn teacher, MNIST", "mnist", "image_cnn", 5000),
    ("audio_crnn teacher, FSDD", "fsdd", "audio_crnn", None),
    ("text_lstm teacher, SST-2", "sst2", "text_lstm", 4000),
)
OUT = Path(__file__).resolve().parent / "results" / "determinism.md"


def _one(workload: int, mode: str, epochs: int) -> dict:
    """Trains one workload in this process; returns seconds and a digest of the weights."""
    from kdzoo.determinism import seed_everything
    from kdzoo.results import weights_digest
    from kdzoo.studies import load_dataset
    from kdzoo.zoo_strength import Entry, build, fit

    _, dataset, family, cap = WORKLOADS[workload]
    seed_everything(0, op_determinism=mode == "on")
    data = load_dataset(dataset, train_examples=cap)
    model = build(Entry(f"{family} teacher", "teacher", family, "teacher"), data)
    _, seconds = fit(model, data, seed=0, epochs=epochs)
    return {"seconds": seconds, "weights": weights_digest(model)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        from kdzoo.results import print_result

        print_result(_one(int(args.child[0]), args.child[1], args.epochs))
        return 0

    import pandas as pd

    from kdzoo.results import Provenance, child_result, markdown_table, mean_std, record_code

    rows = []
    for index, (name, *_rest) in enumerate(WORKLOADS):
        runs = {"on": [], "off": []}
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                argv = [sys.executable, __file__, "--epochs", str(args.epochs)]
                runs[mode].append(child_result([*argv, "--child", str(index), mode]))
                print(name, mode, runs[mode][-1], flush=True)
        seconds = {m: [r["seconds"] for r in runs[m]] for m in runs}
        ratio = statistics.mean(seconds["on"]) / statistics.mean(seconds["off"])

        rows.append(
            {
                "workload": name,
                "epochs": args.epochs,
                "seconds, op determinism on": mean_std(seconds["on"]),
                "seconds, off": mean_std(seconds["off"]),
                "on / off": f"{ratio:.2f}",
                "identical weights, on": len({r["weights"] for r in runs["on"]}) == 1,
                "identical weights, off": len({r["weights"] for r in runs["off"]}) == 1,
            }
        )
    table = pd.DataFrame(rows)
    command = f"python benchmarks/determinism.py --repeats {args.repeats} --epochs {args.epochs}"
    made = Provenance.collect(command, (0,), whole_package=True)  # the runs are child processes
    record_code(OUT.parent, made)
    text = (
        "# Op determinism: cost and effect\n\n"
        f"{made.markdown()}\n\n"
        "Each run is a fresh process: seeded (`keras.utils.set_random_seed(0)`), the workload "
        "trained for a fixed number of epochs under the recipe's rules, modes alternating. "
        '"Identical weights": every run of that mode ended with the same weights, bit for '
        "bit.\n\n"
        f"{markdown_table(table)}\n"
    )
    OUT.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
