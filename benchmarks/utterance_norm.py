"""Per-utterance normalisation of the log-mel (``AudioConfig.utterance_norm``), on
validation only: how the default (``"auto"``) was chosen.

For each setting and mode, the scratch audio student (``audio_crnn/student``) trains under
the recipe's rules (``DEFAULTS``: Adam, plateau halving and early stopping on validation
accuracy, best epoch kept) and reports its best validation accuracy. No test split is
loaded. Settings: AV digits' unseen-voice protocol (test ``george`` held out, validation
``jackson`` + ``lucas``, as the default-recipe studies) and FSDD's official split
(validation: 10% of the training voices' clips). Writes
``benchmarks/results/utterance_norm.md``.

    python benchmarks/utterance_norm.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pandas as pd  # noqa: E402

from kdzoo import datasets, models  # noqa: E402
from kdzoo.data import for_model  # noqa: E402
from kdzoo.defaults import DEFAULTS  # noqa: E402
from kdzoo.determinism import seed_everything  # noqa: E402
from kdzoo.recipe.callbacks import PlateauSchedule, ValidationStopping  # noqa: E402
from kdzoo.results import Provenance, markdown_table, record_code, script_command  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SETTINGS = {
    "av_digits, unseen voices": (
        "av_digits",
        {"fsdd_split": "speaker:george", "validation_speaker": ("jackson", "lucas")},
        ("none", "mean", "mean_var"),
    ),
    "fsdd, official split (training voices)": (
        "fsdd",
        {"validation_fraction": 0.1},
        ("none", "mean_var"),
    ),
}


def best_validation_accuracy(name, load, mode, seed) -> tuple[float, int]:
    """The scratch student's best validation accuracy and its epochs run."""
    seed_everything(seed)
    data = datasets.load(
        name,
        seed=seed,
        modalities=("audio",),
        utterance_norm=mode,
        split=["train", "validation"],
        **load,
    )
    keras.backend.clear_session()
    student = models.build(
        "audio_crnn", "student", num_classes=10, audio_shape=data.audio_config.feature_shape
    )
    student.compile(
        keras.optimizers.Adam(DEFAULTS.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = student.fit(
        for_model(data.splits["train"], student),
        validation_data=for_model(data.splits["validation"], student),
        epochs=DEFAULTS.epochs,
        callbacks=[
            ValidationStopping(DEFAULTS.patience),
            PlateauSchedule(DEFAULTS.plateau_patience, DEFAULTS.plateau_factor),
        ],
        verbose=0,
    )
    accuracy = history.history["val_accuracy"]
    return max(accuracy), len(accuracy)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    for setting, (name, load, modes) in SETTINGS.items():
        for mode in modes:
            for seed in args.seeds:
                accuracy, epochs = best_validation_accuracy(name, load, mode, seed)
                rows.append(
                    {
                        "setting": setting,
                        "utterance_norm": mode,
                        "seed": seed,
                        "validation_accuracy": accuracy,
                        "epochs": epochs,
                    }
                )
                print(rows[-1], flush=True)
    per_seed = pd.DataFrame(rows)
    summary = (
        per_seed.groupby(["setting", "utterance_norm"], sort=False)["validation_accuracy"]
        .agg(["mean", "std", "count"])
        .round(4)
        .reset_index()
    )
    made = Provenance.collect(script_command(), args.seeds)
    RESULTS.mkdir(exist_ok=True)
    record_code(RESULTS, made)
    (RESULTS / "utterance_norm.md").write_text(
        "# Per-utterance normalisation of the log-mel: the scratch audio student on "
        f"validation\n\n{made.markdown()}\n\n"
        "Best validation accuracy (no test split is loaded), mean ± std over seeds:\n\n"
        f"{markdown_table(summary)}\n\nPer seed:\n\n{markdown_table(per_seed.round(4))}\n",
        encoding="utf-8",
    )
    print(markdown_table(summary))


if __name__ == "__main__":
    main()
