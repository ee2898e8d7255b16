"""kdzoo.files: what it writes under a temporary name gets the modes of a plain write."""

import os
import stat

import pytest

from kdzoo.files import NotOwnedError, atomic_file, check_own_files, make_sibling_tmp, replace_dir


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002], ids=["022", "027", "002"])
def test_temporaries_get_the_modes_of_a_plain_write_under_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with atomic_file(tmp_path / "report.md", "w", encoding="utf-8") as f:
            f.write("# report\n")
        tmp = make_sibling_tmp(tmp_path / "bundle")
        with atomic_file(tmp / "serving.json", "w", encoding="utf-8") as f:
            f.write("{}\n")
        bundle = replace_dir(tmp, tmp_path / "bundle", kind="student-bundle")
        (tmp_path / "plain.txt").write_text("x")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "report.md") == 0o666 & ~umask == _mode(tmp_path / "plain.txt")
    assert _mode(bundle / "serving.json") == 0o666 & ~umask
    assert _mode(bundle) == 0o777 & ~umask == _mode(tmp_path / "plain")


def test_replace_dir_refuses_a_file_put_in_the_folder_while_it_wrote(tmp_path):
    dest = make_sibling_tmp(tmp_path / "cache")
    replace_dir(dest, tmp_path / "cache", kind="teacher-cache")
    dest = tmp_path / "cache"
    (dest / "labels.npy").write_bytes(b"old")
    own = {"labels.npy", ".kdzoo-owned"}
    check_own_files(dest, own, "cache_dir", "overwriting")
    tmp = make_sibling_tmp(dest)
    (dest / "notes.txt").write_text("keep me")  # put there while tmp was written
    with pytest.raises(
        NotOwnedError,
        match=r"cache_dir .*cache holds 1 file\(s\) kdzoo did not write there \(notes\.txt\); "
        r"overwriting would replace",
    ):
        replace_dir(
            tmp, dest, kind="teacher-cache", what="cache_dir", own=own, action="overwriting"
        )
    assert (dest / "notes.txt").read_text() == "keep me" and tmp.exists()
