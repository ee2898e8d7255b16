"""The steps of ``kdzoo check-export`` that compare saved outputs, on hand-made files: what
``saved_model_cli run`` returned against the fresh process's run."""

import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kdzoo.serving.check import _run_step, load_npy

_NAMES = ["zero", "one", "two"]
_METADATA = {
    "task": {"kind": "classification"},
    "class_names": _NAMES,
    "signatures": {
        "serving_default": {
            "outputs": {
                "probabilities": {"dtype": "float32", "shape": [-1, 3]},
                "class_id": {"dtype": "int64", "shape": [-1]},
                "class_name": {"dtype": "string", "shape": [-1]},
            }
        }
    },
}


def _outputs(probs, ids=None):
    probs = np.asarray(probs, np.float32)
    ids = probs.argmax(-1) if ids is None else np.asarray(ids)
    names = np.array([_NAMES[i].encode() for i in ids], dtype=object)  # as TF returns them
    return {"probabilities": probs, "class_id": ids.astype(np.int64), "class_name": names}


def _step(tmp_path, cli, fresh, returncode=0):
    for name, outputs in (("cli", cli), ("fresh", fresh)):
        (tmp_path / name).mkdir(parents=True)
        for key, value in outputs.items():
            np.save(tmp_path / name / f"{key}.npy", value)  # string outputs pickled, as there
    proc = subprocess.CompletedProcess([], returncode, "", "saved_model_cli: some error")
    return _run_step(proc, tmp_path / "cli", tmp_path / "fresh", _METADATA, len(cli["class_id"]))


_PROBS = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]


def test_the_session_loader_outputs_match_the_fresh_run(tmp_path):
    step = _step(tmp_path, _outputs(_PROBS), _outputs(_PROBS))
    assert step.passed, step.detail
    assert "probabilities max |diff| 0.0e+00" in step.detail
    assert "class_id, class_name the same on 2 of 2 rows" in step.detail


def test_session_loader_answers_are_checked_as_the_fresh_ones(tmp_path):
    step = _step(tmp_path, _outputs(_PROBS, ids=[0, 1]), _outputs(_PROBS))
    assert not step.passed
    assert "class_id is not the most probable class: row 1 has class_id 1" in step.detail


def test_session_loader_probabilities_must_match(tmp_path):
    cli = _outputs(np.array(_PROBS) + [[-1e-3, 1e-3, 0], [0, 0, 0]])
    step = _step(tmp_path, cli, _outputs(_PROBS))
    assert not step.passed
    assert "differs from the fresh-process run (probabilities max |diff| 1.0e-03" in step.detail


def test_an_answer_at_a_decision_boundary_may_differ(tmp_path):
    fresh = [[0.4999990, 0.5000010, 0.0], [0.1, 0.3, 0.6]]
    cli = [[0.5000005, 0.4999995, 0.0], [0.1, 0.3, 0.6]]  # within 1e-5, the argmax flips
    step = _step(tmp_path, _outputs(cli), _outputs(fresh))
    assert step.passed, step.detail
    assert "the same on 1 of 2 rows (not on rows [0] at a decision boundary)" in step.detail


def test_a_class_id_beside_a_near_tie_must_be_one_of_the_tied(tmp_path):
    tied = [[0.4999996, 0.5000004, 0.0], [0.1, 0.3, 0.6]]
    step = _step(tmp_path, _outputs(tied, ids=[2, 2]), _outputs(tied))
    assert not step.passed
    assert "class_id is not the most probable class: row 0 has class_id 2" in step.detail
    # Either tied class is a right answer.
    assert _step(tmp_path / "0", _outputs(tied, ids=[0, 2]), _outputs(tied)).passed


def test_outputs_of_another_shape_than_the_fresh_runs_fail_the_step(tmp_path):
    fresh = _outputs(_PROBS + [[0.2, 0.2, 0.6]])
    step = _step(tmp_path, _outputs(_PROBS), fresh)
    assert not step.passed
    assert "probabilities has shape [2, 3], [3, 3] in the fresh process" in step.detail


def test_an_empty_batch_is_compared(tmp_path):
    empty = _outputs(np.zeros((0, 3)))
    step = _step(tmp_path, empty, empty)
    assert step.passed, step.detail
    assert "the same on 0 of 0 rows" in step.detail


@pytest.mark.parametrize("missing", [True, False], ids=["no-output-file", "exit-1"])
def test_a_failed_session_run_fails_the_step(tmp_path, missing):
    cli = _outputs(_PROBS)
    if missing:
        del cli["class_name"]
    step = _step(tmp_path, cli, _outputs(_PROBS), returncode=0 if missing else 1)
    assert not step.passed
    assert step.detail.startswith(f"exit {0 if missing else 1}")


class _Planted:
    def __reduce__(self):
        return (os.getcwd, ())  # harmless here; any callable would be refused the same way


def test_load_npy_reads_arrays_and_byte_strings_only(tmp_path):
    np.save(tmp_path / "floats.npy", np.eye(2, dtype=np.float32))
    np.save(tmp_path / "names.npy", np.array([b"a", b"b\x00"], dtype=object))
    np.save(tmp_path / "planted.npy", np.array([_Planted()], dtype=object))
    np.save(tmp_path / "numbers.npy", np.array([1, "a"], dtype=object))
    assert load_npy(tmp_path / "floats.npy").dtype == np.float32
    assert load_npy(tmp_path / "names.npy").tolist() == [b"a", b"b\x00"]
    with pytest.raises(ValueError, match=r"planted\.npy .*\(pickle opcode REDUCE\)"):
        load_npy(tmp_path / "planted.npy")  # a third call: np.save's layout makes two
    np.save(tmp_path / "named.npy", np.array([os.getcwd], dtype=object))  # a global, no call
    with pytest.raises(ValueError, match=r"named\.npy .*posix\.getcwd is not an array part"):
        load_npy(tmp_path / "named.npy")
    with pytest.raises(ValueError, match=r"numbers\.npy holds objects other than byte strings"):
        load_npy(tmp_path / "numbers.npy")
    Path(tmp_path / "bad.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError):
        load_npy(tmp_path / "bad.npy")


class _Forged:
    def __reduce__(self):  # an object array over raw bytes: would be read as pointers
        return (np.ndarray, ((1,), np.dtype("O"), b"A" * 8))


def test_load_npy_calls_no_numpy_constructor_a_file_names(tmp_path):
    np.save(tmp_path / "forged.npy", np.array([_Forged()], dtype=object))
    with pytest.raises(ValueError, match=r"forged\.npy holds no array of strings"):
        load_npy(tmp_path / "forged.npy")
    # Nothing np.save writes for strings builds a set (a set of colliding keys is slow).
    np.save(tmp_path / "sets.npy", np.array([{1, 2}], dtype=object))
    with pytest.raises(ValueError, match=r"sets\.npy .*\(pickle opcode EMPTY_SET\)"):
        load_npy(tmp_path / "sets.npy")
    # A header of 3 strings over a pickle of 2: not the layout np.save writes.
    with open(tmp_path / "short.npy", "wb") as f:
        header = {"descr": "|O", "fortran_order": False, "shape": (3,)}
        np.lib.format.write_array_header_1_0(f, header)
        pickle.dump(np.array([b"a", b"b"], dtype=object), f, protocol=3)
    with pytest.raises(ValueError, match=r"short\.npy holds no array of strings as np\.save"):
        load_npy(tmp_path / "short.npy")
    names = np.asfortranarray(np.array([[b"1", b"2"], [b"3", b"4"]], dtype=object))
    np.save(tmp_path / "fortran.npy", names)
    assert load_npy(tmp_path / "fortran.npy").tolist() == names.tolist()


class _Unbuilt:
    def __reduce__(self):  # np.save's call, with no state given to it
        return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"))


class _IntState:
    def __reduce__(self):  # np.save's call, given a state that is no array's
        return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"), 7)


@pytest.mark.parametrize("cls", [_Unbuilt, _IntState], ids=["no-state", "int-state"])
def test_load_npy_names_the_file_when_the_array_call_has_no_array_state(tmp_path, cls):
    path = tmp_path / "odd.npy"
    with open(path, "wb") as f:
        header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
        np.lib.format.write_array_header_1_0(f, header)
        pickle.dump(cls(), f, protocol=3)
    with pytest.raises(ValueError, match=r"odd\.npy holds no array of strings as np\.save"):
        load_npy(path)
