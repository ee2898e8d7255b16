"""Executes the notebooks headless at tiny size (KDZOO_TINY=1)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: Notebooks that read datasets from the data root (``$KDZOO_DATA_DIR``), and which.
NEEDS_SHARED_DATA = {
    "colab_tpu.ipynb": pytest.mark.requires_data("fsdd", "mnist"),
    "your_own_data.ipynb": pytest.mark.requires_data("sms_spam"),
}


def test_every_notebook_is_collected():
    expected = {"quickstart.ipynb", "colab_tpu.ipynb", "your_own_data.ipynb", "tasks.ipynb"}
    assert expected <= {p.name for p in NOTEBOOKS}


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            id=p.name,
            marks=[NEEDS_SHARED_DATA[p.name]] if p.name in NEEDS_SHARED_DATA else [],
        )
        for p in NOTEBOOKS
    ],
)
def test_notebook_runs_end_to_end(path, monkeypatch, tmp_path):
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
