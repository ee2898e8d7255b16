"""One set of defaults: every entry point agrees with ``kdzoo.defaults.DEFAULTS``, and the
README's defaults table quotes it."""

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
from helpers import av_pair

from kdzoo import cli
from kdzoo.defaults import DEFAULTS


def _defaults_of(function):
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


SHARED = {f.name: getattr(DEFAULTS, f.name) for f in dataclasses.fields(DEFAULTS)}


# The fields of each config that must be ``DEFAULTS``' (``DistilConfig`` calls the batch
# size ``global_batch_size``). Every other field named like a setting of ``DEFAULTS`` must
# agree too.
CONFIG_FIELDS = {
    "distil": (
        "teacher_epochs",
        "epochs",
        "patience",
        "plateau_patience",
        "plateau_factor",
        "validation_fraction",
        "distil_margin_se",
        "learning_rate",
        "optimizer",
        "seed",
    ),
    "demo": ("teacher_epochs", "epochs", "candidates", "batch_size", "learning_rate", "seed"),
    "studies": ("teacher_epochs", "epochs"),
}


@pytest.mark.parametrize("owner", sorted(CONFIG_FIELDS))
def test_configs_take_their_defaults_from_the_table(owner):
    from kdzoo.demo import DemoConfig
    from kdzoo.recipe import DistilConfig
    from kdzoo.studies import StudyConfig

    config = {"distil": DistilConfig, "demo": DemoConfig, "studies": StudyConfig}[owner]()
    renamed = {"batch_size": "global_batch_size"} if owner == "distil" else {}
    checked = set()
    # distil() takes its candidates from the data's task kind (None: resolved by the recipe).
    # ... and its batch from the training set's size (None: auto_batch_size).
    task_dependent = {"candidates", "batch_size"} if owner == "distil" else set()
    for name, value in SHARED.items():
        field = renamed.get(name, name)
        if hasattr(config, field) and name not in task_dependent:
            assert getattr(config, field) == value, (owner, field)
            checked.add(name)
    if task_dependent:
        from kdzoo.recipe.config import auto_batch_size

        assert config.candidates is None and config.global_batch_size is None
        assert auto_batch_size(100_000) == SHARED["batch_size"]  # a large set: the table's
    assert checked >= set(CONFIG_FIELDS[owner]), set(CONFIG_FIELDS[owner]) - checked


def test_the_recipe_takes_its_defaults_from_the_table():
    from kdzoo.recipe import Candidate, Stopping, run, scratch_tries, with_validation

    defaults = _defaults_of(run)
    for name in ("teacher_epochs", "epochs", "batch_size", "learning_rate"):
        assert defaults[name] == SHARED[name], name
    # candidates=None: the table's candidates of the run's task kind.
    from kdzoo.recipe.selection import default_candidates
    from kdzoo.tasks import Task

    assert defaults["candidates"] is None
    assert default_candidates(None) == DEFAULTS.candidates
    assert default_candidates(Task.regression(num_targets=1)) == DEFAULTS.regression_candidates
    for task in (Task.binary(), Task.multi_label(num_labels=3)):
        assert default_candidates(task) == DEFAULTS.multi_label_candidates
    for spec in (*DEFAULTS.multi_label_candidates, *DEFAULTS.regression_candidates):
        assert Candidate.parse(spec).distils
    assert (defaults["optimizer"], defaults["seed"]) == (DEFAULTS.optimizer, DEFAULTS.seed)
    assert defaults["scratch"] is None  # as many scratch tries as candidates
    stopping = Stopping()
    assert (stopping.patience, stopping.plateau_patience, stopping.plateau_factor) == (
        DEFAULTS.patience,
        DEFAULTS.plateau_patience,
        DEFAULTS.plateau_factor,
    )
    assert _defaults_of(with_validation)["fraction"] == DEFAULTS.validation_fraction
    assert _defaults_of(scratch_tries)["learning_rate"] == DEFAULTS.learning_rate
    # A candidate without ``@t=`` distils at the table's temperature.
    assert Candidate.parse("ce:0.5,kd:0.5").temperature == DEFAULTS.temperature
    assert all(Candidate.parse(c).distils for c in DEFAULTS.candidates)


def test_the_recipe_phases_take_their_defaults_from_the_table():
    from kdzoo.recipe import phases

    for function in (phases.train_teacher, phases.train_scratch, phases.distil_student):
        defaults = _defaults_of(function)
        expected = DEFAULTS.teacher_epochs if function is phases.train_teacher else DEFAULTS.epochs
        assert defaults["epochs"] == expected
    for function in (phases.train_supervised, phases.distil_student, phases.compile_phase):
        defaults = _defaults_of(function)
        assert defaults["learning_rate"] == DEFAULTS.learning_rate
        assert defaults["optimizer"] == DEFAULTS.optimizer


def test_the_distillers_default_objective_is_the_tables(tiny_av_batch):
    from kdzoo import Distiller, default_terms

    terms = {t.name: t for t in default_terms()}
    assert terms["ce"].weight == DEFAULTS.ce_weight
    assert terms["kd"].weight == DEFAULTS.kd_weight
    assert terms["kd"].loss.temperature == DEFAULTS.temperature
    teacher, student = av_pair()
    distiller = Distiller(teacher=teacher, student=student)
    built = {t.name: (t.weight, getattr(t.loss, "temperature", None)) for t in distiller.loss_terms}
    assert built == {n: (t.weight, getattr(t.loss, "temperature", None)) for n, t in terms.items()}


def test_the_text_vectoriser_takes_its_defaults_from_the_table():
    from kdzoo.data import TextVectorizer

    defaults = _defaults_of(TextVectorizer.adapt)
    assert defaults["max_tokens"] == DEFAULTS.text_max_tokens
    assert defaults["sequence_length"] == DEFAULTS.text_sequence_length


def _action(command, flag):
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    (action,) = [a for a in sub._actions if flag in a.option_strings]
    return sub, action


@pytest.mark.parametrize(
    "command, flag, value",
    [
        ("distil", "--epochs", DEFAULTS.epochs),
        ("distil", "--teacher-epochs", DEFAULTS.teacher_epochs),
        ("distil", "--patience", DEFAULTS.patience),
        ("distil", "--learning-rate", f"{DEFAULTS.learning_rate:g}"),
        ("distil", "--seed", DEFAULTS.seed),
        ("demo", "--epochs", DEFAULTS.epochs),
        ("demo", "--teacher-epochs", DEFAULTS.teacher_epochs),
        ("demo", "--batch-size", DEFAULTS.batch_size),
        ("demo", "--seed", DEFAULTS.seed),
        ("bench", "--epochs", DEFAULTS.epochs),
        ("bench", "--teacher-epochs", DEFAULTS.teacher_epochs),
    ],
)
def test_cli_help_quotes_the_table(command, flag, value):
    _, action = _action(command, flag)
    assert action.help.endswith(f"({value})"), action.help


def test_cli_help_says_the_batch_is_sized_for_the_data():
    _, action = _action("distil", "--global-batch-size")
    assert f"(default: {DEFAULTS.batch_size}, halved for a small training set" in action.help


@pytest.mark.parametrize("command", ["distil", "demo"])
def test_cli_help_lists_the_default_candidates(command):
    sub, action = _action(command, "--candidate")
    assert f"the defaults: {' '.join(DEFAULTS.candidates)})" in action.help, action.help
    shown = sub.format_help()  # wrapped, but a candidate holds no space
    assert all(candidate in shown for candidate in DEFAULTS.candidates)


def test_cli_help_names_the_default_scratch_tries():
    from kdzoo.recipe import scratch_tries

    _, action = _action("distil", "--scratch")
    assert ", ".join(t.name for t in scratch_tries(2)) in action.help, action.help


# Help texts that quote a config's own default (not ``DEFAULTS``'), e.g. "(embedded)".
CONFIG_HELP = [
    ("distil", "--dataset", "distil", "dataset"),
    ("distil", "--strategy", "distil", "strategy"),
    ("demo", "--num-examples", "demo", "num_examples"),
    ("demo", "--run-dir", "demo", "run_dir"),
    ("demo", "--export-dir", "demo", "export_dir"),
    ("bench", "--out-dir", "studies", "out_dir"),
    ("bench", "--seeds", "studies", "seeds"),
]


@pytest.mark.parametrize("command, flag, owner, field", CONFIG_HELP)
def test_cli_help_quotes_the_configs(command, flag, owner, field):
    from kdzoo.demo import DemoConfig
    from kdzoo.recipe import DistilConfig
    from kdzoo.studies import StudyConfig

    config = {"distil": DistilConfig, "demo": DemoConfig, "studies": StudyConfig}[owner]()
    value = getattr(config, field)
    shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
    _, action = _action(command, flag)
    assert action.help.endswith(f"({shown})"), action.help


def test_the_help_of_flags_the_data_decides_names_the_rule():
    from kdzoo.families import FAMILY_OF_MODALITY
    from kdzoo.recipe import DistilConfig
    from kdzoo.recipe.distilling import DEFAULT_PAIR

    assert (DistilConfig().pair, DistilConfig().export_name) == (None, None)  # from the data
    pair = _action("distil", "--pair")[1].help
    assert DEFAULT_PAIR in pair and all(f in pair for f in FAMILY_OF_MODALITY.values())
    assert "<data name>_student" in _action("distil", "--export-name")[1].help


def _readme_cell(value):
    """How the README's defaults table writes ``value``: a float with ``:g``, a tuple as its
    items, each in backticks, separated by commas."""
    if isinstance(value, tuple):
        return ", ".join(f"`{item}`" for item in value)
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def test_the_readme_table_quotes_the_defaults():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Defaults") :]
    missing = [
        name
        for name, value in SHARED.items()
        if not re.search(rf"^\| `{name}` \| {re.escape(_readme_cell(value))} \|", table, re.M)
    ]
    assert not missing, f"README.md's defaults table does not quote DEFAULTS for {missing}"
