"""kdzoo installs like a library: version ranges, extras that match the code, a constraints
file inside the ranges, and a wheel that works in a fresh virtual environment."""

import importlib.metadata
import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import kdzoo
from kdzoo import optional

ROOT = Path(__file__).resolve().parents[1]


def _requirements():
    """``(install_requires, {extra: requirements})`` from the installed package's metadata."""
    core, extras = [], {}
    for line in importlib.metadata.requires("kdzoo") or []:
        req = Requirement(line)
        if req.marker is None:
            core.append(req)
            continue
        # Markers of the form `extra == "name"`.
        extra = str(req.marker).split('extra == "')[1].split('"')[0]
        extras.setdefault(extra, []).append(Requirement(f"{req.name}{req.specifier}"))
    return core, extras


def _constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower().replace("_", "-")] = Version(spec.version)
    return pins


def test_requirements_are_ranges_not_pins_and_python_is_3_10_on():
    core, extras = _requirements()
    for req in core + [r for reqs in extras.values() for r in reqs]:
        pinned = [s for s in req.specifier if s.operator in ("==", "===")]
        assert not pinned, f"{req} is an exact pin; exact versions belong in constraints.txt"
    names = {r.name.lower() for r in core}
    assert {"tensorflow", "tensorflow-text", "keras", "numpy", "pandas"} <= names
    # The optional dependencies are not required by the core.
    assert not names & {"matplotlib", "pydub", "tensorflow-serving-api", "pytest"}
    requires_python = importlib.metadata.metadata("kdzoo")["Requires-Python"]
    assert requires_python == ">=3.10"
    # TensorFlow and tensorflow-text move in lockstep: the same tested minor.
    by_name = {r.name.lower(): r.specifier for r in core}
    assert by_name["tensorflow"] == by_name["tensorflow-text"]


def test_every_optional_module_is_installed_by_the_extra_the_error_names():
    _, extras = _requirements()
    assert {"plots", "serving", "tfds", "dev", "all"} <= set(extras)
    for extra, distribution in optional.EXTRAS.values():
        assert distribution in {r.name for r in extras[extra]}, (extra, distribution)
        assert distribution in {r.name for r in extras["all"]}
        assert distribution in {r.name for r in extras["dev"]}  # CI tests every feature


def test_the_constraints_ci_installs_satisfy_every_range():
    pins = _constraints()
    core, extras = _requirements()
    for req in core + extras["dev"]:
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{req.name} is required but not in constraints.txt"
        assert pins[name] in req.specifier, f"constraints.txt has {name}=={pins[name]}, not {req}"


def test_a_missing_extra_is_an_error_naming_it(monkeypatch):
    for module in ("matplotlib", "matplotlib.figure"):  # as if never installed
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(optional.MissingExtraError) as err:
        optional.require("matplotlib.figure", "The report's figure")
    assert str(err.value) == (
        "The report's figure needs matplotlib, which is not installed: "
        "pip install 'kdzoo[plots]' (or pip install matplotlib)."
    )
    assert isinstance(err.value, ImportError)
    assert not optional.available("matplotlib")
    assert optional.available("pydub")  # installed by the dev extra
    with pytest.raises(KeyError, match="not an optional dependency"):
        optional.require("numpy", "anything")


@pytest.mark.slow
def test_a_built_wheel_installs_into_a_fresh_venv_and_runs(tmp_path):
    """Builds the wheel from the tracked sources, installs it into a new venv and runs the
    CLI there. The dependencies come from this environment's site-packages (added after the
    venv's own, so kdzoo is the wheel's), as they would from an index at these versions;
    the optional ones are blocked for the run."""
    tracked = subprocess.run(
        ["git", "ls-files", "kdzoo", "setup.cfg", "pyproject.toml", "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    src = tmp_path / "src"
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes((ROOT / name).read_bytes())
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("kdzoo-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
        metadata = archive.read(
            next(n for n in packed if n.endswith(".dist-info/METADATA"))
        ).decode()
    modules = {n for n in tracked if n.startswith("kdzoo/") and n.endswith(".py")}
    assert modules <= packed, f"not in the wheel: {sorted(modules - packed)}"
    assert "Requires-Python: >=3.10" in metadata
    requires = [
        Requirement(line.removeprefix("Requires-Dist: "))
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    assert requires
    assert not [r for r in requires if any(s.operator == "==" for s in r.specifier)]

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    here = Path(importlib.metadata.distribution("numpy").locate_file(""))
    (site / "zz_dependencies.pth").write_text(f"{here}\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    # The requirements hold in that environment.
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    blocked = sorted(optional.EXTRAS)
    script = (
        "import sys\n"
        f"for m in {blocked!r}: sys.modules[m] = None  # no extra installed\n"
        "import kdzoo, kdzoo.cli\n"
        f"assert kdzoo.__file__.startswith({str(site)!r}), kdzoo.__file__\n"
        "sys.exit(kdzoo.cli.main(sys.argv[1:]))\n"
    )
    env_vars = {"PATH": f"{env / 'bin'}:/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    listed = subprocess.run(
        [python, "-c", script, "list"], capture_output=True, text=True, env=env_vars, cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    assert "image_cnn" in listed.stdout and "fusion_gated" in listed.stdout
    # The console script the wheel installed.
    helped = subprocess.run(
        [env / "bin" / "kdzoo", "--help"],
        capture_output=True,
        text=True,
        env=env_vars,
        cwd=tmp_path,
    )
    assert helped.returncode == 0, helped.stderr
    assert "distil" in helped.stdout and "export" in helped.stdout

    # The Colab notebook's install cell, as on Colab (COLAB_RELEASE_TAG set), from a local
    # copy: pip installs kdzoo[plots] and takes the dependencies already there.
    subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", "kdzoo"], check=True)
    notebook = json.loads((ROOT / "notebooks" / "colab_tpu.ipynb").read_text())
    cell = next(
        "".join(c["source"])
        for c in notebook["cells"]
        if "KDZOO_SOURCE" in "".join(c["source"]) and c["cell_type"] == "code"
    )
    colab = {**env_vars, "COLAB_RELEASE_TAG": "test", "KDZOO_SOURCE": str(src)}
    installed = subprocess.run(
        [python, "-c", cell], capture_output=True, text=True, env=colab, cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.startswith(f"kdzoo {kdzoo.__version__} from {site}"), installed.stdout
