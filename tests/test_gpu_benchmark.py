"""benchmarks/gpu.py runs on JAX with neither TensorFlow nor pandas importable (as on the
lent GPU machine), and writes one finite row per (pair, setting) with kdzoo's provenance.

The script writes ``kdzoo.results``' provenance itself (that module imports pandas); the test
reads it back with ``kdzoo.results``, so the two cannot drift apart."""

import csv
import itertools
import math
from pathlib import Path

import pytest
from helpers import run_python

from kdzoo.results import code_fingerprint, file_digests, load_code, read_provenance

pytest.importorskip("jax")

ROOT = Path(__file__).parents[1]
SCRIPT = "benchmarks/gpu.py"
VARIANTS = ("student", "online", "cached")

#: Runs the script with every ``tensorflow*`` and ``pandas`` import failing, as where they
#: are not installed; the script's arguments follow ``-c``.
WITHOUT_TENSORFLOW = f"""
import importlib.abc, runpy, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top.startswith("tensorflow") or top == "pandas":
            raise ModuleNotFoundError(f"{{fullname}} is blocked: {SCRIPT} must run without it")

sys.meta_path.insert(0, Blocked())
sys.argv = [{SCRIPT!r}, *sys.argv[1:]]
runpy.run_path({SCRIPT!r}, run_name="__main__")
"""


@pytest.mark.slow
def test_tiny_gpu_benchmark_runs_without_tensorflow_or_pandas(tmp_path):
    out = tmp_path / "results"
    proc = run_python(
        ["-c", WITHOUT_TENSORFLOW, "--tiny", "--out-dir", out],
        cwd=ROOT,
        env={
            "KERAS_BACKEND": "jax",
            "JAX_PLATFORMS": "cpu",
            # Eager steps compile each op once: unoptimised XLA halves the run (speed is
            # not what this test checks).
            "XLA_FLAGS": "--xla_backend_optimization_level=0",
        },
        timeout=300,
        check=True,
    )
    with open(out / "gpu.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    settings = [(r["pair"], r["precision"], r["jit_compile"]) for r in rows]
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    assert "image_cnn_large" in pairs and len(pairs) >= 2
    expected = itertools.product(pairs, ("float32", "mixed_bfloat16"), ("True", "False"))
    assert sorted(settings) == sorted(expected)
    for row in rows:
        for variant in VARIANTS:
            value = float(row[f"{variant}_steps_per_s"])
            assert math.isfinite(value) and value > 0, (row["pair"], variant, value)
        assert row["tensorflow_imported"] == row["pandas_imported"] == "False"
    markdown = (out / "gpu.md").read_text(encoding="utf-8")
    for pair in pairs:
        assert f"| {pair} | mixed_bfloat16 | True |" in markdown
    goals = markdown.split("## Goals", 1)[1].split("##", 1)[0]
    assert goals.count("**met**") + goals.count("**missed**") == 2
    assert proc.stdout.startswith("# kdzoo on Keras's JAX backend")

    (made,) = read_provenance(out / "gpu.md")
    assert read_provenance(out / "gpu.csv") == [made]
    assert made.command == f"python {SCRIPT} --tiny --out-dir {out}"
    assert "cpu" in made.accelerator and made.keras != "not installed"
    digests = load_code(out)[made.code]
    assert {SCRIPT, "kdzoo/distillation/distiller.py"} <= set(digests)
    assert file_digests(digests) == digests
    assert code_fingerprint(digests) == made.code
