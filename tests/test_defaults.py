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


@pytest.mark.parametrize("owner", ["distil", "demo", "studies"])
def test_configs_take_their_defaults_from_the_table(owner):
    from kdzoo.demo import DemoConfig
    from kdzoo.recipe import DistilConfig
    from kdzoo.studies import StudyConfig

    config = {"distil": DistilConfig, "demo": DemoConfig, "studies": StudyConfig}[owner]()
    renamed = {"batch_size": "global_batch_size"} if owner == "distil" else {}
    checked = 0
    for name, value in SHARED.items():
        field = renamed.get(name, name)
        if hasattr(config, field):
            assert getattr(config, field) == value, (owner, field)
            checked += 1
    assert checked >= 5


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


@pytest.mark.parametrize(
    "command, flag, value",
    [
        ("distil", "--epochs", DEFAULTS.epochs),
        ("distil", "--teacher-epochs", DEFAULTS.teacher_epochs),
        ("distil", "--global-batch-size", DEFAULTS.batch_size),
        ("distil", "--learning-rate", f"{DEFAULTS.learning_rate:g}"),
        ("distil", "--temperature", f"{DEFAULTS.temperature:g}"),
        ("distil", "--ce-weight", f"{DEFAULTS.ce_weight:g}"),
        ("distil", "--kd-weight", f"{DEFAULTS.kd_weight:g}"),
        ("demo", "--epochs", DEFAULTS.epochs),
        ("demo", "--batch-size", DEFAULTS.batch_size),
        ("bench", "--epochs", DEFAULTS.epochs),
    ],
)
def test_cli_help_quotes_the_table(command, flag, value):
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    (action,) = [a for a in sub._actions if flag in a.option_strings]
    assert action.help.endswith(f"({value})"), action.help


def test_the_readme_table_quotes_the_defaults():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Defaults") :]
    for name, value in SHARED.items():
        assert re.search(
            rf"\| `{name}` \| `{value:g}` \|"
            if isinstance(value, float)
            else rf"\| `{name}` \| `{value}` \|",
            table,
        ), name
