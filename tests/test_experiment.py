"""Experiment files (``kdzoo run``): read with a safe loader, every key checked before
anything loads, relative paths from the file's folder, and the file saved with the run."""

import json

import numpy as np
import pandas as pd
import pytest

from kdzoo import cli
from kdzoo.experiment import ExperimentError, load_experiment, run_experiment

INTENTS = {"billing": "invoice charge refund", "travel": "flight hotel trip", "other": "hello hi"}


def _csv(folder, n=90):
    rng = np.random.default_rng(0)
    labels = rng.choice(sorted(INTENTS), n)
    frame = pd.DataFrame(
        {
            "uid": [f"u{i}" for i in range(n)],
            "utterance": [f"please {INTENTS[c]} {rng.integers(100)}" for c in labels],
            "intent": labels,
        }
    )
    frame.to_csv(folder / "intents.csv", index=False)


YAML = """\
data:
  csv: intents.csv
  label: intent
  text: utterance
  id: uid
  test_fraction: 0.2
  sequence_length: 8
pair: text_lstm
teacher_epochs: 1
epochs: 1
global_batch_size: 16
candidates: ["ce:0.5,kd:0.5@t=2"]
scratch: [scratch]
strategy: default
verbose: 0
"""


def test_a_yaml_file_becomes_a_checked_config_with_paths_from_its_folder(tmp_path):
    _csv(tmp_path)
    (tmp_path / "intents.yaml").write_text(YAML)
    experiment = load_experiment(tmp_path / "intents.yaml")
    config = experiment.config
    assert config.candidates == ("ce:0.5,kd:0.5@t=2",) and config.scratch == ("scratch",)
    assert config.run_dir == str(tmp_path / "runs" / "intents")
    assert config.dataset.func.__name__ == "from_csv"  # loaded by distil(), after the strategy
    assert config.dataset.args == (tmp_path / "intents.csv",)
    assert config.dataset.keywords["label"] == "intent"


def test_a_task_and_its_label_columns_reach_the_loader(tmp_path):
    _csv(tmp_path)
    frame = pd.read_csv(tmp_path / "intents.csv").assign(a=1.0, b=2.0)
    frame.to_csv(tmp_path / "intents.csv", index=False)
    text = YAML.replace("  label: intent\n", "  label: [a, b]\n  task: regression\n")
    (tmp_path / "scores.yaml").write_text(text)
    keywords = load_experiment(tmp_path / "scores.yaml").config.dataset.keywords
    assert keywords["task"] == "regression" and keywords["label"] == ["a", "b"]


def test_without_a_pair_the_data_picks_its_family(tmp_path):
    # As kdzoo distil --data does: a text file trains text_lstm, not the default AV pair.
    _csv(tmp_path)
    (tmp_path / "intents.yaml").write_text(YAML.replace("pair: text_lstm\n", ""))
    config = load_experiment(tmp_path / "intents.yaml").config
    assert config.pair == "text_lstm"
    assert config.export_name is None  # distil() names it after the data: intents_student
    given = YAML.replace("pair: text_lstm\n", "student: text_lstm/student\n")
    (tmp_path / "student.yaml").write_text(given)
    assert load_experiment(tmp_path / "student.yaml").config.pair == "text_lstm"
    named = YAML.replace("pair: text_lstm\n", "pair: tabular_mlp\nexport_name: mine\n")
    (tmp_path / "named.yaml").write_text(named)
    config = load_experiment(tmp_path / "named.yaml").config
    assert (config.pair, config.export_name) == ("tabular_mlp", "mine")  # given, kept
    frame = pd.read_csv(tmp_path / "intents.csv").assign(age=1.0)
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    mixed = YAML.replace("pair: text_lstm\n", "").replace("intents.csv", "mixed.csv")
    (tmp_path / "mixed.yaml").write_text(mixed.replace("  id: uid\n", "  numeric: [age]\n"))
    with pytest.raises(ExperimentError, match="pair: data: gives tabular and text; name the"):
        load_experiment(tmp_path / "mixed.yaml")


@pytest.mark.slow
def test_run_saves_the_file_with_the_report_and_json_works_too(tmp_path, capsys):
    _csv(tmp_path)
    (tmp_path / "intents.yaml").write_text(YAML)
    assert cli.main(["run", str(tmp_path / "intents.yaml"), "--quiet"]) == 0
    run_dir = tmp_path / "runs" / "intents"
    copy = (run_dir / "experiment.yaml").read_text()
    original = (tmp_path / "intents.yaml").resolve()
    assert copy == (
        f"# A copy of {original}, saved with the report by kdzoo. Its relative paths are read\n"
        f"# from {original.parent}: to repeat the run, run the original there.\n{YAML}"
    )
    assert (run_dir / "summary.csv").is_file()
    assert "the experiment file is saved with the report" in capsys.readouterr().out
    import yaml

    settings = yaml.safe_load(YAML)
    settings["run_dir"] = "json-run"
    (tmp_path / "intents.json").write_text(json.dumps(settings))
    result = run_experiment(tmp_path / "intents.json")
    assert result.student.outputs[0].shape[-1] == 3
    assert json.loads((tmp_path / "json-run" / "experiment.json").read_text()) == settings
    # The next run in the folder (kdzoo distil, or a changed file that fails) does not keep
    # a copy that describes this one; a file of the user's is kept.
    from kdzoo.recipe.report import claim_run_dir

    (tmp_path / "json-run" / "notes.txt").write_text("mine")
    claim_run_dir(tmp_path / "json-run")
    assert not (tmp_path / "json-run" / "experiment.json").exists()
    assert (tmp_path / "json-run" / "notes.txt").read_text() == "mine"
    claim_run_dir(run_dir)
    assert not (run_dir / "experiment.yaml").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        (
            YAML.replace("\nepochs: 1\n", "\nepoch: 1\n"),
            r"epoch: unknown key \(did you mean 'epochs'\?\)",
        ),
        (YAML.replace("  label: intent\n", ""), "data.label: the label column is required"),
        (
            YAML.replace("  text: utterance\n", "  txt: utterance\n"),
            r"data.txt: unknown key \(did you mean 'text'\?\)",
        ),
        (
            YAML.replace("  csv: intents.csv\n", "  csv: nowhere.csv\n"),
            "data.csv: .*nowhere.csv: no such file",
        ),
        (
            YAML.replace("  csv: intents.csv\n", "  csv: intents.csv\n  dataset: sst2\n"),
            "give exactly one of",
        ),
        ("pair: text_lstm\n", "data: is required"),
        ("- a\n- list\n", "must hold a mapping of settings, not list"),
        ("data: [\n", "not valid YAML"),
        ('data: !!python/object/apply:os.system ["echo unsafe"]\n', "not valid YAML"),
        (YAML.replace("\nepochs: 1\n", "\nepochs: 0\n"), r"intents.yaml: DistilConfig.epochs"),
        (
            YAML.replace("  text: utterance\n", "  text: utterance\n  numeric: age\n"),
            r"data.numeric: a list of column names; got 'age'",
        ),
        (
            YAML.replace("  text: utterance\n", "  text: utterance\n  numeric: [uid, uid]\n"),
            r"data.numeric: names 'uid' twice",
        ),
        (
            YAML.replace(
                "  text: utterance\n", "  text: utterance\n  numeric: [uid]\n  categorical: [uid]\n"
            ),
            r"data.categorical: 'uid' is also in data.numeric; a column is standardised",
        ),
        (
            YAML.replace("pair: text_lstm\n", "pair: text_lstm\nteacher: t.keras\n"),
            "teacher: .*t.keras: no such file",
        ),
        (
            YAML.replace("  label: intent\n", "  label: intent\n  task: ranking\n"),
            "data.task: one of classification, binary, multi_label, regression; got 'ranking'",
        ),
        (
            YAML.replace("  text: utterance\n", "  text: words\n"),
            r"data.text: .*intents.csv has no column 'words'; its columns are uid, utterance, "
            "intent",
        ),
        (YAML.replace("  id: uid\n", "  id: uid\n  image_size: 28\n"), "data.image_size: \\[h"),
        (
            YAML.replace("  id: uid\n", "  id: uid\n  sample_rate: 8k\n"),
            "data.sample_rate: an integer number of Hz; got '8k'",
        ),
        (
            YAML.replace("  id: uid\n", "  id: uid\n  class_names: 3\n"),
            "data.class_names: a list of class names; got 3",
        ),
        (
            YAML.replace("  id: uid\n", "  id: uid\n  skip_bad: yes please\n"),
            "data.skip_bad: true or false",
        ),
        (YAML.replace("\nepochs: 1\n", "\nepochs: 1\nepochs: 2\n"), "'epochs' is given twice"),
        (YAML + "strategy: bogus\n", "given twice"),
        (YAML.replace("strategy: default", "strategy: bogus"), "strategy must be one of"),
        (YAML.replace("verbose: 0", "verbose: loud"), "verbose must be one of"),
        (YAML + "tensorboard: 'no'\n", "tensorboard must be one of True, False"),
        (YAML + "teacher_overrides: 5\n", "teacher_overrides must be a dict"),
        (YAML + "export_name: ../evil\n", "export_name must be a plain folder name"),
        (YAML + "export_dir: gs://bucket/models\n", "export_dir: 'gs://bucket/models' is a URL"),
        (YAML + "export_dir: intents.csv\n", "export_dir: .*intents.csv is a file, not a folder"),
        (  # unquoted, the flow list's commas make 'ce:0.5' and 'kd:0.5@t=2' two candidates
            YAML.replace('["ce:0.5,kd:0.5@t=2"]', "[ce:0.5,kd:0.5@t=2]"),
            r"In a YAML \[...\] list, quote each candidate",
        ),
        (
            YAML.replace('["ce:0.5,kd:0.5@t=2"]', '["label:0.5,teacher_bounded:0.5"]'),
            "candidates: Candidate .*teacher_bounded:0.5 cannot train a classification student",
        ),
        (
            YAML.replace("  label: intent\n", "  label: [intent, uid]\n"),
            "data.label: a list of columns is a multi_label or regression task's",
        ),
    ],
)
def test_every_key_is_checked_before_anything_loads(tmp_path, text, message):
    _csv(tmp_path)
    (tmp_path / "intents.yaml").write_text(text)
    with pytest.raises(ExperimentError, match=message):
        load_experiment(tmp_path / "intents.yaml")


def test_numbers_yaml_reads_as_strings_are_numbers_and_one_item_is_a_list(tmp_path):
    _csv(tmp_path)
    text = YAML.replace('candidates: ["ce:0.5,kd:0.5@t=2"]', "candidates: ce:0.5,kd:0.5@t=2")
    text = text.replace("scratch: [scratch]", "scratch: scratch") + "learning_rate: 1e-3\n"
    (tmp_path / "intents.yaml").write_text(text + "student_inputs: text\n")
    config = load_experiment(tmp_path / "intents.yaml").config
    assert config.learning_rate == 0.001  # YAML 1.1 would read the string '1e-3'
    assert config.candidates == ("ce:0.5,kd:0.5@t=2",) and config.scratch == ("scratch",)
    assert config.student_inputs == ("text",)  # not ('t', 'e', 'x', 't')


def test_a_folder_of_one_class_or_no_files_is_refused_before_anything_loads(tmp_path):
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    (tmp_path / "one.yaml").write_text("data:\n  folder: photos\n")
    with pytest.raises(ExperimentError, match="data.folder: .*no image or wav files|data.folder"):
        load_experiment(tmp_path / "one.yaml")
    (tmp_path / "photos" / "cat" / "0.png").write_bytes(b"")
    with pytest.raises(ExperimentError, match="has only 'cat' in its class folders"):
        load_experiment(tmp_path / "one.yaml")


def test_kdzoo_run_names_the_file_and_key(tmp_path, capsys):
    (tmp_path / "x.toml").write_text("a = 1\n")
    assert cli.main(["run", str(tmp_path / "x.toml")]) == 1
    assert "an experiment file is .yaml, .yml or .json" in capsys.readouterr().err
    assert cli.main(["run", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml: no such experiment file" in capsys.readouterr().err
