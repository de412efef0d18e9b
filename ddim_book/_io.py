"""Atomic file writes (a reader sees the old file or the complete new one, never a torn one), and reading the JSON
records the cache scripts keep."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable, binary: bool = True) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk and rename it over ``path``.

    ``os.replace`` is atomic within one file system. On any error (or Ctrl-C) the temporary file is removed
    and an existing ``path`` is left untouched. The file gets the mode a plain ``open`` would give it
    (0o666 less the umask), not mkstemp's private 0o600. A process killed outright (SIGKILL) can leave
    the temporary ``.NAME.*.tmp`` behind; :func:`remove_stale_temps` clears such leftovers.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that an atomic write of ``path`` left when it was killed; returns them."""
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a text file (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode()))


def read_json_record(path: str | os.PathLike, rebuild: str, field: str, kind: type, empty: dict | None = None) -> dict:
    """The JSON record at ``path``, or a copy of ``empty`` ({} by default) when there is none.

    A file that is not JSON, not an object, or whose ``field`` (when present) is not a ``kind`` stops the run
    with one line naming the command that rebuilds it: ``error: PATH is corrupt (...); ... with: REBUILD``.
    """
    path = Path(path)
    if not path.exists():
        return dict(empty or {})
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not isinstance(record.get(field, kind()), kind):
            raise ValueError(f"not a record with a {kind.__name__} of {field!r}")
        return record
    except (ValueError, UnicodeDecodeError) as err:
        raise SystemExit(f"error: {path} is corrupt ({err}); delete it and rebuild it with: {rebuild}") from None
