"""``kdzoo bench --verify FILE``: rerun one seed of a committed table and compare it row by
row; ``kdzoo bench --stale``: which tables the code as it is now did not make.

A table's command is in its provenance (``kdzoo.results``), so the rerun is that command
with one seed, written to a temporary folder. Which seed:

- a study (``kdzoo bench <study>``, ``default-recipe``): the run's first seed. Its recipe
  trains the teacher that the later seeds reuse, so it is the one seed a rerun can repeat
  alone;
- ``kdzoo bench zoo``: every seed trains its models alone, so the cheapest one (fewest
  seconds);
- ``kdzoo bench label-scarce`` and ``sst2-transfer``: the first seed, whose run trains the
  teacher.

Rows are matched on their keys (dataset or setting, seed, model) and compared on every
measured column: accuracies and F1 within ``tolerance``; parameters, epochs and the chosen
setting exactly. Timings are not compared. On the machine and software that made a table,
kdzoo's runs repeat bit for bit (``benchmarks/determinism.py``), so any difference there
means the code changed what it measures. On another CPU model the kernels round differently
and training may amplify it: ``label-scarce``, rerun on an AMD EPYC instead of the Intel
Xeon that made it, at a later commit whose changes left its models, data, initial weights
and training loop as they were (checked), moved single seeds by up to 11 points on its
500-clip test speaker (scratch on a few labels stayed identical). The ``tolerance`` admits
rounding, not that; the report names both machines when they differ.
"""

from __future__ import annotations

import dataclasses
import shlex
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from kdzoo.results import FIELDS, read_provenance

#: Largest accepted absolute difference of an accuracy or F1 (one point).
DEFAULT_TOLERANCE = 0.01
_CLOSE = (
    "validation_accuracy",
    "validation_agreement",
    "validation_f1",
    "test_accuracy",
    "test_macro_f1",
    "test_f1",
    "test_r2",
    "test_macro_roc_auc",
)
_EXACT = ("params", "epochs", "chosen", "setting")
#: ``kdzoo bench`` commands that time no ``keras.distillation`` run.
_NO_KERAS_PEER = (
    "zoo",
    "label-scarce",
    "sst2-transfer",
    "privileged",
    "fusion-strong-teacher",
    "tabular-views",
    "tasks",
)


@dataclasses.dataclass
class Verification:
    """The outcome of ``verify``: ``rows`` (one per compared value: key, column, committed,
    rerun, difference, ok), the commands rerun, and whether every value held."""

    file: str
    commands: list
    rows: pd.DataFrame
    tolerance: float
    machines: tuple = ()

    @property
    def passed(self) -> bool:
        return bool(len(self.rows)) and bool(self.rows["ok"].all())

    def format(self) -> str:
        from kdzoo.results import markdown_table

        bad = self.rows[~self.rows["ok"]]
        close = self.rows[self.rows["column"].isin(_CLOSE)]
        largest = float(close["difference"].abs().max()) if len(close) else 0.0
        lines = [
            f"{self.file}: {len(self.rows)} values compared, {len(bad)} outside tolerance "
            f"({self.tolerance:g} on accuracies and F1, exact on params, epochs and the "
            f"chosen setting); largest accuracy/F1 difference {largest:.6f}.",
            *(f"  rerun: {c}" for c in self.commands),
        ]
        if len(bad):
            lines += ["", markdown_table(bad.drop(columns="ok"))]
        made, here = self.machines or (None, None)
        if made and made != here:
            lines.append(
                f"note: the table was made on {made}; this machine is {here}. Another CPU "
                "rounds differently and training amplifies it, so differences beyond the "
                "tolerance may be the machine's, not the code's."
            )
        lines.append("verified" if self.passed else "NOT verified")
        return "\n".join(lines)


def _key_column(frame: pd.DataFrame) -> str:
    return "setting" if "role" in frame.columns else "dataset"


def _rerun_seed(rows: pd.DataFrame, command: str) -> int:
    if shlex.split(command)[2] == "zoo":
        seconds = rows.groupby("seed")["seconds"].sum()
        return int(seconds.idxmin())
    return int(str(rows["seeds"].iloc[0]).split()[0])


def rerun_command(command: str, seed: int) -> str:
    """``command`` (a ``kdzoo bench`` line) for ``seed`` only, without the
    ``keras.distillation`` timing (not compared)."""
    words = shlex.split(command)
    if words[:2] != ["kdzoo", "bench"] or len(words) < 3:
        raise ValueError(
            f"only `kdzoo bench` tables can be rerun; this one was made by {command!r}"
        )
    words = _without(words, "--seeds") + ["--seeds", str(seed)]
    if words[2] not in _NO_KERAS_PEER and "--no-keras-peer" not in words:
        words.append("--no-keras-peer")
    return " ".join(words)


def _without(words: list, flag: str) -> list:
    """``words`` without ``flag`` and the values after it."""
    if flag not in words:
        return list(words)
    start = words.index(flag)
    end = start + 1
    while end < len(words) and not words[end].startswith("--"):
        end += 1
    return words[:start] + words[end:]


def verify(
    path: str | Path,
    rerun,
    *,
    only: tuple | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Verification:
    """Reruns one seed of each run that the table at ``path`` records (``only``: just these
    datasets or settings) and compares its rows with the committed ones.

    ``rerun(command, out_dir)`` runs a ``kdzoo bench`` command line with ``--out-dir
    out_dir`` and returns the CSV it wrote (``kdzoo bench --verify`` passes the CLI's)."""
    path = Path(path)
    if path.suffix != ".csv":
        raise ValueError(
            f"{path}: --verify compares per-seed rows, which only a .csv holds; rerun the "
            "command a .md names to refresh it."
        )
    if not read_provenance(path):
        raise ValueError(f"{path}: records no provenance, so there is no command to rerun.")
    committed = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if not {"seed", "model"} <= set(committed.columns):
        raise ValueError(
            f"{path}: --verify compares rows by seed and model, which this table does not "
            "have; rerun its command to refresh it."
        )
    key = _key_column(committed)
    if only:
        unknown = sorted(set(only) - set(committed[key]))
        if unknown:
            have = sorted(set(committed[key]))
            raise ValueError(f"{path}: no rows for {unknown}; it has {have}.")
        committed = committed[committed[key].isin(only)]
    unrecorded = sorted(set(committed[committed["command"].isna()][key]))
    if unrecorded:
        raise ValueError(
            f"{path}: the rows of {unrecorded} record no provenance, so there is no command "
            "to rerun; regenerate them first."
        )
    compared, commands = [], []
    for command, rows in committed.groupby("command", sort=False):
        rerun_command(command, 0)  # a `kdzoo bench` command, or a clear error
        seed = _rerun_seed(rows, command)
        # A command that made several datasets or settings reruns one at a time.
        several = shlex.split(command)[2] in ("zoo", "default-recipe")
        for name in dict.fromkeys(rows[key]):
            line = _with_datasets(command, [name]) if several else command
            line = rerun_command(line, seed)
            with tempfile.TemporaryDirectory(prefix="kdzoo-verify-") as tmp:
                fresh = pd.read_csv(rerun(line, Path(tmp)))
            commands.append(line)
            compared.append(_compare(rows[rows[key] == name], fresh, seed, key, tolerance))
    from kdzoo.results import machine

    made = ", ".join(sorted({p.machine for p in read_provenance(path)}))
    here = machine()
    rows = pd.concat(compared, ignore_index=True)
    return Verification(str(path), commands, rows, tolerance, (made, here))


def _with_datasets(command: str, names: list) -> str:
    return " ".join([*_without(shlex.split(command), "--datasets"), "--datasets", *names])


def _compare(committed, fresh, seed, key, tolerance) -> pd.DataFrame:
    committed = committed[committed["seed"].astype(int) == seed]
    fresh = fresh[fresh["seed"].astype(int) == seed]
    if not committed["model"].astype(str).str.startswith("candidate").any():
        # A combined table (default-recipe.csv) keeps teacher, scratch and recipe rows only.
        fresh = fresh[~fresh["model"].astype(str).str.startswith("candidate")]
    index = [key, "seed", "model"]
    old = committed.set_index(index)
    new = fresh.set_index(index)
    out = []
    for row_key in old.index:
        label = " / ".join(map(str, row_key))
        if row_key not in new.index:
            out.append(_row(label, "row", "present", "missing", np.nan, False))
            continue
        for column in (*_CLOSE, *_EXACT):
            if column not in old.columns or column in FIELDS:
                continue
            a, b = old.at[row_key, column], new.at[row_key, column] if column in new else np.nan
            if column in _CLOSE:
                a, b = float(a), float(b)
                if np.isnan(a) and np.isnan(b):
                    continue
                diff = b - a
                ok = bool(abs(diff) <= tolerance)
                out.append(_row(label, column, a, b, diff, ok))
            else:
                same = (pd.isna(a) and pd.isna(b)) or str(a) == str(b) or _same_number(a, b)
                out.append(_row(label, column, a, b, np.nan, bool(same)))
    for row_key in new.index.difference(old.index):
        out.append(_row(" / ".join(map(str, row_key)), "row", "missing", "present", np.nan, False))
    return pd.DataFrame(out)


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _row(label, column, committed, rerun, difference, ok) -> dict:
    return {
        "row": label,
        "column": column,
        "committed": committed,
        "rerun": rerun,
        "difference": difference,
        "ok": ok,
    }


__all__ = ["DEFAULT_TOLERANCE", "Verification", "rerun_command", "verify"]
