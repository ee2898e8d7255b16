"""The ``kdzoo`` command line: argparse subcommands that call library functions."""

from __future__ import annotations

import argparse
import os
import sys


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def cmd_list(args) -> int:
    import pandas as pd

    from kdzoo import models

    rows = []
    for name in models.list_models():
        spec = models.get_spec(name)
        row = {"model": name, "inputs": "+".join(spec.modalities)}
        for preset in spec.presets:
            row[f"{preset}_params"] = models.build(name, preset).count_params()
        row["description"] = spec.description
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))
    print()
    pairs = []
    for name in models.list_pairs():
        pair = models.registry.get_pair(name)
        pairs.append(
            {
                "pair": name,
                "teacher": "/".join(pair.teacher),
                "student": "/".join(pair.student),
                "description": pair.description,
            }
        )
    print(pd.DataFrame(pairs).to_string(index=False))
    return 0


def cmd_demo(args) -> int:
    from kdzoo.demo import DemoConfig, format_table, run_demo

    # Options left unset keep DemoConfig's defaults, so they are defined in one place.
    given = {
        "dataset": args.dataset,
        "num_examples": args.num_examples,
        "teacher_epochs": args.teacher_epochs,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "export_dir": args.export_dir,
    }
    config = DemoConfig(**{k: v for k, v in given.items() if v is not None})
    if args.no_export:
        config.export_dir = None
    if args.quiet:
        config.verbose = 2
    result = run_demo(config)
    print()
    print(format_table(result.table))
    print(f"\ndistilled - scratch accuracy: {result.gain:+.3f}")
    if result.export_path:
        print(f"distilled student exported to {result.export_path}")
    return 0


def cmd_bench(args) -> int:
    from kdzoo.studies import StudyConfig, markdown_table, run_study

    given = {
        "seeds": tuple(args.seeds) if args.seeds else None,
        "teacher_epochs": args.teacher_epochs,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "out_dir": args.out_dir,
    }
    config = StudyConfig(**{k: v for k, v in given.items() if v is not None})
    config.tiny = args.tiny
    config.robustness = not args.no_robustness
    _, summary, notes = run_study(args.study, config)
    print(markdown_table(summary))
    for key, value in notes.items():
        print(f"{key}: {value}")
    if config.out_dir:
        print(f"\nwritten: {config.out_dir}/{args.study}.csv and .md")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdzoo", description="Multimodal knowledge distillation for Keras."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list the model zoo's families, presets and pairs")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "demo",
        help="cross-modal demo on the embedded dataset: teacher, scratch and distilled student",
    )
    p.add_argument(
        "--dataset",
        choices=("embedded", "av_digits"),
        help="embedded (generated, default) or av_digits (FSDD + MNIST from $KDZOO_DATA_DIR)",
    )
    p.add_argument("--seed", type=int, help="data, initialisation and shuffling seed (0)")
    p.add_argument("--num-examples", type=int, help="examples generated, embedded only (5000)")
    p.add_argument("--teacher-epochs", type=int, help="teacher epochs (15)")
    p.add_argument("--epochs", type=int, help="student epochs, scratch and distilled (15)")
    p.add_argument("--batch-size", type=int, help="batch size (64)")
    p.add_argument("--export-dir", help="where the student is exported (saved_models)")
    p.add_argument("--no-export", action="store_true", help="do not export the student")
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bars")
    p.set_defaults(func=cmd_demo)

    from kdzoo.studies import STUDIES  # light: no TensorFlow work at import

    p = sub.add_parser(
        "bench",
        help="a benchmark study on real data (mean ± std over seeds); writes CSV + Markdown",
    )
    p.add_argument("study", choices=STUDIES)
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (0 1 2)")
    p.add_argument("--teacher-epochs", type=int, help="teacher epochs (15)")
    p.add_argument("--epochs", type=int, help="student epochs (15)")
    p.add_argument("--batch-size", type=int, help="batch size (64)")
    p.add_argument("--out-dir", help="where the CSV and Markdown go (benchmarks/results)")
    p.add_argument("--tiny", action="store_true", help="smoke size: 96 examples per split")
    p.add_argument("--no-robustness", action="store_true", help="skip the robustness columns")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_tensorflow()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
