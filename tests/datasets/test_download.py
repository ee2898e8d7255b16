"""Dataset downloads, fully offline: a local HTTP server on 127.0.0.1 stands in for the
public sources. Also checks that the pinned checksums are those of the shared data."""

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import time
import zipfile

import numpy as np
import pytest

from kdzoo.datasets import catalog, download, mnist
from kdzoo.datasets.download import ChecksumError, DownloadError, Resource, fetch, install
from kdzoo.datasets.root import (
    ENV_VAR,
    NO_DOWNLOAD_ENV_VAR,
    DataNotFoundError,
    data_root,
    require,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serves files put in ``server.folder`` at ``server.url + name``."""
    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.folder = folder
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing.tar.gz"  # nothing listens: refused at once


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_fetch_verifies_and_shows_progress(server, tmp_path, capsys):
    payload = os.urandom(300_000)
    (server.folder / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    assert fetch(server.url + "blob.bin", dest, sha256=_sha(payload).upper()) == dest
    assert dest.read_bytes() == payload
    progress = capsys.readouterr().err
    assert "blob.bin" in progress and "100%" in progress
    assert _listing(tmp_path) == ["out", "out/blob.bin"]  # no temporary file left
    fetch(server.url + "blob.bin", tmp_path / "quiet.bin", progress=False)
    assert capsys.readouterr().err == ""


def test_checksum_mismatch_names_url_and_hashes_and_leaves_nothing(server, tmp_path):
    (server.folder / "tampered.txt").write_bytes(b"not what was pinned")
    url = server.url + "tampered.txt"
    expected = _sha(b"what was pinned")
    with pytest.raises(ChecksumError) as err:
        fetch(url, tmp_path / "tampered.txt", sha256=expected, progress=False)
    message = str(err.value)
    assert url in message and expected in message and _sha(b"not what was pinned") in message
    assert _listing(tmp_path) == []


def test_unreachable_or_missing_url_fails_fast(server, tmp_path, closed_port_url, monkeypatch):
    started = time.monotonic()
    with pytest.raises(DownloadError, match="127.0.0.1.*not retried"):
        fetch(closed_port_url, tmp_path / "x.tar.gz", progress=False)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url + "absent.txt", tmp_path / "absent.txt", progress=False)
    # Through require: a DataNotFoundError listing the paths, the source and the error.
    monkeypatch.delenv(NO_DOWNLOAD_ENV_VAR, raising=False)
    (fsdd,) = catalog.SOURCES["fsdd"]
    monkeypatch.setitem(catalog.SOURCES, "fsdd", (dataclasses.replace(fsdd, url=closed_port_url),))
    with pytest.raises(DataNotFoundError) as err:
        require("fsdd", ["fsdd/recordings"], "the FSDD GitHub repository", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "fsdd" / "recordings") in message and ENV_VAR in message
    assert "the FSDD GitHub repository" in message and closed_port_url in message
    assert "Download failed" in message and "not retried" in message
    assert time.monotonic() - started < 5
    assert _listing(tmp_path) == ["fsdd"]  # the temporary folder is gone


def _tar_gz(members: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_tar_gz_folder_extraction_checks_the_manifest(server, tmp_path):
    wavs = {"0_a_0.wav": b"RIFF zero", "1_a_0.wav": b"RIFF one"}
    members = {f"repo-1.0/recordings/{k}": v for k, v in wavs.items()}
    members["repo-1.0/recordings/notes.txt"] = b"not a wav"
    members["repo-1.0/README.md"] = b"readme"
    (server.folder / "repo.tar.gz").write_bytes(_tar_gz(members))
    manifest = "".join(f"{name}  {_sha(data)}\n" for name, data in sorted(wavs.items()))
    resource = Resource(
        url=server.url + "repo.tar.gz",
        dest="fsdd/recordings",
        content="manifest",
        content_sha256=_sha(manifest.encode()),
        archive="tar.gz",
        member="recordings",
        strip_components=1,
        pattern="*.wav",
    )
    folder = install(resource, tmp_path, progress=False)
    assert folder == tmp_path / "fsdd" / "recordings"
    assert _listing(tmp_path) == [
        "fsdd",
        "fsdd/recordings",
        *(f"fsdd/recordings/{k}" for k in wavs),
    ]
    assert (folder / "1_a_0.wav").read_bytes() == b"RIFF one"
    # Content that differs from the pinned manifest: an error, and nothing is moved in.
    wrong = dataclasses.replace(resource, dest="other/recordings", content_sha256="0" * 64)
    with pytest.raises(ChecksumError, match="content of other/recordings: expected 0{64}"):
        install(wrong, tmp_path, progress=False)
    assert not (tmp_path / "other" / "recordings").exists()
    assert list((tmp_path / "other").iterdir()) == []
    missing = dataclasses.replace(resource, dest="x/y", member="nope")
    with pytest.raises(DownloadError, match="no 'nope'"):
        install(missing, tmp_path, progress=False)


def test_zip_member_extraction(server, tmp_path):
    text = "ham\tHello ünïcode\nspam\tWIN now\n".encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("SMSSpamCollection", text)
        archive.writestr("readme", b"the corpus readme")
    (server.folder / "sms.zip").write_bytes(buffer.getvalue())
    resource = Resource(
        url=server.url + "sms.zip",
        dest="sms_spam/SMSSpamCollection",
        content_sha256=_sha(text),
        archive="zip",
        member="SMSSpamCollection",
    )
    path = install(resource, tmp_path, progress=False)
    assert path.read_bytes() == text
    assert _listing(tmp_path) == ["sms_spam", "sms_spam/SMSSpamCollection"]


def _idx_gz(magic: int, array: np.ndarray) -> bytes:
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_require_downloads_missing_files_end_to_end(server, tmp_path, monkeypatch):
    """``mnist.load_arrays`` on an empty root fetches the (patched) sources and loads them."""
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    labels = np.array([3, 7])
    served = {
        "t10k-images-idx3-ubyte.gz": _idx_gz(0x803, images),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(0x801, labels),
    }
    patched = []
    for resource in catalog.SOURCES["mnist"]:
        name = resource.dest.split("/")[-1]
        if name in served:
            (server.folder / name).write_bytes(served[name])
            raw = gzip.decompress(served[name])
            resource = dataclasses.replace(
                resource, url=server.url + name, sha256=_sha(served[name]), content_sha256=_sha(raw)
            )
        patched.append(resource)
    monkeypatch.setitem(catalog.SOURCES, "mnist", tuple(patched))
    monkeypatch.delenv(NO_DOWNLOAD_ENV_VAR, raising=False)
    data = mnist.load_arrays("test", root=tmp_path)
    np.testing.assert_array_equal(data["label"], labels)
    np.testing.assert_array_equal(data["image"][..., 0], images.astype(np.float32) / 255.0)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(served)


def test_no_download_env_gives_clear_error_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv(NO_DOWNLOAD_ENV_VAR, "1")
    monkeypatch.setattr(download, "install", pytest.fail)  # must not be reached
    with pytest.raises(DataNotFoundError) as err:
        mnist.load_arrays("test", root=tmp_path)
    message = str(err.value)
    for rel in (mnist.TEST_IMAGES, mnist.TEST_LABELS):
        assert str(tmp_path / rel) in message
    assert "storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz" in message
    assert NO_DOWNLOAD_ENV_VAR in message and ENV_VAR in message
    with pytest.raises(DataNotFoundError, match="Jakobovski.*extract recordings"):
        require("fsdd", ["fsdd/recordings"], "FSDD", root=tmp_path)
    # A dataset without registered sources: the plain message.
    with pytest.raises(DataNotFoundError, match="Get them from somewhere else.$"):
        require("custom", ["custom/x"], "somewhere else", root=tmp_path, download=True)
    assert _listing(tmp_path) == []


RESOURCES = [(name, r) for name, group in catalog.SOURCES.items() for r in group]


@pytest.mark.parametrize(
    "resource",
    [pytest.param(r, marks=pytest.mark.requires_data(r.dest), id=r.dest) for _, r in RESOURCES],
)
def test_pinned_content_hashes_match_the_shared_data(resource):
    path = data_root() / resource.dest
    actual = download.content_sha256(path, resource.content, resource.pattern)
    assert actual == resource.content_sha256, resource.dest
