"""``kdzoo check-export``: validate a serving export the way TF Serving would load it.

Steps, each reported pass/fail:

1. **op report**: the ops ``tensorflow`` alone does not register, as the export's metadata
   lists them, confirmed by the op registry of a process that imported only ``tensorflow``.
2. **fresh-process load**: a new Python process (``kdzoo/serving/fresh_check.py``, run with
   ``python -I``) imports ``tensorflow`` only (plus ``tensorflow_text`` iff step 1 found
   its ops), loads the export and runs ``serving_default`` on real inputs from the data
   root (FSDD wav clips decoded with ``tf.audio.decode_wav``, MNIST test digits encoded as
   PNG, SST-2 test sentences), or on the caller's ``inputs``. kdzoo is never imported
   there. The outputs must be those ``kdzoo_export.json`` declares (keys, dtypes, shapes,
   finite floats) and mean what the task says: probabilities of one class out of K sum to
   1 and ``class_id`` is their argmax (a binary task's: the positive probability above the
   threshold), ``class_name`` names it; multi-label ``labels`` are the probabilities above
   the threshold; regression ``values`` are finite.
3. **saved_model_cli show --all** and 4. **saved_model_cli run** on the same inputs
   (``--inputs key=file.npy``, byte strings as NumPy ``S`` arrays): the TF1 session loader
   TF Serving uses. Its outputs must pass step 2's checks (declared keys, dtypes and
   shapes; what the task's outputs mean), and its float outputs (probabilities, or a
   regression's values) must match step 2's within 1e-5 (relative above 1). The report
   counts the rows whose answers (``class_id``, ``class_name``, ``labels``) are the same.
5. **outputs as exported**: the same process runs ``serving_default`` on the raw inputs of
   ``assets.extra/kdzoo_reference.npz``, which kdzoo wrote at export with the Keras
   student's outputs on them (the live model, the preprocessing's own files, on the CPU in
   full float32); the served float outputs, computed the same way, must be within the
   recorded tolerance (1e-4, relative above 1) of those. A sample check: a changed
   vocabulary asset or variables file, or a runtime that computes otherwise, fails here
   when it changes the outputs of these (at most 4) examples.
6. **warmup replay**: every ``PredictionLog`` of ``assets.extra/tf_serving_warmup_requests``
   runs through the session loader against its signature.
7. **bad inputs**: a wrong dtype, rank or content (NaN samples, a waveform without
   samples, bytes that are no image, empty or non-UTF-8 text) raises an error that says
   what was expected, and the process carries on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import pickletools
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from kdzoo.data.audio import downmix
from kdzoo.serving.export import REFERENCE_TOLERANCE, SERVING_DEFAULT, read_metadata
from kdzoo.serving.fresh_check import max_relative_diff, output_problems
from kdzoo.serving.ops import op_report
from kdzoo.serving.warmup import proto_array, read_warmup

TOLERANCE = 1e-5
_SMCLI = (
    "import sys\n"
    "{imports}"
    "from tensorflow.python.tools.saved_model_cli import main\n"
    "sys.argv[0] = 'saved_model_cli'\n"
    "sys.exit(main())\n"
)


@dataclasses.dataclass
class CheckStep:
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass
class CheckReport:
    """The outcome of ``check_export``: one ``CheckStep`` per step."""

    export_dir: Path
    steps: list
    inputs: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    def step(self, name) -> CheckStep:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"No step {name!r}; steps: {[s.name for s in self.steps]}.")

    def format(self) -> str:
        lines = [f"check-export {self.export_dir}", f"inputs: {self.inputs}"]
        for s in self.steps:
            detail = s.detail.replace("\n", "\n        ")
            lines.append(f"  {'PASS' if s.passed else 'FAIL'}  {s.name}: {detail}")
        lines.append("all checks passed" if self.passed else "SOME CHECKS FAILED")
        return "\n".join(lines)


def _env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _tail(text, n=1200):
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("I0000", "W0000"))]
    return "\n".join(lines)[-n:]


def real_inputs(modalities, data_dir=None, count=2) -> dict:
    """``count`` real raw inputs per modality from the data root, as ``serving_default``
    takes them: ``"audio"`` float32 FSDD waveforms (decoded with ``tf.audio.decode_wav``,
    zero-padded to the longest), ``"image"`` MNIST test digits encoded as PNG, ``"text"``
    SST-2 test sentences (UTF-8). Byte strings are NumPy ``S`` arrays (``saved_model_cli``
    reads those; PNG and text never end in a NUL byte, which ``S`` would drop).

    Raises ``kdzoo.datasets.DataNotFoundError`` if the data root lacks a needed dataset.
    """
    # The only use of kdzoo.datasets in serving, imported here so that exporting does not
    # load the dataset catalogue; check_export(inputs=...) skips it.
    from kdzoo.datasets import fsdd, mnist, sst2
    from kdzoo.datasets.root import require

    out = {}
    if "audio" in modalities:
        clips = [path for path, *_ in fsdd.list_clips(data_dir)[:count]]
        waves = [
            downmix(tf.audio.decode_wav(tf.io.read_file(p), desired_channels=-1)[0]) for p in clips
        ]
        length = max(int(w.shape[0]) for w in waves)
        out["audio"] = np.stack([np.pad(w.numpy(), (0, length - w.shape[0])) for w in waves])
    if "image" in modalities:
        images = mnist.load_arrays("test", root=data_dir)["image"][:count]
        pngs = [tf.io.encode_png(np.round(i * 255).astype(np.uint8)).numpy() for i in images]
        out["image"] = np.array(pngs, dtype="S")
    if "text" in modalities:
        (path,) = require("sst2", [sst2.FILES["test"]], sst2.SOURCE, data_dir)
        texts = sst2.read_split(path)["text"][:count]
        out["text"] = np.array([t.encode("utf-8") for t in texts], dtype="S")
    return out


def _warmup_inputs(export_dir):
    """Fallback inputs: the largest ``serving_default`` request of the warmup file."""
    requests = [
        log.predict_log.request
        for log in read_warmup(export_dir)
        if log.predict_log.request.model_spec.signature_name in ("", "serving_default")
    ]
    if not requests:
        raise ValueError(f"{export_dir}: no serving_default request in the warmup file.")
    request = max(requests, key=lambda r: next(iter(r.inputs.values())).tensor_shape.dim[0].size)
    out = {}
    for key, proto in request.inputs.items():
        value = tf.make_ndarray(proto)
        out[key] = np.array(value.tolist(), dtype="S") if value.dtype == object else value
    return out


def _npy_array(value):
    """``value`` as an array ``np.save`` writes without pickles: strings and bytes as
    NumPy ``S`` (what ``saved_model_cli`` reads)."""
    array = proto_array(value)
    if array.dtype == object:
        array = np.array(array.tolist(), dtype="S")
    return array


def _write_inputs(inputs, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in inputs.items():
        np.save(folder / f"{key}.npy", value, allow_pickle=False)


def _saved_model_cli_command(custom, *args):
    imports = "import tensorflow_text  # registers the export's custom ops\n" if custom else ""
    return [sys.executable, "-I", "-c", _SMCLI.format(imports=imports), *args]


class _Process:
    """A subprocess whose output goes to files (a full pipe cannot stall it while another
    one is being waited on), so the three checks run at once."""

    def __init__(self, command, folder, name):
        self.stdout_path, self.stderr_path = folder / f"{name}.out", folder / f"{name}.err"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.popen = subprocess.Popen(command, stdout=out, stderr=err, env=_env())

    def wait(self, timeout):
        try:
            self.returncode = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            self.returncode = -9
        self.stdout = self.stdout_path.read_text(errors="replace")
        self.stderr = self.stderr_path.read_text(errors="replace")
        if self.returncode == -9:
            self.stderr += f"\ntimed out after {timeout} s"
        return self


def _clear(result) -> bool:
    """A rejected bad input is *clear* if its message says what was expected, or names the
    problem (NaN, image format)."""
    message = result.get("message", "").lower()
    return result.get("raised", False) and any(
        word in message for word in ("expected", "nan", "image file format", "not compatible")
    )


def _real_or_warmup_inputs(report, export_dir, modalities, data_dir, dataset=None, warmup=True):
    from kdzoo.datasets.catalog import NAMES

    if warmup and dataset is not None and dataset not in NAMES:  # your own data's examples
        report.inputs = f"the warmup request's inputs ({dataset}'s examples, taken at export)"
        return _warmup_inputs(export_dir)
    try:
        inputs = real_inputs(modalities, data_dir)
        missing = [m for m in modalities if m not in inputs]  # e.g. a table's columns
        if missing:
            raise FileNotFoundError(f"the data root has no real {', '.join(missing)} inputs")
        report.inputs = "real examples from the data root (" + ", ".join(modalities) + ")"
    except FileNotFoundError as err:  # kdzoo.datasets.DataNotFoundError among them
        reason = str(err).splitlines()[0]
        if not warmup:
            raise FileNotFoundError(
                f"{export_dir} has no warmup file to take inputs from, and {reason}; pass "
                "inputs= (check_export) to check it."
            ) from None
        inputs = _warmup_inputs(export_dir)
        report.inputs = f"the warmup request's inputs (no real data: {reason})"
    return inputs


def check_export(export_dir, data_dir=None, timeout=300, inputs=None) -> CheckReport:
    """Runs the steps of the module docstring on ``export_dir``; never raises for a failed
    check (see ``CheckReport.passed``), for a student of any task kind (classification,
    binary, multi-label, regression). A missing or unreadable ``saved_model.pb`` is one
    failed step naming the file; a missing or damaged ``kdzoo_export.json`` raises
    (``FileNotFoundError``, ``ValueError``), as the folder is then no kdzoo export.

    Args:
        export_dir: a version folder written by ``kdzoo.serving.export_for_serving``.
        data_dir: the data root for real inputs (default ``$KDZOO_DATA_DIR``, else
            ``~/.kdzoo/data``). If it lacks the data, the warmup file's inputs are used and
            the report says so.
        timeout: seconds allowed to each subprocess. Defaults to 300.
        inputs: raw inputs ``{modality: array}`` to run instead of the data root's, as
            ``serving_default`` takes them (byte strings as NumPy ``S`` arrays). Defaults
            to None (``real_inputs``).
    """
    export_dir = Path(export_dir)
    metadata = read_metadata(export_dir)
    report = CheckReport(export_dir, [])
    try:
        ops = op_report(export_dir)
    except (FileNotFoundError, ValueError) as err:  # no graph to load: nothing else can run
        report.inputs = "none (the graph did not load)"
        report.steps.append(CheckStep("read saved_model.pb", False, str(err)))
        return report
    modalities = list(metadata["signatures"][SERVING_DEFAULT]["inputs"])
    if inputs is not None:
        if sorted(inputs) != sorted(modalities):
            raise ValueError(
                f"`inputs` has keys {sorted(inputs)}; {export_dir} reads {sorted(modalities)}."
            )
        inputs = {k: _npy_array(v) for k, v in inputs.items()}
        report.inputs = "the given inputs (" + ", ".join(modalities) + ")"
    else:
        written = (metadata.get("warmup") or {}).get("file")
        inputs = _real_or_warmup_inputs(
            report, export_dir, modalities, data_dir, metadata.get("dataset"), bool(written)
        )

    with tempfile.TemporaryDirectory(prefix="kdzoo-check-") as tmp:
        tmp = Path(tmp)
        _write_inputs(inputs, tmp / "inputs")
        (tmp / "fresh").mkdir()
        script = Path(__file__).with_name("fresh_check.py")
        custom = not ops.portable
        spec = ";".join(f"{k}={tmp / 'inputs' / k}.npy" for k in inputs)
        run_args = ["run", "--dir", str(export_dir), "--tag_set", "serve", "--signature_def"]
        run_args += [SERVING_DEFAULT, "--inputs", spec, "--outdir", str(tmp / "cli")]
        fresh_command = [sys.executable, "-I", str(script), str(export_dir)]
        fresh_command += [str(tmp / "inputs"), str(tmp / "fresh")]
        processes = {
            "fresh": _Process(fresh_command, tmp, "fresh"),
            "show": _Process(
                _saved_model_cli_command(custom, "show", "--all", "--dir", str(export_dir)),
                tmp,
                "show",
            ),
            "run": _Process(_saved_model_cli_command(custom, *run_args), tmp, "run"),
        }
        done = {name: p.wait(timeout) for name, p in processes.items()}
        result_path = tmp / "fresh" / "result.json"
        if done["fresh"].returncode != 0 or not result_path.is_file():
            failure = f"the process failed:\n{_tail(done['fresh'].stderr)}"
            report.steps.append(CheckStep("fresh-process load", False, failure))
            return report
        fresh = json.loads(result_path.read_text(encoding="utf-8"))
        report.steps.append(_op_step(ops, metadata, fresh))
        report.steps.append(_load_step(fresh, metadata, ops))
        report.steps.append(_show_step(done["show"], metadata))
        batch = len(next(iter(inputs.values())))
        cli = _run_step(done["run"], tmp / "cli", tmp / "fresh", metadata, batch)
        report.steps.append(cli)
        report.steps.append(_reference_step(fresh, metadata))
        report.steps.append(_warmup_step(fresh, metadata))
        report.steps.append(_bad_inputs_step(fresh))
    return report


def _op_step(ops, metadata, fresh):
    recorded = sorted(metadata.get("custom_ops", {}))
    seen = sorted(fresh.get("unregistered_ops", []))
    ok = recorded == seen == sorted(ops.custom_ops)
    if not seen:
        detail = "no op outside core TensorFlow: portable (plain tensorflow, any TF Serving)"
    else:
        left = fresh.get("unregistered_after_tensorflow_text", [])
        detail = f"outside core TensorFlow: {', '.join(seen)} (registered by tensorflow_text)"
        if left:
            ok = False
            detail += f"; still unregistered after importing tensorflow_text: {left}"
    if recorded != seen:
        detail += f"; but kdzoo_export.json lists {recorded}"
    return CheckStep("op report", ok, detail)


def _load_step(fresh, metadata, ops):
    if "fatal" in fresh:
        fatal = fresh["fatal"]
        return CheckStep("fresh-process load", False, f"{fatal['type']}: {fatal['message']}")
    default, modules = fresh["default"], fresh["modules"]
    problems = list(default["problems"])
    if modules.get("kdzoo"):
        problems.append("kdzoo was imported")
    if modules.get("tensorflow_text") != (not ops.portable):
        problems.append(f"tensorflow_text imported: {modules.get('tensorflow_text')}")
    expected = sorted(metadata["signatures"])
    if sorted(default["signatures"]) != expected:
        problems.append(f"signatures {sorted(default['signatures'])}, expected {expected}")
    imported = "tensorflow" + (" + tensorflow_text" if modules.get("tensorflow_text") else "")
    detail = (
        f"imports {imported} only (kdzoo: {modules.get('kdzoo')}); serving_default on "
        f"{default['batch']} inputs -> {default['answer']}; signatures "
        f"{', '.join(sorted(default['signatures']))}"
    )
    if problems:
        detail += "; problems: " + "; ".join(problems)
    return CheckStep("fresh-process load", not problems, detail)


def _show_step(proc, metadata):
    missing = [s for s in metadata["signatures"] if f"signature_def['{s}']" not in proc.stdout]
    for name, sig in metadata["signatures"].items():
        missing += [f"{name}/{k}" for k in sig["inputs"] if f"inputs['{k}']" not in proc.stdout]
    ok = proc.returncode == 0 and not missing
    if ok:
        detail = f"lists signatures {', '.join(metadata['signatures'])} and their inputs"
    else:
        detail = f"exit {proc.returncode}; missing {missing}\n{_tail(proc.stderr)}"
    return CheckStep("saved_model_cli show --all", ok, detail)


class _Call:
    """What a pickled call built, kept inert: the stand-in called and its arguments, and
    the state BUILD gave it."""

    def __init__(self, name, args):
        self.name, self.args, self.state = name, args, None

    def __setstate__(self, state):
        self.state = state


def _stand_in(name):
    def call(*args):
        return _Call(name, args)

    return call


class _StringArrayReader(pickle.Unpickler):
    """Reads the pickle ``np.save`` writes for an array of Python objects (``saved_model_cli
    run --outdir`` saves string outputs so) without calling NumPy or anything else: the
    globals it may name (NumPy's array and dtype reconstructors) become inert ``_Call``
    records; any other global is refused."""

    _NAMES = {
        ("numpy", "ndarray"): "ndarray",
        ("numpy", "dtype"): "dtype",
        ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
        ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    }

    def find_class(self, module, name):
        if (module, name) not in self._NAMES:
            raise pickle.UnpicklingError(f"{module}.{name} is not an array part")
        return self._NAMES[module, name] if name == "ndarray" else _stand_in(name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("a persistent id is not an array part")


#: The largest ``.npy`` file of strings read (an output of a few example rows is far less).
MAX_STRINGS_FILE = 16 * 2**20
#: The pickle opcodes ``np.save`` writes for an array of byte strings (protocols 3 and 4),
#: with how often each may occur if not unlimited: no set, dict or big-integer opcode, and
#: no more lists, tuples or calls than that layout has, so a file cannot make the reader
#: build far more than the file holds.
_NP_SAVE_OPCODES = {
    **dict.fromkeys(
        "PROTO FRAME MARK STOP MEMOIZE BINPUT LONG_BINPUT BINGET LONG_BINGET APPEND APPENDS "
        "SHORT_BINBYTES BINBYTES BINBYTES8 BININT BININT1 BININT2 NONE NEWTRUE NEWFALSE "
        "EMPTY_TUPLE".split()
    ),
    **dict.fromkeys("SHORT_BINUNICODE BINUNICODE GLOBAL STACK_GLOBAL".split(), 16),
    **dict.fromkeys("TUPLE TUPLE1 TUPLE2 TUPLE3".split(), 16),
    **dict.fromkeys("REDUCE BUILD".split(), 2),
    "EMPTY_LIST": 1,
}


def _check_opcodes(f, path):
    """Reads the pickle at ``f``'s position without building anything, and refuses an
    opcode ``np.save`` does not write for an array of strings, or too many of one."""
    start, counts = f.tell(), {}
    for opcode, _, _ in pickletools.genops(f):
        limit = _NP_SAVE_OPCODES.get(opcode.name, 0)
        counts[opcode.name] = counts.get(opcode.name, 0) + 1
        if opcode.name not in _NP_SAVE_OPCODES or (limit and counts[opcode.name] > limit):
            raise ValueError(f"{path} holds no array of strings (pickle opcode {opcode.name})")
    f.seek(start)


def load_npy(path) -> np.ndarray:
    """A ``.npy`` file's array, where one of Python objects must be byte strings (a string
    output): its pickle is read without calling NumPy or any other code, must have the
    layout ``np.save`` writes (an object array of the header's shape holding ``bytes``),
    and the array is built here from the items; anything else raises ``ValueError``."""
    try:
        return _load_npy(path)
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path} is no array this check reads ({err})") from None
    except (MemoryError, RecursionError, OverflowError) as err:  # a header of absurd shape
        raise ValueError(f"{path} is no array this check reads ({type(err).__name__})") from None


def _load_npy(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{path} is a .npy file of format {version}, not 1.0 or 2.0")
        read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
        shape, fortran, dtype = read_header(f)
        if not dtype.hasobject:
            return np.load(path, allow_pickle=False)
        if dtype != np.dtype(object) or os.fstat(f.fileno()).st_size > MAX_STRINGS_FILE:
            raise ValueError(f"{path} holds no array of strings ({dtype}, or over 16 MiB)")
        try:
            _check_opcodes(f, path)
            built = _StringArrayReader(f).load()
        except ValueError:
            raise
        except Exception as err:  # noqa: BLE001 - any damaged or foreign pickle
            raise ValueError(f"{path} holds no array of strings ({err})") from None
    state = getattr(built, "state", None)
    if not (isinstance(state, tuple) and len(state) == 5):
        state = (None,) * 5  # no BUILD, or the state of some other object: not the layout
    items = state[4]
    layout = (
        isinstance(built, _Call)
        and built.name == "_reconstruct"
        and built.args == ("ndarray", (0,), b"b")
        and state[:2] == (1, shape)
        and isinstance(state[2], _Call)
        and state[2].args == ("O8", False, True)
        and state[3] == fortran
        and isinstance(items, list)
        and len(items) == int(np.prod(shape))
    )
    if not layout:
        raise ValueError(f"{path} holds no array of strings as np.save writes one")
    if not all(isinstance(item, bytes) for item in items):
        raise ValueError(f"{path} holds objects other than byte strings")
    value = np.empty(len(items), dtype=object)
    value[:] = items
    return value.reshape(shape)  # the items are listed in C order, whatever the layout


def _run_step(proc, cli_dir, fresh_dir, metadata, batch):
    """``saved_model_cli run`` (the session loader TF Serving uses) on ``batch`` examples
    must return the outputs ``kdzoo_export.json`` declares, meaning what the task says
    (``output_problems``, as step 2), with float outputs (probabilities, or a regression's
    values) within ``TOLERANCE`` of the fresh process's, relative above 1."""
    name = "saved_model_cli run"
    declared = metadata["signatures"][SERVING_DEFAULT]["outputs"]
    if proc.returncode != 0 or not all((cli_dir / f"{k}.npy").is_file() for k in declared):
        return CheckStep(name, False, f"exit {proc.returncode}\n{_tail(proc.stderr)}")
    try:
        got = {key: load_npy(cli_dir / f"{key}.npy") for key in declared}
    except (OSError, ValueError) as err:
        return CheckStep(name, False, f"its outputs could not be read: {err}")
    problems = output_problems(got, batch, metadata)
    if problems:
        return CheckStep(name, False, "; ".join(problems))
    try:
        fresh = {key: load_npy(fresh_dir / f"{key}.npy") for key in declared}
    except (OSError, ValueError) as err:
        return CheckStep(name, False, f"no fresh-process outputs to compare (step 2): {err}")
    mismatched = [
        f"{key} has shape {list(got[key].shape)}, {list(fresh[key].shape)} in the fresh process"
        for key in declared
        if got[key].shape != fresh[key].shape
    ]
    if mismatched:
        return CheckStep(name, False, "; ".join(mismatched))
    floats = [key for key, spec in declared.items() if spec["dtype"].startswith("float")]
    diffs = {key: max_relative_diff(got[key], fresh[key]) for key in floats}
    ok = all(diff <= TOLERANCE for diff in diffs.values())  # NaN fails
    shown = ", ".join(f"{key} max |diff| {diff:.1e}" for key, diff in diffs.items())
    answers = [key for key in declared if key not in floats]  # class_id, class_name, labels
    if answers:
        rows = len(got[answers[0]])
        same = np.ones(rows, bool)
        for key in answers:
            equal = got[key] == fresh[key]
            same &= equal.all(axis=tuple(range(1, equal.ndim)))
        shown += f"; {', '.join(answers)} the same on {int(same.sum())} of {rows} rows"
        if not same.all():
            # Both answers follow their own probabilities (checked above); where those
            # agree within TOLERANCE, a row answered otherwise lies at a decision boundary.
            where = " at a decision boundary" if ok else ""
            shown += f" (not on rows {np.flatnonzero(~same).tolist()[:5]}{where})"
    if not ok:
        return CheckStep(name, False, f"differs from the fresh-process run ({shown})")
    return CheckStep(name, True, f"serving_default ran; matches the fresh-process run ({shown})")


def _reference_step(fresh, metadata):
    name = "outputs as exported"
    reference = metadata.get("reference")
    if not reference:
        return CheckStep(
            name,
            False,
            "kdzoo_export.json records no reference outputs (an export by an older kdzoo); "
            "export the student again to check that the saved graph computes what it did",
        )
    if "fatal" in fresh or "reference" not in fresh:
        return CheckStep(name, False, "not reached")
    result = fresh["reference"]
    if "error" in result:
        return CheckStep(name, False, f"{result['error']['type']}: {result['error']['message']}")
    if "file_problem" in result:
        return CheckStep(name, False, result["file_problem"] + "; export the student again")
    tolerance = float(reference.get("tolerance", REFERENCE_TOLERANCE))
    diffs = result["max_diff"]
    if not diffs and not result["problems"]:
        return CheckStep(name, False, "the reference records no float output to compare")
    problems = list(result["problems"])
    problems += [
        f"{key} differs by up to {diff:.1e} (tolerance {tolerance:.0e})"
        for key, diff in diffs.items()
        if not diff <= tolerance  # NaN fails too
    ]
    rows = reference.get("rows", "?")
    kind = "synthetic " if reference.get("examples") == "synthetic" else ""
    which = f"{kind}input" if rows == 1 else f"{rows} {kind}inputs"
    inputs = f"serving_default on the {which} recorded at export"
    shown = ", ".join(f"{key} max |diff| {diff:.1e}" for key, diff in diffs.items())
    detail = f"{inputs} matches the Keras student's outputs ({shown}; tolerance {tolerance:.0e})"
    if problems:
        detail = (
            f"{inputs} does not compute what the Keras student did: "
            + "; ".join(problems)
            + " (was a file of the export changed?)"
        )
    return CheckStep(name, not problems, detail)


def _warmup_step(fresh, metadata):
    skipped = metadata.get("warmup", {}).get("skipped")
    if skipped:  # TF Serving loads a model without warmup requests
        return CheckStep("warmup replay", True, f"no warmup file in this export: {skipped}")
    if "fatal" in fresh or "warmup" not in fresh:
        return CheckStep("warmup replay", False, "not reached")
    warmup = fresh["warmup"]
    if "error" in warmup:
        error = warmup["error"]
        detail = f"{error['type']}: {error['message']}"
        if "tensorflow_serving" in error["message"]:
            detail += " (replaying the warmup needs pip install 'kdzoo[serving]')"
        return CheckStep("warmup replay", False, detail)
    ran = ", ".join(f"{r['signature']} (batch {r['batch']})" for r in warmup["ran"])
    ok = not warmup["problems"] and bool(warmup["ran"])
    detail = f"{len(warmup['ran'])} PredictionLog requests ran in a TF1 session: {ran}"
    if warmup["problems"]:
        detail += "; problems: " + "; ".join(warmup["problems"])
    return CheckStep("warmup replay", ok, detail)


def _bad_inputs_step(fresh):
    if "fatal" in fresh or "bad_inputs" not in fresh:
        return CheckStep("bad inputs", False, "not reached")
    if "error" in fresh["bad_inputs"]:
        error = fresh["bad_inputs"]["error"]
        return CheckStep("bad inputs", False, f"{error['type']}: {error['message']}")
    lines, ok = [], True
    for case in fresh["bad_inputs"]:
        clear = _clear(case)
        ok &= clear
        if case.get("raised"):
            lines.append(f"{case['case']} -> {case['type']}: {case['message'][:160]}")
        else:
            lines.append(f"{case['case']} -> accepted (no error)")
    head = f"{len(fresh['bad_inputs'])} bad inputs rejected with clear errors" if ok else "unclear"
    return CheckStep("bad inputs", ok, head + "\n" + "\n".join(lines))
