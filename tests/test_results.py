"""Results that reproduce: provenance in every results file, a code fingerprint that flags
stale tables, determinism, and ``kdzoo bench --verify``."""

import dataclasses
import itertools
import os
import platform
import shutil
from pathlib import Path

import pandas as pd
import pytest

from kdzoo import cli, results
from kdzoo.files import default_mode
from kdzoo.results import (
    FIELDS,
    Provenance,
    code_fingerprint,
    declared_stale,
    file_digests,
    read_provenance,
    runs_markdown,
    stale_markdown,
    table_status,
    with_provenance,
)

ROOT = Path(__file__).resolve().parents[1]


def _digest(tmp_path, source, name="kdzoo/a.py"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return file_digests([name], tmp_path)[name]


def test_file_digests_ignore_docstrings_comments_and_formatting_but_not_code(tmp_path):
    base = _digest(tmp_path, 'def f(x):\n    """Doc."""\n    return x + 1\n')
    assert len(base) == 33  # code / bytes
    reworded = 'def f( x ):  # a comment\n    """Other words."""\n    return (x + 1)\n'
    assert results.same_file(base, _digest(tmp_path, reworded))
    assert not results.same_file(base, _digest(tmp_path, "def f(x):\n    return x + 2\n"))
    # A string that is not a docstring is code (a candidate spec, a default).
    changed = _digest(tmp_path, 'def f(x):\n    y = "t=2"\n    return x + 1\n')
    assert not results.same_file(base, changed)
    # Another Python may unparse the same file differently: its bytes still match.
    code, raw = base.split("/")
    assert results.same_file(base, f"{'0' * 16}/{raw}")
    assert not results.same_file(base, "missing")
    assert results.same_file(code, base) and not results.same_file("0" * 16, base)  # old entries
    assert file_digests(["kdzoo/gone.py"], tmp_path) == {"kdzoo/gone.py": "missing"}
    (tmp_path / "kdzoo" / "broken.py").write_text("def f(:\n")
    with pytest.raises(ValueError, match=r"broken\.py: cannot fingerprint"):
        file_digests(["kdzoo/broken.py"], tmp_path)


def test_a_run_fingerprints_the_kdzoo_modules_it_imported_and_not_the_others():
    import subprocess
    import sys

    import kdzoo.defaults  # noqa: F401

    files = results.loaded_files()
    assert "kdzoo/defaults.py" in files
    assert not set(results.UNMEASURED) & set(files)
    assert set(files) <= set(results.package_files())
    assert {"kdzoo/datasets/frames.py", "kdzoo/cli.py"} <= set(results.package_files())
    # A fresh process that imports only the defaults fingerprints only what it imported.
    code = "from kdzoo import results, defaults; print(' '.join(results.loaded_files()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["kdzoo/__init__.py", "kdzoo/defaults.py"]


def _made(**changes):
    made = Provenance.collect("kdzoo bench mnist --seeds 0 1", (0, 1))
    return dataclasses.replace(made, **changes)


def test_provenance_names_what_made_a_run(tmp_path):
    made = Provenance.collect("kdzoo bench mnist --seeds 0 1", (0, 1))
    assert made.seeds == "0 1"
    assert made.code == code_fingerprint(file_digests(results.loaded_files()))
    assert made.kdzoo == __import__("kdzoo").__version__
    assert made.tensorflow != "not installed" and made.numpy != "not installed"
    assert "CPU cores" in made.machine
    assert made.commit != "" and isinstance(made.dirty, bool)
    line = made.line()
    for value in (made.command, made.commit, made.code, made.keras, made.date):
        assert value in line
    results.record_code(tmp_path, made)
    assert results.load_code(tmp_path)[made.code] == file_digests(results.loaded_files())


def test_provenance_round_trips_through_csv_and_markdown(tmp_path):
    made = _made(dirty=False)
    frame = pd.DataFrame({"dataset": ["a", "a"], "test_accuracy": [0.5, 0.6], "commit": "old"})
    frame = with_provenance(frame, made)
    assert list(frame.columns[:2]) == ["dataset", "test_accuracy"]
    assert (frame["commit"] == made.commit).all()  # an older column of the same name is replaced
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert read_provenance(tmp_path / "t.csv") == [made]
    (tmp_path / "t.md").write_text(f"# T\n\n{made.markdown()}\n\n| a |\n|---|\n| 1 |\n")
    assert read_provenance(tmp_path / "t.md") == [made]
    (tmp_path / "old.csv").write_text("dataset,test_accuracy\na,0.5\n")
    assert read_provenance(tmp_path / "old.csv") == []


def test_a_combined_table_lists_each_run_and_rows_made_before_provenance():
    one, two = _made(command="kdzoo bench a --seeds 0"), _made(command="kdzoo bench b --seeds 0")
    frame = pd.concat(
        [
            with_provenance(pd.DataFrame({"dataset": ["a", "a"]}), one),
            with_provenance(pd.DataFrame({"dataset": ["b"]}), two),
            pd.DataFrame({"dataset": ["c"]}),
        ],
        ignore_index=True,
    )
    text = runs_markdown(frame, "dataset")
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert [line.split(":")[0] for line in lines] == ["- a", "- b", "- c"]
    assert "no provenance recorded" in lines[2]
    assert "kdzoo bench a --seeds 0" in text and "kdzoo bench b --seeds 0" in text


def test_a_table_holding_rows_of_older_runs_is_stale(tmp_path):
    made = _made(dirty=False)
    results.record_code(tmp_path, made)
    fresh = with_provenance(pd.DataFrame({"dataset": ["a"]}), made)
    older = pd.DataFrame({"dataset": ["b", "b"]})
    fresh.to_csv(tmp_path / "one.csv", index=False)
    assert table_status(tmp_path / "one.csv").fresh
    pd.concat([fresh, older]).to_csv(tmp_path / "mixed.csv", index=False)
    status = table_status(tmp_path / "mixed.csv")
    assert not status.fresh and status.reason == "holds 2 row(s) without provenance (older runs)"
    assert read_provenance(tmp_path / "mixed.csv") == [made]
    (tmp_path / "mixed.md").write_text(runs_markdown(pd.concat([fresh, older]), "dataset"))
    assert "without provenance" in table_status(tmp_path / "mixed.md").reason


def test_rows_with_a_command_but_no_code_fingerprint_make_a_table_stale_saying_so(tmp_path):
    # The zoo's rows from before provenance carry its own command and commit columns only.
    made = _made(dirty=False)
    results.record_code(tmp_path, made)
    fresh = with_provenance(pd.DataFrame({"setting": ["a"]}), made)
    older = fresh.assign(setting="b", code="", commit="75a50df", command="kdzoo bench zoo")
    frame = pd.concat([fresh, older], ignore_index=True)
    frame.to_csv(tmp_path / "zoo.csv", index=False)
    (tmp_path / "zoo.md").write_text(runs_markdown(frame, "setting"))
    for name in ("zoo.csv", "zoo.md"):
        status = table_status(tmp_path / name)
        assert not status.fresh, name
        assert status.reason == (
            "holds rows of 1 run(s) that recorded no code fingerprint "
            "(made before kdzoo recorded provenance)"
        ), name
        assert "75a50df" in status.commits


def test_a_table_is_fresh_only_while_the_files_its_run_used_are_unchanged(tmp_path):
    _digest(tmp_path, "x = 1\n", "kdzoo/used.py")
    _digest(tmp_path, "y = 1\n", "kdzoo/other.py")
    digests = file_digests(["kdzoo/used.py"], tmp_path)
    code = code_fingerprint(digests)
    manifest = {code: digests}
    path = tmp_path / "t.md"
    path.write_text(_made(code=code, dirty=False).markdown())
    assert table_status(path, manifest, tmp_path).fresh
    _digest(tmp_path, "y = 2\n", "kdzoo/other.py")  # a module the run did not import
    assert table_status(path, manifest, tmp_path).fresh
    _digest(tmp_path, "x = 2\n", "kdzoo/used.py")
    status = table_status(path, manifest, tmp_path)
    assert not status.fresh and status.changed == ("kdzoo/used.py",)
    assert status.reason == "the code it ran changed since"
    assert "not in code.json" in table_status(path, {}, tmp_path).reason
    path.write_text(_made(code=code, dirty=True).markdown())
    assert table_status(path, manifest, tmp_path).reason == "made from a dirty tree"
    path.write_text("# a table\n")
    assert table_status(path, manifest, tmp_path).reason == "records no provenance"


def test_a_hand_changed_code_entry_or_another_pinned_version_makes_a_table_stale(tmp_path):
    _digest(tmp_path, "x = 1\n", "kdzoo/used.py")
    digests = file_digests(["kdzoo/used.py"], tmp_path)
    code = code_fingerprint(digests)
    path = tmp_path / "t.md"
    made = _made(code=code, dirty=False)
    path.write_text(made.markdown())
    assert table_status(path, {code: digests}, tmp_path).fresh
    # The code changed, and someone "refreshed" the entry instead of rerunning the table.
    _digest(tmp_path, "x = 2\n", "kdzoo/used.py")
    refreshed = {code: file_digests(["kdzoo/used.py"], tmp_path)}
    status = table_status(path, refreshed, tmp_path)
    assert not status.fresh and "entry" in status.reason and "does not match" in status.reason
    _digest(tmp_path, "x = 1\n", "kdzoo/used.py")
    # An upgrade pinned in constraints.txt can move every number.
    (tmp_path / "constraints.txt").write_text(
        f"keras=={made.keras}\nnumpy=={made.numpy}  # a comment\ntensorflow==9.9.9\n"
    )
    status = table_status(path, {code: digests}, tmp_path)
    assert status.reason == (
        f"made with tensorflow {made.tensorflow}; constraints.txt now pins 9.9.9"
    )
    (tmp_path / "constraints.txt").write_text(f"tensorflow=={made.tensorflow}\n")
    assert table_status(path, {code: digests}, tmp_path).fresh


def test_a_run_whose_checkout_moved_meanwhile_is_marked_dirty(monkeypatch):
    made = Provenance.collect("kdzoo bench mnist --seeds 0", (0,))
    if made.commit == "unknown":
        pytest.skip("not a git checkout")
    monkeypatch.setattr(results, "_HEAD_AT_START", "0" * 40)  # another commit at the start
    assert Provenance.collect("kdzoo bench mnist --seeds 0", (0,)).dirty


def test_every_committed_table_is_fresh_or_declared_stale():
    """The stale-table check ``make test`` runs: a table that the current code did not make
    must be listed in ``benchmarks/results/STALE.md`` (``kdzoo bench --stale --write``), and
    a listed one must really be stale, so the list never hides a fresh table or misses a
    stale one."""
    statuses = results.stale_tables(ROOT / "benchmarks" / "results")
    assert statuses, "no results files found"
    stale = {s.file for s in statuses if not s.fresh}
    declared = declared_stale(ROOT / "benchmarks" / "results")
    assert stale - declared == set(), (
        f"stale but not in STALE.md (rerun them, or `kdzoo bench --stale --write`): "
        f"{sorted(stale - declared)}"
    )
    assert declared - stale == set(), f"fresh but listed in STALE.md: {sorted(declared - stale)}"


def test_every_fresh_table_records_every_field():
    for path in results.results_files(ROOT / "benchmarks" / "results"):
        if table_status(path).fresh:
            for made in read_provenance(path):
                values = dataclasses.asdict(made)
                assert all(str(values[f]) != "" for f in FIELDS if f != "seeds"), path.name


def test_the_stale_list_is_what_stale_writes(tmp_path):
    fresh = results.TableStatus("a.csv", True, "made by the current code")
    old = results.TableStatus("b.md", False, "the measured code changed since", ("abc",))
    text = stale_markdown([fresh, old])
    (tmp_path / results.STALE_FILE).write_text(text)
    assert declared_stale(tmp_path) == {"b.md"}
    assert "made at abc" in text
    assert "None" in stale_markdown([fresh])


def test_bench_stale_lists_and_writes_the_stale_tables(tmp_path, capsys):
    made = _made(dirty=False)
    results.record_code(tmp_path, made)
    (tmp_path / "fresh.md").write_text(made.markdown())
    (tmp_path / "old.md").write_text(dataclasses.replace(made, code="0" * 16).markdown())
    manifest = results.load_code(tmp_path)
    results._write_json(tmp_path / "code.json", {**manifest, "f" * 16: {"kdzoo/x.py": "1"}})
    # Readable as the tables beside it are, not a temporary's 0600.
    assert (tmp_path / "code.json").stat().st_mode & 0o777 == default_mode()
    assert cli.main(["bench", "--stale", "--out-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "fresh  fresh.md" in out and "STALE  old.md" in out and "1 of 2 tables stale" in out
    assert cli.main(["bench", "--stale", "--write", "--out-dir", str(tmp_path)]) == 0
    assert declared_stale(tmp_path) == {"old.md"}
    assert set(results.load_code(tmp_path)) == {made.code}  # entries no table records go


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "mnist", "--stale"], "give no study"),
        (["bench", "--write"], "only with --stale"),
        (["bench", "--tolerance", "0.1", "--stale"], "only with --verify"),
        (["bench", "--verify", "no/such.csv"], "no such file"),
        (["bench"], "required: STUDY"),
        (["bench", "--figure", "no/such.csv"], "argument --figure: no such file: no/such.csv"),
        (["bench", "--figure", __file__], "test_results.py is not a results CSV (.csv)"),
        (["bench", "--stale", "--out-dir", "no/such"], "argument --out-dir: no/such is not a"),
        (["bench", "--figure", "a.csv", "--stale"], "--stale: not with --figure"),
        (["bench", "privileged", "--figure", "a.csv"], "give no study"),
    ],
)
def test_bench_check_usage_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def _recipe_table():
    return pd.DataFrame(
        {
            "validation_accuracy": [0.9, 0.7, 0.75],
            "accuracy": [0.88, 0.66, 0.71],
            "macro_f1": [0.87, 0.65, 0.7],
            "setting": ["", "scratch (ls=0.1)", "ce:0.5,kd:0.5 (τ=2)"],
        },
        index=["teacher", "scratch", "recipe"],
    )


def test_a_study_row_records_the_recipes_validation_evidence_and_its_section_shows_it():
    from kdzoo.recipe.selection import decide

    # 2 of 4 validation examples gained, none lost: +0.5, SE = std([1, 1, 0, 0]) / 2.
    selection = decide("scratch", "kd", [0, 0, 1, 1], [1, 1, 1, 1], 1.0)
    table = _recipe_table()
    plain = results.table_row("scratch", None, 0, table, "scratch", 10, "d")
    row = results.table_row("distilled", 5, 0, table, "recipe", 30, "d", selection)
    assert "validation_gain" not in plain and plain["test_accuracy"] == 0.66
    assert row["model"] == "distilled, 5 labels per class" and row["train_examples"] == 30
    assert row["validation_gain"] == pytest.approx(0.5)
    assert row["validation_se"] == pytest.approx(0.57735 / 2, rel=1e-4)
    text = results.choices_markdown(pd.DataFrame([plain, row]), ("dataset",))
    line = "| d | distilled, 5 labels per class | 0 | ce:0.5,kd:0.5 (τ=2) | +50.00 ± 28.87 |"
    assert line in text
    assert results.choices_markdown(pd.DataFrame([plain])) == ""


def test_bench_figure_draws_a_study_csv_beside_it(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rows = [
        {"pairing": p, "seed": s, "model": m, "test_accuracy": a + 0.01 * s}
        for p in ("a", "b")
        for s in (0, 1, 2)
        for m, a in (("teacher", 0.9), ("scratch", 0.6), ("distilled", 0.7))
    ]
    path = tmp_path / "study.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert cli.main(["bench", "--figure", str(path)]) == 0
    assert f"written: {tmp_path / 'study.png'}" in capsys.readouterr().out
    from matplotlib.image import imread

    image = imread(tmp_path / "study.png")
    assert image.shape[1] > image.shape[0] > 100  # two panels side by side
    pd.DataFrame(rows).drop(columns="test_accuracy").to_csv(path, index=False)
    assert cli.main(["bench", "--figure", str(path)]) == 2
    assert "has no column 'test_accuracy'" in capsys.readouterr().err


def test_a_study_figure_keeps_its_bar_labels_apart():
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # sst2-transfer's five models: at a fixed 4.2-inch panel their labels ran together.
    models = [
        "teacher member (phrase labels)",
        "teacher (phrase labels)",
        "supervised (phrase labels)",
        "scratch (sentence labels)",
        "distilled (sentence labels + phrases)",
    ]
    for count in (2, 5, 8):
        rows = [
            {"seed": s, "model": f"{m} {i}" if i >= 5 else m, "test_accuracy": 0.8 + 0.01 * s}
            for s in (0, 1)
            for i, m in enumerate((models * 2)[:count])
        ]
        figure = results._study_figure(pd.DataFrame(rows))
        renderer = FigureCanvasAgg(figure).get_renderer()
        boxes = [t.get_window_extent(renderer) for t in figure.axes[0].get_xticklabels()]
        assert len(boxes) == count
        for left, right in itertools.pairwise(boxes):
            assert left.x1 < right.x0, (count, left, right)
        assert all(0 <= b.x0 and b.x1 <= figure.bbox.width for b in boxes)


def test_a_verification_names_both_machines_when_they_differ():
    from kdzoo.verify import Verification

    rows = pd.DataFrame(
        {"key": ["fsdd / 0 / scratch"], "column": ["test_accuracy"], "committed": [0.9],
         "rerun": [0.85], "difference": [-0.05], "ok": [False]}
    )  # fmt: skip
    other = Verification("t.csv", [], rows, 0.01, ("Intel Xeon, 2 CPU cores", results.machine()))
    text = other.format()
    assert "made on Intel Xeon, 2 CPU cores; this machine is " + results.machine() in text
    assert text.endswith("NOT verified")
    same = Verification("t.csv", [], rows, 0.01, (results.machine(), results.machine()))
    assert "note:" not in same.format()


def test_rerun_commands_keep_the_recorded_options_with_one_seed():
    from kdzoo.verify import rerun_command

    assert (
        rerun_command("kdzoo bench fsdd --seeds 0 1 2 --epochs 3 --tiny", 0)
        == "kdzoo bench fsdd --epochs 3 --tiny --seeds 0 --no-keras-peer"
    )
    assert (
        rerun_command("kdzoo bench zoo --seeds 0 1 2 --datasets mnist", 1)
        == "kdzoo bench zoo --datasets mnist --seeds 1"
    )
    with pytest.raises(ValueError, match="only `kdzoo bench` tables"):
        rerun_command("python benchmarks/cli_latency.py", 0)


@pytest.mark.slow
@pytest.mark.requires_data("fsdd")
def test_a_tiny_study_run_twice_gives_identical_numbers(tmp_path):
    """Determinism: seeded everything and op determinism on, the same study twice in one
    process gives the same numbers, to the last bit."""
    from kdzoo.studies import StudyConfig, run_study

    config = StudyConfig(
        seeds=(0,), teacher_epochs=2, epochs=2, out_dir=None, tiny=True, keras_peer=False
    )
    first, _, _ = run_study("fsdd", config)
    second, _, _ = run_study("fsdd", config)
    measured = ["model", "validation_accuracy", "test_accuracy", "test_macro_f1", "epochs"]
    pd.testing.assert_frame_equal(first[measured], second[measured], check_exact=True)
    assert first["op_determinism"].eq("on").all()


@pytest.mark.slow
@pytest.mark.requires_data("fsdd")
def test_verify_reruns_one_seed_and_catches_a_changed_number(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["bench", "fsdd", "--seeds", "0", "1", "--teacher-epochs", "1", "--epochs", "1"]
    assert cli.main([*argv, "--tiny", "--no-keras-peer", "--quiet", "--out-dir", str(out)]) == 0
    table = out / "fsdd.csv"
    written = pd.read_csv(table)
    assert set(FIELDS) <= set(written.columns)
    assert written["command"].iloc[0].startswith("kdzoo bench fsdd --seeds 0 1 --teacher-epochs 1")
    assert cli.main(["bench", "--verify", str(table), "--tolerance", "0", "--quiet"]) == 0
    shown = capsys.readouterr().out
    assert "verified" in shown and "largest accuracy/F1 difference 0.000000" in shown
    # The first seed (its recipe trains the teacher), without the keras.distillation timing.
    assert (
        "rerun: kdzoo bench fsdd --teacher-epochs 1 --epochs 1 --no-keras-peer --tiny --seeds 0\n"
        in shown
    )

    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    rows = pd.read_csv(tampered / "fsdd.csv")
    first_recipe = rows.index[(rows["model"] == "recipe") & (rows["seed"] == 0)][0]
    rows.loc[first_recipe, "test_accuracy"] += 0.05
    rows.to_csv(tampered / "fsdd.csv", index=False)
    assert cli.main(["bench", "--verify", str(tampered / "fsdd.csv"), "--quiet"]) == 1
    shown = capsys.readouterr().out
    assert "NOT verified" in shown and "fsdd / 0 / recipe" in shown and "test_accuracy" in shown


def test_op_determinism_auto_is_on_without_xla_and_a_contradiction_is_refused():
    import dataclasses as dc

    from kdzoo.determinism import op_determinism_enabled, resolve_op_determinism, seed_everything
    from kdzoo.recipe import DistilConfig, check_config

    assert resolve_op_determinism("auto") is True  # this machine: no GPU or TPU
    assert resolve_op_determinism("auto", jit_compile=True) is False  # XLA asked for
    assert resolve_op_determinism(False) is False and resolve_op_determinism(True) is True
    assert seed_everything(0) and op_determinism_enabled()
    assert not seed_everything(0, op_determinism=False) and not op_determinism_enabled()
    with pytest.raises(ValueError, match="exclude each other"):
        check_config(dc.replace(DistilConfig(), op_determinism=True, jit_compile=True))
    with pytest.raises(ValueError, match="op_determinism must be True, False or 'auto'"):
        check_config(dc.replace(DistilConfig(), op_determinism="yes"))


_CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: {name}
flags\t\t: fpu sse4_2 avx {flags}

processor\t: 1
model name\t: another block, not read
"""


@pytest.mark.parametrize(
    "family, model, flags, expected",
    [
        ("25", "1", "avx2 fma", "AMD EPYC (family 25, model 1; AVX2)"),
        ("25", "17", "avx2 avx512f avx512bw", "AMD EPYC (family 25, model 17; AVX-512)"),
        ("6", "143", "avx2 avx512f amx_tile", "AMD EPYC (family 6, model 143; AVX-512, AMX)"),
    ],
)
def test_the_machine_tells_cpus_of_one_name_apart_by_family_and_instructions(
    family, model, flags, expected
):
    text = _CPUINFO.format(vendor="x", family=family, model=model, name="AMD EPYC", flags=flags)
    assert results.cpu_model(text) == expected


def test_the_machine_without_cpu_details_is_its_name_or_the_platforms():
    assert results.cpu_model("model name\t: Some CPU\n") == "Some CPU"
    assert results.cpu_model("") == (platform.processor() or platform.machine())
    assert results.machine().endswith(f", {os.cpu_count()} CPU cores")


def test_benchmark_child_results_round_trip_and_a_failed_child_names_its_output():
    import sys

    from kdzoo.results import child_result, mean_std

    script = "from kdzoo.results import print_result; print('log'); print_result({'a': 1}); "
    assert child_result([sys.executable, "-c", script + "print_result({'a': [2, 3]})"]) == {
        "a": [2, 3]
    }  # the last result line wins; other output is ignored
    with pytest.raises(RuntimeError, match="exited with 3 and a result line:\n.*log"):
        child_result([sys.executable, "-c", script + "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match="exited with 0 and no result line"):
        child_result([sys.executable, "-c", "print('nothing')"])
    assert mean_std([1.0, 2.0, 3.0]) == "2.0 ± 1.0"
    assert mean_std([5.0]) == "5.0 ± 0.0"
    assert mean_std([0.5, 0.25], digits=2) == "0.38 ± 0.18"


def test_weights_digest_tells_bit_identical_weights_from_changed_ones():
    import keras
    import numpy as np

    from kdzoo.results import weights_digest

    def model():
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones")(inputs))

    a, b = model(), model()
    assert weights_digest(a) == weights_digest(b)
    assert len(weights_digest(a)) == 12 and int(weights_digest(a), 16) >= 0
    kernel = b.weights[0]
    kernel.assign(np.nextafter(kernel.numpy(), 2.0))  # one ulp
    assert weights_digest(a) != weights_digest(b)
