"""The bad-input policy shared by the loaders.

A loader that meets a bad example (corrupt wav, wrong sample rate, empty text, non-UTF-8
bytes, a label out of range) either raises :class:`BadExampleError` naming the file, line
or row at fault (the default), or, with ``skip_bad=True``, skips it, counts it and logs it.
"""

from __future__ import annotations

import collections
import logging

log = logging.getLogger("kdzoo.data")


class BadExampleError(ValueError):
    """An example in the input data is malformed."""


class BadInputLog:
    """Raises on bad examples, or skips, counts and logs them when ``skip_bad``.

    Args:
        skip_bad: skip bad examples instead of raising. Defaults to False.
        max_logged: log at most this many individual skips (then only the summary).
    """

    def __init__(self, skip_bad=False, max_logged=20):
        self.skip_bad = bool(skip_bad)
        self.max_logged = max_logged
        self.skipped: list[str] = []
        self.reasons = collections.Counter()

    def bad(self, where: str, reason: str, kind: str = "bad example"):
        """Reports one bad example found at ``where`` (file, file:line or row)."""
        message = f"{where}: {reason}"
        if not self.skip_bad:
            raise BadExampleError(f"{message} (pass skip_bad=True to skip and count such examples)")
        self.skipped.append(message)
        self.reasons[kind] += 1
        if len(self.skipped) <= self.max_logged:
            log.warning("Skipping %s", message)

    @property
    def count(self) -> int:
        return len(self.skipped)

    def summarize(self, dataset: str):
        """Logs the number of skipped examples by kind (nothing if none were skipped)."""
        if self.skipped:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.reasons.items()))
            log.warning("%s: skipped %d bad example(s): %s.", dataset, self.count, kinds)


def check_text(text: str, where: str, bad_log: BadInputLog) -> bool:
    """True if ``text`` has a token; reports it otherwise."""
    if not text.strip():
        bad_log.bad(where, "empty or whitespace-only text", "empty text")
        return False
    return True


def read_lines(path, encoding, bad_log: BadInputLog):
    """Yields ``(line_number, text)`` for each non-blank line of ``path`` (1-based).

    ``encoding`` is one codec or a tuple tried in order, each strictly; a line no codec
    decodes is reported with its line number."""
    encodings = (encoding,) if isinstance(encoding, str) else tuple(encoding)
    with open(path, "rb") as f:
        data = f.read()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        for codec in encodings:
            try:
                text = raw.decode(codec)
                break
            except UnicodeDecodeError as err:
                reason = err.reason
        else:
            where, codecs = f"{path}:{number}", "/".join(encodings)
            bad_log.bad(where, f"bytes are not valid {codecs} ({reason})", "encoding")
            continue
        yield number, text
