"""Helpers every results file under ``benchmarks/results/`` shares: a Markdown table, and
the provenance (command, commit, date) each file records."""

from __future__ import annotations

import subprocess
import time

import pandas as pd


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a GitHub Markdown table (its columns, then one line per row)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def commit_id() -> str:
    """The short git commit of the working tree, ``+ local changes`` if ``kdzoo/`` differs
    from it; ``"unknown"`` outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "kdzoo"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + (" + local changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(command: str) -> str:
    """One line: the command, the commit (``+ local changes`` if the tree differs) and date."""
    return f"`{command}` at commit {commit_id()}, {time.strftime('%Y-%m-%d')}"
