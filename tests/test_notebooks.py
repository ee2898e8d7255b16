"""Executes the notebooks headless at tiny size (KDZOO_TINY=1)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kdzoo.datasets.root import ENV_VAR, data_root

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: Notebooks that read FSDD and MNIST from the data root (``$KDZOO_DATA_DIR``).
NEEDS_SHARED_DATA = {"colab_tpu.ipynb"}


def test_every_notebook_is_collected():
    assert {"quickstart.ipynb", "colab_tpu.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_end_to_end(path, monkeypatch, tmp_path):
    if path.name in NEEDS_SHARED_DATA and not (data_root() / "fsdd" / "recordings").exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared data at ${ENV_VAR}={data_root()}")
        pytest.skip(f"no shared data at {data_root()}; set ${ENV_VAR}")
    monkeypatch.setenv("KDZOO_TINY", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # what the notebooks write at tiny size
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert NOTEBOOKS and os.path.exists(path)
