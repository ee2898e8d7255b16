import pytest

import kdzoo
from kdzoo import models
from kdzoo.export import export_saved_model, next_version


def test_versions_are_integers_and_never_overwritten(tmp_path):
    student = models.build("audio_crnn")
    first = export_saved_model(student, tmp_path, name="s")
    second = export_saved_model(student, tmp_path, name="s")
    assert (first.name, second.name) == ("1", "2")
    assert (first / "saved_model.pb").exists()
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(student, tmp_path, name="s", version=1)
    assert next_version(tmp_path / "s") == 3


def test_a_failed_export_leaves_no_version_behind(tmp_path, monkeypatch):
    student = models.build("audio_crnn")

    def crash(path, **kwargs):
        with open(f"{path}/saved_model.pb", "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(student, "export", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(student, tmp_path, name="s")
    assert list((tmp_path / "s").iterdir()) == []


def test_a_distiller_exports_its_student_only(tmp_path):
    teacher, student = models.build_pair("av_to_audio")
    distiller = kdzoo.Distiller(teacher=teacher, student=student)
    path = export_saved_model(distiller, tmp_path, name="s")
    size = sum(f.stat().st_size for f in (path / "variables").iterdir())
    # The teacher's float32 weights alone would be 4 * 203,722 bytes; the whole export is
    # a fraction of that.
    assert size < 4 * teacher.count_params() / 3
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    assert len(loaded.variables) == len(student.variables)
    assert not any("image" in v.name for v in loaded.variables)
    with pytest.raises(ValueError, match="plain folder name"):
        export_saved_model(student, tmp_path, name="../escape")
