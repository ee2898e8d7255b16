"""Consistent mixup as a transfer set (``kdzoo bench function-matching``).

Function matching (Beyer et al., "Knowledge distillation: A good teacher is patient and
consistent", CVPR 2022): the student learns to match the teacher's *function*, so it should
also match it between training examples, on views the teacher sees exactly as the student
does. Mixup (``kdzoo.data.mixup.mix_batches``) makes such views from the labelled examples
alone, so it is a transfer set for data that has no unlabelled examples.

This study measures it where kdzoo's recipe finds no gain from distillation: the privileged
pairings with 50 labels per class and nothing else (``kdzoo.privileged``'s
``mnist-thumbnail-50`` and ``fsdd-lowpass-50``: a full-view teacher, a degraded-view
student, 400 training and 100 validation examples). Per pairing and seed:

1. The recipe, exactly as ``kdzoo bench privileged`` runs it (``kdzoo.recipe.run``,
   untouched defaults; the teacher trained in the first seed's run): the teacher, the tuned
   scratch student (its tries) and the recipe's student (its distillation candidates and
   the one-standard-error rule).
2. The same distillation candidates again, each from the same initial weights, with the same
   epoch budget, batches (the recipe's per-epoch order, ``epoch_batches``), learning rate
   and validation-driven stopping, but on batches mixed by ``mix_batches`` (``alpha``,
   ``rate``; fresh draws in every batch of every epoch) with the teacher run online on the
   mixed view. A mixed row has no label: only the teacher terms train on it; an unmixed row
   keeps its label terms too. The student's degradation layers degrade the mixed input, so
   teacher and student see the same example, each at its own quality (the thumbnail of a
   mixture is the mixture of the thumbnails: the degradations are linear).
3. The recipe's rule on the mixup candidates: the best on validation, shipped only if it
   beats the tuned scratch student on validation by more than ``DEFAULTS.distil_margin_se``
   paired standard errors (``kdzoo.recipe.selection.decide``); otherwise scratch.

Step 3 tries as many settings as step 1's distillation (the recipe's candidates), against the
same tuned scratch student, so the two distilled rows are comparable. ``alpha = 1`` (mixing
weights uniform on [0, 1], the usual mixup setting) and ``rate = 0.5`` (half of each batch
mixed, so the labels still train half the rows) are fixed priors, not tuned. Test accuracy
is reported and never used to choose.
"""

from __future__ import annotations

import dataclasses
import functools

import pandas as pd

from kdzoo.defaults import DEFAULTS
from kdzoo.results import bench_command, model_kind

NAME = "function-matching"
#: The pairings of ``kdzoo.privileged.PAIRINGS`` measured: labels only, no transfer set.
PAIRING_NAMES = ("mnist-thumbnail-50", "fsdd-lowpass-50")
#: The kinds of row, in a model name (``model_kind``): the mixup rows before "distilled".
KINDS = ("teacher", "scratch", "mixup", "distilled")
MIXUP_MODEL = "distilled with mixup (degraded view, the recipe's rule)"
#: The ``role`` of a row: a model a reader compares (the teacher, scratch, the students
#: chosen), or one distillation candidate on labelled or on mixed batches.
STUDENT, CANDIDATE = "student", "candidate"


@dataclasses.dataclass
class FunctionMatchingConfig:
    """Settings of the study.

    Attributes:
        pairings: names from ``PAIRING_NAMES``.
        seeds: student seeds.
        teacher_epochs, epochs: the recipe's epoch budgets (the mixup candidates get
            ``epochs`` too).
        alpha, rate: ``mix_batches``' Beta parameter and fraction of rows mixed.
        out_dir: where ``function-matching.csv`` / ``.md`` / ``.png`` go; None writes
            nothing.
        tiny: the test suite's smoke size: 5 labels per class, 96 test rows, the first
            distillation candidate and one scratch try.
        verbose: Keras ``fit`` verbosity.
    """

    pairings: tuple = PAIRING_NAMES
    seeds: tuple = (0, 1, 2)
    teacher_epochs: int = DEFAULTS.teacher_epochs
    epochs: int = DEFAULTS.epochs
    alpha: float = 1.0
    rate: float = 0.5
    out_dir: str | None = "benchmarks/results"
    tiny: bool = False
    verbose: int = 0


def command(config: FunctionMatchingConfig) -> str:
    """The ``kdzoo bench function-matching`` command that runs ``config``."""
    pairings = tuple(config.pairings)
    return bench_command(
        NAME, config, *(["--datasets", *pairings] if pairings != PAIRING_NAMES else [])
    )


def mixed_batches(data, batch_size, seed, epochs, alpha, rate):
    """The recipe's training batches of ``data`` (``epoch_batches``: epoch ``e`` in the
    order seeded by ``(seed, e)``) with labels as int32, mixed by ``mix_batches``; returns
    ``(batches, steps_per_epoch)``."""
    import tensorflow as tf

    from kdzoo.data.mixup import mix_batches
    from kdzoo.recipe.batching import epoch_batches

    rows = data.pipeline("train", training=False).unbatch()
    n = data.num_examples["train"]
    batches, steps = epoch_batches(rows, n, batch_size, seed, 0, epochs)
    # Integer labels of any width (MNIST's are uint8) as int32, which can hold UNLABELLED.
    batches = batches.map(lambda x, y, *rest: (x, tf.cast(y, tf.int32), *rest))
    return mix_batches(batches, alpha=alpha, seed=seed, rate=rate), steps


def run(config: FunctionMatchingConfig | None = None):
    """Runs the pairings; returns ``(per_seed, summary)`` and, with ``config.out_dir``,
    writes ``function-matching.csv``, ``.md`` and ``.png``."""
    from kdzoo.determinism import seed_everything
    from kdzoo.evaluation import metrics_from_logits, predict_with_labels
    from kdzoo.privileged import PAIRINGS, degraded_student, few_labels
    from kdzoo.recipe import phases
    from kdzoo.recipe.candidates import parse_candidates
    from kdzoo.recipe.selection import RECIPE, SCRATCH, TEACHER, decide
    from kdzoo.recipe.selection import run as recipe
    from kdzoo.results import study_figure, table_row, write_study
    from kdzoo.studies import _build, load_dataset

    config = config or FunctionMatchingConfig()
    unknown = sorted(set(config.pairings) - set(PAIRING_NAMES))
    if unknown:
        raise ValueError(f"Unknown pairing(s) {unknown}. Valid: {', '.join(PAIRING_NAMES)}.")
    if not config.alpha > 0 or not 0 < config.rate <= 1:
        raise ValueError(
            f"alpha must be > 0 and rate in (0, 1]; got {config.alpha}, {config.rate}."
        )
    candidates = parse_candidates(DEFAULTS.candidates[:1] if config.tiny else DEFAULTS.candidates)
    rows = []
    for name in config.pairings:
        pairing = PAIRINGS[name]
        inputs = (pairing.modality,)
        data = load_dataset(pairing.dataset, None, inputs, pairing.train_examples, config.tiny)
        k = 5 if config.tiny else pairing.labels_per_class
        data = few_labels(data, k)
        seed_everything(config.seeds[0])
        teacher = _build((pairing.family, "teacher"), data, inputs)
        n_train = data.num_examples["train"]
        batch_size = min(DEFAULTS.batch_size, n_train)
        validation = data.pipeline("validation", training=False)
        test = data.pipeline("test", training=False)
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
                batch_size=batch_size,
                teacher_inputs=inputs,
                student_inputs=inputs,
                verbose=config.verbose,
                candidates=[c.name for c in candidates],
            )
            table = result.table.set_index("model")
            found = [
                ("scratch (degraded view)", SCRATCH),
                ("distilled (degraded view, the recipe's choice)", RECIPE),
            ]
            if first:
                found.insert(0, ("teacher (full view)", TEACHER))
            common = {"pairing": name, "degradation": pairing.degradation}
            for model, which in found:
                chose = result.selection if which == RECIPE else None
                row = table_row(model, k, seed, table, which, n_train, pairing.dataset, chose)
                rows.append({**common, **row, "role": STUDENT})
                if which == SCRATCH:
                    scratch_row = rows[-1]
            # What every row below shares (``table_row``'s columns).
            common |= {
                "dataset": pairing.dataset,
                "labels_per_class": k,
                "seed": seed,
                "train_examples": n_train,
            }
            # Step 2: the candidates on mixed batches, the teacher online.
            scratch_logits, labels = predict_with_labels(result.scratch, validation)
            scratch_correct = scratch_logits.argmax(-1) == labels
            tried = []
            for candidate in candidates:
                model = phases.same_initial_weights(student)
                # A new pipeline per candidate: each starts the same sequence of mixes (one
                # pipeline iterated again would draw new ones), so candidates see equal data.
                batches, steps = mixed_batches(
                    data, batch_size, seed, config.epochs, config.alpha, config.rate
                )
                phases.distil_student(
                    teacher,
                    model,
                    batches,
                    terms=candidate.loss_terms(),
                    teacher_inputs=inputs,
                    student_inputs=inputs,
                    epochs=config.epochs,
                    steps_per_epoch=steps,
                    learning_rate=candidate.learning_rate or DEFAULTS.learning_rate,
                    validation=validation,
                    verbose=config.verbose,
                    phase=f"distil {candidate.name} with mixup",
                )
                logits, labels = predict_with_labels(model, validation)
                val = metrics_from_logits(logits, labels)
                on_test = metrics_from_logits(*predict_with_labels(model, test))
                tried.append((candidate, val, logits.argmax(-1) == labels, on_test))
            # Every candidate's own scores, on labelled batches (the recipe's) and on mixed
            # ones: what the choices below are made from (test shown, never used).
            plain = result.candidates.set_index("setting")
            candidate_rows = []
            for candidate, val, _, on_test in tried:
                described = candidate.describe()
                for batches, scores in (
                    ("labelled batches", {
                        "validation_accuracy": float(plain.at[described, "validation_accuracy"]),
                        "test_accuracy": float(plain.at[described, "test_accuracy"]),
                        "test_macro_f1": float(plain.at[described, "test_macro_f1"]),
                    }),
                    ("mixed batches", {
                        "validation_accuracy": float(val["accuracy"]),
                        "test_accuracy": on_test["accuracy"],
                        "test_macro_f1": on_test["macro_f1"],
                    }),
                ):  # fmt: skip
                    candidate_rows.append(
                        {
                            **common,
                            "model": f"candidate {described}, {batches}",
                            **scores,
                            "setting": described,
                            "role": CANDIDATE,
                        }
                    )
            # Step 3: the best on validation (the first of equals), then the recipe's rule.
            candidate, val, correct, on_test = max(tried, key=lambda t: t[1]["accuracy"])
            selection = decide(
                scratch_row["setting"],
                candidate.describe(),
                scratch_correct,
                correct,
                DEFAULTS.distil_margin_se,
            )
            if selection.chose_distilled:
                shipped = {
                    "validation_accuracy": float(val["accuracy"]),
                    "test_accuracy": on_test["accuracy"],
                    "test_macro_f1": on_test["macro_f1"],
                    "setting": f"{candidate.describe()} + mixup",
                }
            else:  # the tuned scratch student's scores, from the recipe's table
                shipped = {key: scratch_row[key] for key in (
                    "validation_accuracy", "test_accuracy", "test_macro_f1", "setting"
                )}  # fmt: skip
            rows.append(
                {
                    **common,
                    "model": f"{MIXUP_MODEL}, {k} labels per class",
                    **shipped,
                    "validation_gain": float(selection.gain),
                    "validation_se": float(selection.standard_error),
                    "role": STUDENT,
                }
            )
            print(
                f"{name} seed {seed}: scratch {rows[-3]['test_accuracy']:.4f}, distilled "
                f"{rows[-2]['test_accuracy']:.4f} ({rows[-2]['setting']}), with mixup "
                f"{rows[-1]['test_accuracy']:.4f} ({rows[-1]['setting']}; validation of the "
                "mixup candidates: "
                + ", ".join(f"{c.name} {v['accuracy']:.3f}" for c, v, _, _ in tried)
                + ")",
                flush=True,
            )
            rows += candidate_rows

    def figure(per_seed, path):
        return study_figure(students(per_seed), path, group="pairing")

    per_seed = write_study(
        config.out_dir, NAME, rows, command(config), config.seeds, markdown, figure
    )
    return per_seed, summarize(per_seed)


def students(per_seed: pd.DataFrame) -> pd.DataFrame:
    """The rows of the teacher and the students (not those of single candidates)."""
    if "role" not in per_seed:
        return per_seed
    return per_seed[per_seed["role"] == STUDENT]


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of test accuracy per pairing and kind of model (``KINDS``)."""
    per_seed = students(per_seed)
    kinds = per_seed["model"].map(functools.partial(model_kind, kinds=KINDS))
    out = (
        per_seed.assign(kind=kinds)
        .groupby(["pairing", "kind"], sort=False)["test_accuracy"]
        .agg(["mean", "std", "count"])
        .reset_index()
    )
    out["std"] = out["std"].fillna(0.0)
    return out


def gains(summary: pd.DataFrame) -> pd.DataFrame:
    """Per pairing, in points (means over seeds): the recipe's distilled student and the
    distilled student with mixup, each minus scratch."""
    rows = []
    for pairing, group in summary.groupby("pairing", sort=False):
        mean = group.set_index("kind")["mean"]
        rows.append(
            {
                "pairing": pairing,
                "distilled_minus_scratch": 100 * (mean.get("distilled") - mean.get("scratch")),
                "mixup_minus_scratch": 100 * (mean.get("mixup") - mean.get("scratch")),
            }
        )
    return pd.DataFrame(rows)


def markdown(per_seed: pd.DataFrame) -> str:
    from kdzoo.results import choices_markdown, markdown_table, runs_markdown

    summary = summarize(per_seed)
    checked = gains(summary).set_index("pairing")
    lines = [
        "# Function matching: consistent mixup as the transfer set, 50 labels per class",
        "",
        runs_markdown(per_seed, "pairing"),
        "",
        "Test accuracy, mean ± std over seeds (never used to choose). The teacher sees the "
        "full view, the students the degraded one. *distilled*: the recipe's student, its "
        "candidates on the labelled batches; *with mixup*: the same candidates on batches "
        "of which a share is mixed (the teacher online on the mixed view), the recipe's "
        "one-standard-error rule against the same tuned scratch student.",
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
                "teacher (full view)": scores.get("teacher", "–"),
                "scratch": scores.get("scratch", "–"),
                "distilled": scores.get("distilled", "–"),
                "with mixup": scores.get("mixup", "–"),
                "distilled − scratch": f"{checked.at[pairing, 'distilled_minus_scratch']:+.1f}",
                "with mixup − scratch": f"{checked.at[pairing, 'mixup_minus_scratch']:+.1f}",
            }
        )
    lines += [markdown_table(pd.DataFrame(table)), ""]
    lines += candidates_markdown(per_seed)
    return "\n".join([*lines, choices_markdown(students(per_seed), ("pairing",))])


def candidates_markdown(per_seed: pd.DataFrame) -> list:
    """The candidates' section: validation and test accuracy of each distillation candidate
    on labelled and on mixed batches, mean ± std over seeds (empty without such rows)."""
    from kdzoo.results import markdown_table

    if "role" not in per_seed or not (per_seed["role"] == CANDIDATE).any():
        return []
    rows = per_seed[per_seed["role"] == CANDIDATE]
    out = []
    for (pairing, setting), group in rows.groupby(["pairing", "setting"], sort=False):
        entry = {"pairing": pairing, "candidate": setting}
        for batches in ("labelled batches", "mixed batches"):
            part = group[group["model"].str.endswith(batches)]
            for split in ("validation", "test"):
                scores = part[f"{split}_accuracy"].astype(float)
                entry[f"{split}, {batches.split()[0]}"] = (
                    f"{scores.mean():.3f} ± {scores.std(ddof=1) if len(scores) > 1 else 0:.3f}"
                )
        out.append(entry)
    table = pd.DataFrame(out)[
        ["pairing", "candidate", "validation, labelled", "validation, mixed",
         "test, labelled", "test, mixed"]
    ]  # fmt: skip
    return [
        "## Each distillation candidate, on labelled and on mixed batches",
        "",
        "Accuracy, mean ± std over seeds, of each candidate's student: trained on the "
        "recipe's labelled batches (the teacher's outputs cached) and on mixed batches (the "
        "teacher online). The choices above are made on validation; test is shown only.",
        "",
        markdown_table(table),
        "",
    ]
