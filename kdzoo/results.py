"""What every results file under ``benchmarks/results/`` shares: a Markdown table, and the
provenance that says what made it.

A results file records, in every CSV row (columns) and in its Markdown (a JSON comment and a
readable line):

- the exact command, the seeds and the date;
- kdzoo's version, the git commit and whether the tree was dirty;
- ``code``: a fingerprint of the code the run used: the ``kdzoo`` modules it imported and
  the benchmark script, as ``ast`` reads them (comments, docstrings and formatting do not
  count). ``code.json`` beside the tables keeps each fingerprint's files and digests;
- the Python, TensorFlow, Keras and NumPy versions;
- the machine (CPU model, family and vector instructions, and cores) and its accelerators;
- whether TensorFlow's op determinism was on.

``stale_tables`` compares each run's files with the code as it is now: a table is stale
when a file it used has changed (``kdzoo bench --stale``; ``STALE.md`` lists the stale ones
and ``make test`` checks the list), and ``kdzoo bench --verify FILE`` reruns one seed of a
table and compares it row by row. A change to a module no table imported stales nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a table is read or made, so that the
    import pandas as pd  # fingerprint helpers serve scripts without it (benchmarks/gpu.py)

#: The folder the committed tables live in, relative to the repository root.
RESULTS_DIR = Path("benchmarks") / "results"
#: ``STALE.md`` in ``RESULTS_DIR`` lists the tables that older code made (``--stale --write``).
STALE_FILE = "STALE.md"
#: ``code.json`` in ``RESULTS_DIR``: each recorded run's files and their digests.
CODE_FILE = "code.json"
#: Files that cannot change a measured number: this module and ``verify`` format tables
#: and check them; the CLI only turns flags into the configs whose command a table
#: records (their defaults live in the measured modules).
UNMEASURED = ("kdzoo/results.py", "kdzoo/verify.py", "kdzoo/cli.py")
_MD_MARK = "<!-- kdzoo-provenance "
_UNRECORDED = "no provenance recorded"
_MD_PATTERN = re.compile(re.escape(_MD_MARK) + r"(\{.*\}) -->")


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a GitHub Markdown table (its columns, then one line per row)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the code
def repository_root() -> Path:
    """The checkout kdzoo is imported from (the folder holding ``kdzoo/``)."""
    return Path(__file__).resolve().parent.parent


def _normalised_source(text: str, path: Path) -> str:
    """``text`` with comments, docstrings and formatting removed (``ast.unparse``), so a
    reworded docstring or a reformat does not make a table stale."""
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise ValueError(f"{path}: cannot fingerprint, not valid Python ({err.msg}).") from err
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def loaded_files(root: str | Path | None = None) -> tuple:
    """The measured files this process has imported: every ``kdzoo`` module in
    ``sys.modules`` (except ``UNMEASURED``) and the running ``benchmarks/`` script, as paths
    relative to ``root``. Called after a run, it names the code that run used."""
    root = Path(root) if root else repository_root()
    paths = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
    paths.append(sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else None)
    found = set()
    for path in filter(None, paths):
        try:
            rel = Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        if rel.endswith(".py") and rel.startswith(("kdzoo/", "benchmarks/")):
            found.add(rel)
    return tuple(sorted(found - set(UNMEASURED)))


def _check_script() -> None:
    """Refuses a benchmark script run from another checkout than the kdzoo it imports: its
    code would be missing from the fingerprint and the commit would be the other one's."""
    if not sys.argv or not sys.argv[0].endswith(".py"):
        return
    script = Path(sys.argv[0]).resolve()
    if script.parent.name == "benchmarks" and script.parent.parent != repository_root():
        raise ValueError(
            f"{script} runs with the kdzoo of {repository_root()}; run the benchmarks of the "
            "checkout kdzoo is imported from (or put that checkout first on PYTHONPATH)."
        )


#: What ``package_files`` leaves out: the tools that format and check results files.
REPORTING = ("kdzoo/results.py", "kdzoo/verify.py")


def package_files(root: str | Path | None = None) -> tuple:
    """Every ``kdzoo/**/*.py`` file but ``REPORTING`` (the CLI included: its own start-up is
    what a CLI benchmark measures) and the running ``benchmarks/`` script. For a benchmark
    whose work runs in child processes, which this process cannot see."""
    root = Path(root) if root else repository_root()
    files = {p.relative_to(root).as_posix() for p in (root / "kdzoo").rglob("*.py")}
    return tuple(sorted((files | set(loaded_files(root))) - set(REPORTING)))


def file_digests(files, root: str | Path | None = None) -> dict:
    """``{file: "<code>/<bytes>"}``: 16 hex digits of each file's code as ``ast`` reads it
    (comments, docstrings and formatting do not count) and 16 of its bytes; ``"missing"``
    for a file that is gone. ``same_file`` compares two."""
    root = Path(root) if root else repository_root()
    out = {}
    for rel in files:
        path = root / rel
        if not path.is_file():
            out[rel] = "missing"
            continue
        raw = path.read_bytes()
        code = _normalised_source(raw.decode("utf-8"), path).encode()
        out[rel] = f"{hashlib.sha256(code).hexdigest()[:16]}/{hashlib.sha256(raw).hexdigest()[:16]}"
    return out


def same_file(then: str, now: str) -> bool:
    """Whether two ``file_digests`` entries are the same code: the same bytes, or the same
    code as ``ast`` reads it. ``ast.unparse`` differs between Python versions, so a file
    left untouched still matches on its bytes under another Python."""
    if then == now:
        return True
    if "missing" in (then, now):
        return False
    code_then, _, bytes_then = then.partition("/")  # older entries hold the code digest only
    code_now, _, bytes_now = now.partition("/")
    return code_then == code_now or bool(bytes_then) and bytes_then == bytes_now


def code_fingerprint(digests: dict) -> str:
    """16 hex digits naming ``digests`` (``file_digests``): the code a run used."""
    text = "\n".join(f"{rel} {digest}" for rel, digest in sorted(digests.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: ``code_fingerprint`` -> its ``file_digests``, for every ``collect`` of this process.
_DIGESTS: dict = {}


def _git(*args, root=None) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root or repository_root(),
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def _dirty(files=("kdzoo", "benchmarks/*.py", "benchmarks/**/*.py")) -> bool:
    status = _git("status", "--porcelain", "--", *files)
    return bool(status)


def _head() -> str | None:
    return _git("rev-parse", "HEAD")


#: The commit checked out when this module was first imported, i.e. when a benchmark
#: started: a run whose checkout moved meanwhile (a commit, a checkout) is marked dirty,
#: since the commit at its end did not make all of it.
_HEAD_AT_START = _head()


# --------------------------------------------------------------------------- provenance
def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU as a table records it, from ``/proc/cpuinfo`` (or the text given): its model
    name, and where the kernel gives them its family and model numbers and the widest
    vector instructions it has (``AMD EPYC (family 25, model 1; AVX2)``).

    A virtual machine may name every generation alike ("AMD EPYC"), yet oneDNN picks its
    kernels by instruction set, so two such machines can sum in another order and train
    to other numbers from the same seed; the family, model and instruction set tell them
    apart. Elsewhere: ``platform.processor()``."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    isa = next((label for flag, label in _VECTOR_ISAS if flag in flags), None)
    if "amx_tile" in flags:
        isa = f"{isa}, AMX" if isa else "AMX"
    ids = [f"{label} {fields[key]}" for key, label in _IDS if key in fields]
    details = "; ".join(part for part in (", ".join(ids), isa) if part)
    return f"{name} ({details})" if details else name


_IDS = (("cpu family", "family"), ("model", "model"))
#: The vector instruction sets oneDNN dispatches on, widest first, as ``/proc/cpuinfo``
#: flags and as a table names them.
_VECTOR_ISAS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"))


def machine() -> str:
    """This machine as a table records it: its CPU (``cpu_model``) and core count."""
    return f"{cpu_model()}, {os.cpu_count()} CPU cores"


def _accelerators() -> str:
    """The accelerators TensorFlow sees (``none``), or ``not checked`` without TensorFlow."""
    if "tensorflow" not in sys.modules:
        return "not checked"
    import tensorflow as tf

    found = []
    for kind in ("GPU", "TPU"):
        devices = tf.config.list_physical_devices(kind)
        if devices:
            found.append(f"{len(devices)} {kind}")
    return ", ".join(found) or "none"


def _op_determinism() -> str:
    if "tensorflow" not in sys.modules:
        return "not checked"
    from tensorflow.python.framework import config

    return "on" if config.is_op_determinism_enabled() else "off"


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


@dataclasses.dataclass(frozen=True)
class Provenance:
    """What made a results file. ``collect`` fills it in; ``columns`` / ``markdown`` write
    it; ``read_provenance`` reads it back."""

    command: str
    seeds: str
    date: str
    kdzoo: str
    commit: str
    dirty: bool
    code: str
    python: str
    tensorflow: str
    keras: str
    numpy: str
    machine: str
    accelerator: str
    op_determinism: str

    @classmethod
    def collect(cls, command: str, seeds=(), *, whole_package: bool = False) -> Provenance:
        """The provenance of a run of ``command`` over ``seeds``, collected after the run in
        the process that ran it. ``code`` covers the measured files it imported
        (``loaded_files``), or every one with ``whole_package`` (a benchmark that works in
        child processes). Write ``record_code`` beside the table, so that ``table_status``
        can tell later whether those files changed."""
        import kdzoo

        _check_script()
        files = package_files() if whole_package else loaded_files()
        digests = file_digests(files)
        code = code_fingerprint(digests)
        _DIGESTS[code] = digests
        commit = _git("rev-parse", "--short=10", "HEAD") or "unknown"
        return cls(
            command=command,
            seeds=" ".join(map(str, seeds)),
            date=time.strftime("%Y-%m-%d"),
            kdzoo=kdzoo.__version__,
            commit=commit,
            # Any change in kdzoo/ or the benchmark scripts, not only in the files this run
            # imported (a module outside the fingerprint may still compute a number), or a
            # checkout that moved during the run.
            dirty=commit != "unknown" and (_dirty() or _head() != _HEAD_AT_START),
            code=code,
            python=platform.python_version(),
            tensorflow=_version("tensorflow"),
            keras=_version("keras"),
            numpy=_version("numpy"),
            machine=machine(),
            accelerator=_accelerators(),
            op_determinism=_op_determinism(),
        )

    def columns(self) -> dict:
        """The fields as CSV columns (one value each)."""
        return dataclasses.asdict(self)

    def line(self) -> str:
        """One readable line for a Markdown file."""
        tree = "dirty tree" if self.dirty else "clean tree"
        return (
            f"Made by `{self.command}` (seeds {self.seeds or '—'}) on {self.date}: kdzoo "
            f"{self.kdzoo} at commit {self.commit} ({tree}, code {self.code}); Python "
            f"{self.python}, TensorFlow {self.tensorflow}, Keras {self.keras}, NumPy "
            f"{self.numpy}; {self.machine}, accelerator: {self.accelerator}; op determinism "
            f"{self.op_determinism}."
        )

    def markdown(self) -> str:
        """A machine-readable comment and the readable line, for the top of a ``.md``."""
        return f"{_MD_MARK}{json.dumps(self.columns(), ensure_ascii=False)} -->\n{self.line()}"


FIELDS = tuple(f.name for f in dataclasses.fields(Provenance))


def with_provenance(frame: pd.DataFrame, made: Provenance) -> pd.DataFrame:
    """``frame`` with ``made``'s fields as columns on every row (replacing any of the same
    name: ``command``, ``commit`` and ``date`` in files written before the other fields
    existed)."""
    out = frame.drop(columns=[c for c in FIELDS if c in frame.columns])
    return out.assign(**made.columns())


def bench_command(study: str, config, *options: str) -> str:
    """The ``kdzoo bench <study>`` line that replays ``config`` (a study's settings with
    ``seeds``, ``teacher_epochs``, ``epochs`` and ``tiny``): the seeds, the study's own
    ``options`` (flags and values), and the budgets only where they are not the defaults."""
    from kdzoo.defaults import DEFAULTS

    parts = [f"kdzoo bench {study} --seeds", *map(str, config.seeds), *options]
    if config.teacher_epochs != DEFAULTS.teacher_epochs:
        parts += ["--teacher-epochs", str(config.teacher_epochs)]
    if config.epochs != DEFAULTS.epochs:
        parts += ["--epochs", str(config.epochs)]
    if config.tiny:
        parts.append("--tiny")
    return " ".join(parts)


def write_study(
    out_dir, name: str, rows: list, command: str, seeds, markdown, figure=None
) -> pd.DataFrame:
    """The end of a study run, in the process that ran it: ``rows`` (one dict per seed and
    model) with the run's provenance as columns; with ``out_dir``, also written there as
    ``<name>.csv`` and ``<name>.md`` (``markdown(per_seed)``), with the code's digests in
    ``code.json``, and ``<name>.png`` when ``figure`` is given (``figure(per_seed, path)``,
    e.g. ``study_figure``; nothing is drawn without matplotlib). Returns the rows as a
    DataFrame."""
    made = Provenance.collect(command, seeds)
    import pandas as pd

    per_seed = pd.DataFrame(rows).assign(**made.columns())
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        record_code(out, made)
        per_seed.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(markdown(per_seed), encoding="utf-8")
        if figure is not None:
            figure(per_seed, out / f"{name}.png")
    return per_seed


def table_row(model, k, seed, table, which, train_examples, dataset, selection=None) -> dict:
    """One per-seed row of a study from a recipe's ``table`` (``RecipeResult.table`` indexed
    by model): row ``which`` (``TEACHER``, ``SCRATCH`` or ``RECIPE``) reported as ``model``,
    with ``k`` labels per class (None: not label-scarce; otherwise appended to the name, the
    key a rerun is matched on) and the training examples it learnt from.

    With ``selection`` (the run's ``RecipeResult.selection``), the row also records the
    recipe's choice on validation: ``validation_gain`` (the best distillation candidate's
    validation accuracy minus the tuned scratch student's) and ``validation_se`` (its
    paired standard error), so a table shows how clear each seed's choice was."""
    row = table.loc[which]
    if k is not None:
        model = f"{model}, {k} labels per class"
    out = {
        "dataset": dataset,
        "labels_per_class": k,
        "seed": seed,
        "model": model,
        "validation_accuracy": float(row["validation_accuracy"]),
        "test_accuracy": float(row["accuracy"]),
        "test_macro_f1": float(row["macro_f1"]),
        "setting": row.get("setting", "") or "",
        "train_examples": int(train_examples),
    }
    return {**out, **selection_columns(selection)}


def selection_columns(selection) -> dict:
    """``validation_gain`` and ``validation_se`` of a recipe's ``Selection`` (empty for
    None: a run without distillation candidates): see ``table_row``."""
    if selection is None:
        return {}
    return {
        "validation_gain": float(selection.gain),
        "validation_se": float(selection.standard_error),
    }


def choices_markdown(per_seed: pd.DataFrame, label_columns=()) -> str:
    """The recipe's choice per distilled row, as a Markdown section: the row's
    ``label_columns`` (e.g. its pairing), seed, chosen setting, and the validation gain of
    the best distillation candidate over tuned scratch ± its standard error (the columns
    ``table_row`` records). Empty when the rows record no choice."""
    if "validation_gain" not in per_seed:
        return ""
    rows = per_seed[per_seed["validation_gain"].notna()]
    if not len(rows):
        return ""
    import pandas as pd

    table = pd.DataFrame(
        {
            **{c: rows[c].astype(str) for c in label_columns},
            "model": rows["model"],
            "seed": rows["seed"],
            "chosen": rows["setting"].fillna("").astype(str),
            "best KD − scratch (validation, points)": [
                f"{100 * g:+.2f} ± {100 * e:.2f}"
                for g, e in zip(rows["validation_gain"], rows["validation_se"], strict=True)
            ],
        }
    )
    return "\n".join(
        [
            "## The recipe's choice per seed",
            "",
            "Validation accuracy of the best distillation candidate minus the tuned scratch "
            "student's, ± its paired standard error; the recipe ships the candidate only "
            "when the gain exceeds one standard error (``distil_margin_se``).",
            "",
            markdown_table(table),
            "",
        ]
    )


def study_figure(per_seed: pd.DataFrame, path, group: str | None = None) -> bool:
    """A study's figure: test accuracy of each model (its rows' order), mean ± std over
    seeds as a bar and each seed as a dot, one panel per value of the ``group`` column
    (e.g. a privileged study's pairings). Written to ``path``; False (nothing written)
    without matplotlib."""
    figure = _study_figure(per_seed, group)
    if figure is None:
        return False
    figure.savefig(path, dpi=FIGURE_DPI)
    return True


FIGURE_DPI = 100
#: Inches a bar takes in a study figure: room for its label, wrapped at 16 characters.
_BAR_INCHES = 1.05


def _study_figure(per_seed: pd.DataFrame, group: str | None = None):
    """``study_figure``'s ``matplotlib.figure.Figure``, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return None
    import textwrap

    groups = list(dict.fromkeys(per_seed[group])) if group else [None]
    parts = [per_seed if v is None else per_seed[per_seed[group] == v] for v in groups]
    bars = max(len(set(part["model"])) for part in parts)
    # Wide enough that the wrapped labels of neighbouring bars do not run into each other.
    panel = max(4.2, _BAR_INCHES * bars + 0.8)
    figure = Figure(figsize=(panel * len(groups), 3.9), dpi=FIGURE_DPI)
    axes = figure.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for ax, value, part in zip(axes, groups, parts, strict=True):
        names = list(dict.fromkeys(part["model"]))
        for i, name in enumerate(names):
            scores = part[part["model"] == name]["test_accuracy"].astype(float)
            ax.bar(i, scores.mean(), yerr=scores.std() if len(scores) > 1 else 0.0,
                   color=f"C{i}", alpha=0.6, capsize=3)  # fmt: skip
            ax.plot([i] * len(scores), scores, "k.", markersize=5)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([textwrap.fill(n, 16) for n in names], fontsize=7)
        if value is not None:
            ax.set_title(str(value), fontsize=9)
    scores = per_seed["test_accuracy"].astype(float)
    axes[0].set_ylim(max(0.0, scores.min() - 0.1), min(1.0, scores.max() + 0.05))
    axes[0].set_ylabel("test accuracy (bar: mean ± std; dots: seeds)")
    figure.tight_layout()
    return figure


def model_kind(model: str, kinds=("teacher", "supervised", "scratch", "distilled")) -> str:
    """The first of ``kinds`` that the model name ``model`` contains (a study's row)."""
    for kind in kinds:
        if kind in model:
            return kind
    raise ValueError(f"model {model!r} is none of {list(kinds)}.")


def read_provenance(path: str | Path) -> list[Provenance]:
    """The provenances a results file records: one per distinct run (a combined table holds
    several). Empty when the file records none (a file made before provenance existed);
    rows without one are counted by ``unrecorded_rows``."""
    path = Path(path)
    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if not set(FIELDS) <= set(frame.columns):
            return []
        runs = frame[frame["command"] != ""][list(FIELDS)].drop_duplicates()
        return [_from_strings(dict(zip(FIELDS, row, strict=True))) for row in runs.to_numpy()]
    found = []
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        match = _MD_PATTERN.search(line)
        if match:
            try:
                fields = json.loads(match.group(1))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: unreadable provenance ({err}).") from err
            found.append(_from_strings(fields))
    return list(dict.fromkeys(found))


def unrecorded_rows(path: str | Path) -> int:
    """Rows of a CSV that record no provenance (kept from a run before kdzoo recorded it),
    or the runs a Markdown file lists without one."""
    path = Path(path)
    if path.suffix != ".csv":  # a combined Markdown table names them (``runs_markdown``)
        return path.read_text(encoding="utf-8").count(_UNRECORDED)
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "command" not in frame.columns or not set(FIELDS) <= set(frame.columns):
        return len(frame)
    return int((frame["command"] == "").sum())


def runs_markdown(frame: pd.DataFrame, label_column: str) -> str:
    """One bullet per run that a combined table's rows come from: the ``label_column``
    values it made, then its provenance (or a note for rows made before kdzoo recorded
    provenance)."""
    frame = frame.reset_index(drop=True)
    present = [f for f in FIELDS if f in frame.columns]
    keys = frame[present].fillna("").astype(str) if present else None
    lines = []
    if keys is None:
        labels = ", ".join(dict.fromkeys(frame[label_column].astype(str)))
        return f"- {labels}: {_UNRECORDED} (made before kdzoo recorded it)"
    run = keys.agg("\x1f".join, axis=1)
    for _, group in frame.groupby(run, sort=False):
        labels = ", ".join(dict.fromkeys(group[label_column].astype(str)))
        fields = keys.loc[group.index[0]].to_dict()
        if not fields.get("command") or set(present) != set(FIELDS):
            lines.append(f"- {labels}: {_UNRECORDED} (made before kdzoo recorded it)")
            continue
        made = _from_strings(fields)
        lines.append(f"- {labels}: " + made.markdown().replace("\n", "\n  "))
    return "\n".join(lines)


def _from_strings(fields: dict) -> Provenance:
    values = {name: fields.get(name, "") for name in FIELDS}
    dirty = values["dirty"]
    values["dirty"] = dirty if isinstance(dirty, bool) else str(dirty).lower() == "true"
    return Provenance(**{k: (v if k == "dirty" else str(v)) for k, v in values.items()})


def script_command(argv: list | None = None) -> str:
    """``python benchmarks/<script>.py <its arguments>`` for the running script (``argv``:
    ``sys.argv``), the command a benchmark script's results file records."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    try:
        shown = script.relative_to(repository_root()).as_posix()
    except ValueError:
        shown = script.name
    return " ".join(["python", shown, *map(shlex.quote, map(str, argv[1:]))])


# --------------------------------------------------------------------------- staleness
@dataclasses.dataclass(frozen=True)
class TableStatus:
    """One results file: ``fresh`` when every run it records was made, from a clean tree,
    by the code as it is now. ``reason`` says why not; ``changed`` names the files that run
    used whose code has changed since."""

    file: str
    fresh: bool
    reason: str
    commits: tuple = ()
    changed: tuple = ()


def results_files(directory: str | Path | None = None) -> list[Path]:
    """Every table under ``directory`` (default: the checkout's ``benchmarks/results``)."""
    directory = Path(directory) if directory else repository_root() / RESULTS_DIR
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".csv", ".md") and p.name != STALE_FILE and p.is_file()
    )


def load_code(directory: str | Path | None = None) -> dict:
    """``code.json`` of ``directory``: ``{fingerprint: {file: digest}}`` for every run its
    tables record."""
    directory = Path(directory) if directory else repository_root() / RESULTS_DIR
    path = directory / CODE_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}).") from err


def record_code(directory: str | Path, *made: Provenance) -> None:
    """Adds the file digests of each ``made`` (collected in this process) to
    ``directory/code.json``, written whole or not at all."""
    directory = Path(directory)
    for run in made:
        if run.code not in _DIGESTS:
            raise ValueError(f"code {run.code} was not collected in this process.")
    with _Locked(directory):
        manifest = load_code(directory)
        for run in made:
            manifest[run.code] = _DIGESTS[run.code]
        _write_json(directory / CODE_FILE, manifest)


def _write_json(path: Path, value) -> None:
    """Writes ``value`` whole or not at all (``kdzoo.files.atomic_file``), with the umask's mode
    as the tables beside it have, not a temporary's 0600."""
    from kdzoo.files import atomic_file

    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(value, indent=1, sort_keys=True) + "\n")


class _Locked:
    """An exclusive lock on ``<directory>/.code.json.lock`` (POSIX), so two benchmarks
    writing ``code.json`` at once do not lose an entry."""

    def __init__(self, directory):
        self.path = Path(directory) / f".{CODE_FILE}.lock"

    def __enter__(self):
        self.file = open(self.path, "a")  # noqa: SIM115 - held until __exit__
        try:
            import fcntl

            fcntl.flock(self.file, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: no lock
            pass
        return self

    def __exit__(self, *exc):
        self.file.close()


def table_status(path: str | Path, code: dict | None = None, root=None) -> TableStatus:
    """Whether the table at ``path`` was made by the code as it is now: every run it
    records, from a clean tree, with each file that run used unchanged since (``code``:
    ``load_code`` of its folder)."""
    path = Path(path)
    code = load_code(path.parent) if code is None else code
    runs = read_provenance(path)
    if not runs:
        # Tables from before provenance name their commit in prose, if at all.
        text = path.read_text(encoding="utf-8", errors="replace")
        named = tuple(dict.fromkeys(re.findall(r"\bcommit ([0-9a-f]{7,40})\b", text)))
        return TableStatus(path.name, False, "records no provenance", named)
    commits = tuple(dict.fromkeys(r.commit for r in runs))
    missing = unrecorded_rows(path)
    if missing:
        return TableStatus(
            path.name, False, f"holds {missing} row(s) without provenance (older runs)", commits
        )
    unmeasured = [r for r in runs if not r.code]
    if unmeasured:
        # e.g. the zoo's rows from before provenance: a command and commit, no fingerprint
        return TableStatus(
            path.name,
            False,
            f"holds rows of {len(unmeasured)} run(s) that recorded no code fingerprint "
            "(made before kdzoo recorded provenance)",
            commits,
        )
    if any(r.dirty for r in runs):
        return TableStatus(path.name, False, "made from a dirty tree", commits)
    pins = pinned_versions(root)
    for run in runs:
        for package, pinned in pins.items():
            recorded = getattr(run, package)
            if recorded != pinned:
                return TableStatus(
                    path.name,
                    False,
                    f"made with {package} {recorded}; {CONSTRAINTS_FILE} now pins {pinned}",
                    commits,
                )
    changed = set()
    for run in runs:
        then = code.get(run.code)
        if then is None:
            return TableStatus(
                path.name, False, f"its code {run.code} is not in {CODE_FILE}", commits
            )
        if code_fingerprint(then) != run.code:
            return TableStatus(
                path.name,
                False,
                f"its {CODE_FILE} entry {run.code} does not match its own fingerprint (the "
                "entry was changed after the run)",
                commits,
            )
        now = file_digests(then, root)
        changed |= {f for f, digest in then.items() if not same_file(digest, now[f])}
    if changed:
        return TableStatus(
            path.name, False, "the code it ran changed since", commits, tuple(sorted(changed))
        )
    return TableStatus(path.name, True, "made by the current code", commits)


#: The pinned versions a table's runs must have used (``pinned_versions``).
CONSTRAINTS_FILE = "constraints.txt"
_PINNED = ("tensorflow", "keras", "numpy")


def pinned_versions(root=None) -> dict:
    """``{package: version}`` of TensorFlow, Keras and NumPy as ``constraints.txt`` (the
    versions ``make`` installs and CI tests) pins them; empty without the file. A table
    made with other versions is stale: an upgrade can move every number."""
    path = Path(root or repository_root()) / CONSTRAINTS_FILE
    if not path.exists():
        return {}
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if name.strip().lower() in _PINNED and version:
            pins[name.strip().lower()] = version.strip()
    return pins


def stale_tables(directory: str | Path | None = None) -> list[TableStatus]:
    """The status of every table in ``directory`` (fresh and stale)."""
    directory = Path(directory) if directory else repository_root() / RESULTS_DIR
    code = load_code(directory)
    return [table_status(p, code) for p in results_files(directory)]


def prune_code(directory: str | Path) -> None:
    """Drops the ``code.json`` entries that no table in ``directory`` records."""
    directory = Path(directory)
    used = {r.code for p in results_files(directory) for r in read_provenance(p)}
    with _Locked(directory):
        manifest = load_code(directory)
        kept = {k: v for k, v in manifest.items() if k in used}
        if kept != manifest:
            _write_json(directory / CODE_FILE, kept)


def declared_stale(directory: str | Path | None = None) -> set[str]:
    """The table names ``STALE.md`` lists (its lines ``- `name` ...``)."""
    directory = Path(directory) if directory else repository_root() / RESULTS_DIR
    path = directory / STALE_FILE
    if not path.exists():
        return set()
    return set(re.findall(r"^- `([^`]+)`", path.read_text(encoding="utf-8"), flags=re.M))


def stale_markdown(statuses: list[TableStatus]) -> str:
    """``STALE.md``: the tables older code made, so a reader never mistakes them for
    current results."""
    stale = [s for s in statuses if not s.fresh]
    lines = [
        "# Tables made by older code",
        "",
        "These results files were not made by the code as it is now (`kdzoo bench --stale`"
        " lists them; `make test` checks this list). Their numbers describe the commit "
        "each records, not `main`; rerun a table's command (in the file) to refresh it.",
        "",
    ]
    if not stale:
        lines.append("None: every table was made by the current code.")
    for status in stale:
        made = f" (made at {', '.join(status.commits)})" if status.commits else ""
        lines.append(f"- `{status.file}`: {status.reason}{made}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- child runs
#: The prefix of the line on which a benchmark's child process prints its result.
RESULT_MARK = "RESULT "


def print_result(result: dict) -> None:
    """Prints ``result`` as a child process's result line (read by ``child_result``)."""
    print(RESULT_MARK + json.dumps(result), flush=True)


def child_result(argv: list, env: dict | None = None) -> dict:
    """Runs ``argv`` (a benchmark's child process, which ends with ``print_result``) and
    returns the JSON of its last result line; a failed child raises with its output."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    lines = [x for x in done.stdout.splitlines() if x.startswith(RESULT_MARK)]
    if done.returncode or not lines:
        raise RuntimeError(
            f"{' '.join(map(str, argv))} exited with {done.returncode} and "
            f"{'no' if not lines else 'a'} result line:\n{done.stdout[-2000:]}"
            f"{done.stderr[-2000:]}"
        )
    return json.loads(lines[-1][len(RESULT_MARK) :])


def weights_digest(model) -> str:
    """12 hex digits of a SHA-256 over ``model``'s weights in order: equal digests, the same
    weights bit for bit."""
    import keras
    import numpy as np

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.asarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:12]


def mean_std(values, digits: int = 1) -> str:
    """``"mean ± std"`` of ``values`` (the sample standard deviation; 0 for one value)."""
    import statistics

    values = list(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


__all__ = [
    "FIELDS",
    "Provenance",
    "TableStatus",
    "CODE_FILE",
    "code_fingerprint",
    "file_digests",
    "load_code",
    "loaded_files",
    "package_files",
    "prune_code",
    "record_code",
    "declared_stale",
    "markdown_table",
    "read_provenance",
    "results_files",
    "script_command",
    "runs_markdown",
    "stale_markdown",
    "stale_tables",
    "table_status",
    "unrecorded_rows",
    "with_provenance",
    "RESULT_MARK",
    "child_result",
    "mean_std",
    "print_result",
    "weights_digest",
]
