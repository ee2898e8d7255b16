"""Privileged-information distillation (``kdzoo bench privileged``).

Teacher and student see the *same* example, the student at lower quality: the teacher knows
something about this example that the student's view blurs, as on an edge device with a
cheaper sensor (Lopez-Paz et al. 2016, "Unifying distillation and privileged information").
Each pairing wraps the zoo's student preset behind fixed degradation layers (plain Keras
layers, no weights, saved with the student), so the student reads the same batch key as
the teacher but only ever sees the degraded view:

- ``mnist-thumbnail``: 28×28 MNIST digits averaged to a 7×7 thumbnail (4×4 average
  pooling), then enlarged back (nearest neighbour) for the ``image_cnn`` student; teacher:
  ``image_cnn/teacher`` on the full images. The training split is capped at a seeded 10,000
  images, as in the MNIST study.
- ``fsdd-lowpass``: FSDD spoken digits with only the log-mel bins below 1 kHz (the lowest
  15 of 32 at 8 kHz; the rest zeroed), for the ``audio_crnn`` student; teacher:
  ``audio_crnn/teacher`` on every bin. Official split.
- ``mnist-thumbnail-50`` and ``fsdd-lowpass-50``: the same views with 50 labelled examples
  per class (500 in all, a seeded stratified subset of the training split, the same for
  every seed), of which a stratified 20% is held out for validation, as in the demo. That
  is Lopez-Paz et al.'s MNIST protocol (a 7×7 student and a 28×28 teacher on a few hundred
  examples): privileged information is worth most when labels are few, where the student's
  view alone generalises worst (Vapnik & Izmailov 2015). Teacher and student learn from the
  same examples; there is no unlabelled transfer set.

Per seed the recipe (``kdzoo.recipe.run``, untouched defaults) trains the teacher once (the
first seed's run) and reports the tuned scratch student and the recipe's student, both on
the degraded view. Goal G4: on one image and one audio pairing, distilled − scratch ≥ 2
points.
"""

from __future__ import annotations

import dataclasses
import functools

import pandas as pd

from kdzoo.defaults import DEFAULTS
from kdzoo.results import bench_command, model_kind

NAME = "privileged"
GOAL_POINTS = 2.0


@dataclasses.dataclass(frozen=True)
class Pairing:
    """A dataset, the teacher and student presets, and how the student's view is degraded."""

    name: str
    dataset: str
    family: str
    modality: str
    degradation: str
    train_examples: int | None = None
    labels_per_class: int | None = None
    unlabelled: bool = False


PAIRINGS = {
    p.name: p
    for p in (
        Pairing("mnist-thumbnail", "mnist", "image_cnn", "image", "7×7 thumbnail", 10000),
        Pairing("fsdd-lowpass", "fsdd", "audio_crnn", "audio", "log-mel bins below 1 kHz"),
        Pairing("mnist-thumbnail-50", "mnist", "image_cnn", "image", "7×7 thumbnail", None, 50),
        Pairing(
            "fsdd-lowpass-50", "fsdd", "audio_crnn", "audio", "log-mel bins below 1 kHz", None, 50
        ),
        # The same 50 labels per class, and every other training example without its label:
        # the teacher labels it from the full view, the student learns it from the degraded.
        Pairing(
            "mnist-thumbnail-50-unlabelled", "mnist", "image_cnn", "image", "7×7 thumbnail",
            None, 50, unlabelled=True,
        ),
        Pairing(
            "fsdd-lowpass-50-unlabelled", "fsdd", "audio_crnn", "audio",
            "log-mel bins below 1 kHz", None, 50, unlabelled=True,
        ),
    )
}  # fmt: skip
#: ``fsdd-lowpass``: log-mel bins kept (of 32, 0 to 4 kHz on the mel scale: mel(1 kHz) is
#: 1000 of mel(4 kHz) = 2146, so 15 bins).
LOWPASS_BINS = 15
#: With few labels, the share of each class's labelled examples held out for validation
#: (``kdzoo.demo.SCARCE_VALIDATION_FRACTION``).
FEW_LABELS_VALIDATION_FRACTION = 0.2


def few_labels(data, labels_per_class, seed=0, unlabelled=False):
    """``data`` with only ``labels_per_class`` seeded training examples of each class
    (``kdzoo.datasets.scarce_labels``), a stratified ``FEW_LABELS_VALIDATION_FRACTION`` of
    them held out for validation in place of the dataset's own validation split. The other
    training examples are dropped, or, with ``unlabelled``, kept without their labels as the
    transfer split (which the recipe's distillation candidates learn from through the
    teacher; the teacher and scratch never see them). The test split is unchanged. The
    preprocessing (e.g. audio normalisation statistics) stays the one fitted on the whole
    training split: its inputs, never its labels."""
    import dataclasses as dc

    from kdzoo import datasets
    from kdzoo.recipe.selection import with_validation

    scarce = datasets.scarce_labels(data, labels_per_class, seed=seed)
    drop = ("validation",) if unlabelled else ("validation", datasets.TRANSFER)
    copy = dc.replace(scarce, arrays={s: a for s, a in scarce.arrays.items() if s not in drop})
    copy.splits = {s: p for s, p in scarce.splits.items() if s not in drop}
    copy.num_examples = {s: n for s, n in scarce.num_examples.items() if s not in drop}
    return with_validation(copy, fraction=FEW_LABELS_VALIDATION_FRACTION, seed=seed)


@dataclasses.dataclass
class PrivilegedConfig:
    """Settings of the study.

    Attributes:
        pairings: names from ``PAIRINGS``.
        seeds: student seeds.
        teacher_epochs, epochs: the recipe's epoch budgets.
        out_dir: where ``privileged.csv`` / ``.md`` / ``.png`` go; None writes nothing.
        tiny: the test suite's smoke size: 96 examples per split, the first distillation
            candidate and one scratch try.
        verbose: Keras ``fit`` verbosity.
    """

    pairings: tuple = tuple(PAIRINGS)
    seeds: tuple = (0, 1, 2)
    teacher_epochs: int = DEFAULTS.teacher_epochs
    epochs: int = DEFAULTS.epochs
    out_dir: str | None = "benchmarks/results"
    tiny: bool = False
    verbose: int = 0


def command(config: PrivilegedConfig) -> str:
    """The ``kdzoo bench privileged`` command that runs ``config``."""
    pairings = tuple(config.pairings)
    return bench_command(
        NAME, config, *(["--datasets", *pairings] if pairings != tuple(PAIRINGS) else [])
    )


def degraded_student(pairing: Pairing, data):
    """The zoo student preset of ``pairing`` behind its degradation layers: a functional
    model reading the same key and shape as the teacher."""
    import keras

    from kdzoo import models
    from kdzoo.distribute import float32_outputs

    shapes = data.model_shapes()
    shape = shapes[f"{pairing.modality}_shape"]
    body = models.build(pairing.family, "student", data.num_classes, **{
        f"{pairing.modality}_shape": shape
    })  # fmt: skip
    inputs = keras.Input(shape, name=pairing.modality)
    if pairing.modality == "image":
        x = keras.layers.AveragePooling2D(4, name="thumbnail")(inputs)
        x = keras.layers.UpSampling2D(4, name="enlarge")(x)
    else:  # [frames, mels]: zero every mel bin above LOWPASS_BINS
        cut = shape[-1] - LOWPASS_BINS
        x = keras.layers.Permute((2, 1), name="mels_first")(inputs)
        x = keras.layers.Cropping1D((0, cut), name="lowpass")(x)
        x = keras.layers.ZeroPadding1D((0, cut), name="zero_high_bins")(x)
        x = keras.layers.Permute((2, 1), name="frames_first")(x)
    # Dict inputs, as every zoo model has: no structure warning when a batch dict comes in.
    model = keras.Model(
        {pairing.modality: inputs},
        body({pairing.modality: x}),
        name=f"{pairing.family}_student_{pairing.name.replace('-', '_')}",
    )
    return float32_outputs(model)


def run(config: PrivilegedConfig | None = None):
    """Runs the pairings; returns ``(per_seed, summary)`` and, with ``config.out_dir``,
    writes ``privileged.csv``, ``.md`` and ``.png`` (test accuracy per pairing and model)."""
    from kdzoo.determinism import seed_everything
    from kdzoo.recipe.selection import RECIPE, SCRATCH, TEACHER
    from kdzoo.recipe.selection import run as recipe
    from kdzoo.results import study_figure, table_row, write_study
    from kdzoo.studies import _build, load_dataset

    config = config or PrivilegedConfig()
    unknown = sorted(set(config.pairings) - set(PAIRINGS))
    if unknown:
        raise ValueError(f"Unknown pairing(s) {unknown}. Valid: {', '.join(PAIRINGS)}.")
    rows = []
    for name in config.pairings:
        pairing = PAIRINGS[name]
        inputs = (pairing.modality,)
        data = load_dataset(pairing.dataset, None, inputs, pairing.train_examples, config.tiny)
        # Labelled examples per class (validation included); None: the whole training split.
        k = pairing.labels_per_class and (5 if config.tiny else pairing.labels_per_class)
        if k:
            data = few_labels(data, k, unlabelled=pairing.unlabelled)
        seed_everything(config.seeds[0])
        teacher = _build((pairing.family, "teacher"), data, inputs)
        n_train = data.num_examples["train"]
        for seed in config.seeds:
            first = seed == config.seeds[0]
            seed_everything(seed)
            student = degraded_student(pairing, data)
            result = recipe(
                teacher,
                student,
                data,
                teacher_epochs=config.teacher_epochs if first else 0,
                epochs=config.epochs,
                seed=seed,
                batch_size=min(DEFAULTS.batch_size, n_train),
                teacher_inputs=inputs,
                student_inputs=inputs,
                verbose=config.verbose,
                candidates=DEFAULTS.candidates[:1] if config.tiny else None,
            )
            table = result.table.set_index("model")
            # Names tell an unlabelled pairing's rows from its labelled twin's (the rows a
            # rerun is matched on share a dataset and a label count).
            rest = "; the other examples unlabelled" if pairing.unlabelled else ""
            found = [
                (f"scratch (degraded view{rest})", SCRATCH),
                (f"distilled (degraded view, the recipe's choice{rest})", RECIPE),
            ]
            if first:
                found.insert(0, (f"teacher (full view{rest})", TEACHER))
            for model, which in found:
                chose = result.selection if which == RECIPE else None
                examples = _examples(result, table.at[which, "setting"]) if chose else n_train
                row = table_row(model, k, seed, table, which, examples, pairing.dataset, chose)
                rows.append({"pairing": name, "degradation": pairing.degradation, **row})
            print(
                f"{name} seed {seed}: scratch {rows[-2]['test_accuracy']:.4f}, distilled "
                f"{rows[-1]['test_accuracy']:.4f} ({rows[-1]['setting']})",
                flush=True,
            )
    figure = functools.partial(study_figure, group="pairing")
    per_seed = write_study(
        config.out_dir, NAME, rows, command(config), config.seeds, markdown, figure
    )
    return per_seed, summarize(per_seed)


def _examples(result, setting) -> int:
    """Training examples per epoch of the recipe's student ``setting`` (a distillation
    candidate also learns from the transfer split)."""
    tried = result.candidates
    return int(tried.loc[tried["setting"] == setting, "train_examples"].max())


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of test accuracy per pairing and kind of model."""
    frame = per_seed.assign(kind=per_seed["model"].map(model_kind))
    out = (
        frame.groupby(["pairing", "kind"], sort=False)["test_accuracy"]
        .agg(["mean", "std", "count"])
        .reset_index()
    )
    out["std"] = out["std"].fillna(0.0)
    return out


def goals(summary: pd.DataFrame) -> pd.DataFrame:
    """G4 per pairing: distilled − scratch in points (means over seeds), and whether it is
    at least ``GOAL_POINTS``."""
    rows = []
    for pairing, group in summary.groupby("pairing", sort=False):
        mean = group.set_index("kind")["mean"]
        gap = 100 * (mean.get("distilled") - mean.get("scratch"))
        rows.append({"pairing": pairing, "gap_points": gap, "met": bool(gap >= GOAL_POINTS)})
    return pd.DataFrame(rows)


def markdown(per_seed: pd.DataFrame) -> str:
    from kdzoo.results import choices_markdown, markdown_table, runs_markdown

    summary = summarize(per_seed)
    checked = goals(summary).set_index("pairing")
    lines = [
        "# Privileged information: the teacher sees the full view, the student a degraded one",
        "",
        runs_markdown(per_seed, "pairing"),
        "",
        "Test accuracy, mean ± std over seeds; the scratch and distilled students see only the "
        "degraded view (their first layers degrade it), the teacher the full view.",
        "",
    ]
    table = []
    for pairing, group in summary.groupby("pairing", sort=False):
        scores = {
            k: f"{m:.4f} ± {s:.4f}"
            for k, m, s in zip(group["kind"], group["mean"], group["std"], strict=True)
        }
        table.append(
            {
                "pairing": pairing,
                "degradation": per_seed[per_seed["pairing"] == pairing]["degradation"].iloc[0],
                "teacher (full view)": scores.get("teacher", "–"),
                "scratch": scores.get("scratch", "–"),
                "distilled": scores.get("distilled", "–"),
                "distilled − scratch": f"{checked.at[pairing, 'gap_points']:+.1f} points",
            }
        )
    lines += [markdown_table(pd.DataFrame(table)), "", "## Goal G4", ""]
    for pairing, row in checked.iterrows():
        lines.append(
            f"- {pairing}: distilled − scratch ≥ {GOAL_POINTS:.0f} points: "
            f"{row['gap_points']:+.1f} points, " + ("met." if row["met"] else "**not met**.")
        )
    return "\n".join([*lines, "", choices_markdown(per_seed, ("pairing",))])
