"""Safe output files: recognisable temporary names, stale ones cleaned up, stores swapped in without a gap
that a crash could leave empty, and output locations checked before any work.

Every temporary name neuromod makes next to an output ``NAME`` is ::

    .NAME~neuromod-<pid>-<host>-<random>.<kind>

where ``<pid>`` is the writing process, ``<host>`` eight hex digits of a hash of this machine's name and
``<kind>`` is ``tmp`` (being written) or ``old`` (a store moved aside while its replacement takes its place).
Such a name is provably neuromod's, and provably *stale* when it was made on this machine by a process that
no longer runs. :func:`clean_stale` removes the stale temporaries of one output (the next write of that output
calls it); :func:`recover` puts back a store that a crash left moved aside, with nothing at its path. Names
made on another machine (a shared file system) are never touched: whether their process runs cannot be told
from here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

__all__ = ["check_writable", "clean_stale", "recover", "remove", "swap_into_place", "temporary_name"]

_TAG = "~neuromod-"
_KINDS = ("tmp", "old")


@functools.cache
def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temporary_name(path: str | os.PathLike[str], kind: str = "tmp") -> Path:
    """A fresh name next to `path` for writing it atomically (``kind="tmp"``) or for moving it aside
    (``kind="old"``); see the module docstring for the form. Nothing is created."""
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {_KINDS}")
    path = Path(path)
    return path.with_name(f".{path.name}{_TAG}{os.getpid()}-{_host()}-{secrets.token_hex(4)}.{kind}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


def _leftovers(path: Path) -> Iterator[tuple[Path, str]]:
    """(entry, kind) of the stale temporaries of output `path`: ours, made on this machine, process gone."""
    pattern = re.compile(
        rf"\.{re.escape(path.name)}{re.escape(_TAG)}(\d+)-([0-9a-f]{{8}})-[0-9a-f]{{8}}\.(\w+)"
    )
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and match[3] in _KINDS and match[2] == _host() and not _alive(int(match[1])):
            yield entry, match[3]


def remove(path: Path) -> None:
    """Remove a file or a folder tree; nothing if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (``flock`` on the folder itself: no lock file is made).

    Swaps and recoveries in one folder take turns, so a recovery never mistakes a swap in progress for a
    crash. Where ``flock`` does not exist the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def recover(path: str | os.PathLike[str]) -> bool:
    """Put back the store at `path` if a crash left it moved aside (and nothing at `path`).

    Replacing a store (a folder) takes two renames: the old store to a ``.old`` name, the new one onto
    `path`. A process killed between the two leaves no store at `path`; this renames the old one back (the
    newest, if several). Returns True if it did. Stale temporaries of `path` are removed either way.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return False
    restored = False
    with _locked(path.parent):
        if not os.path.lexists(path):
            olds = [entry for entry, kind in _leftovers(path) if kind == "old" and entry.is_dir()]
            if olds:
                newest = max(olds, key=lambda p: p.stat().st_mtime_ns)
                with contextlib.suppress(OSError):  # a read-only folder: the caller finds no store
                    os.replace(newest, path)
                    restored = True
        clean_stale(path)
    return restored


def clean_stale(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the stale temporaries of output `path` (see the module docstring); return what was removed."""
    removed = []
    for entry, _ in _leftovers(Path(path)):
        try:
            remove(entry)
        except OSError:  # not ours to remove after all (a read-only folder): reading must not fail on it
            continue
        removed.append(entry)
    return removed


def swap_into_place(tmp: Path, path: Path) -> None:
    """Rename the complete `tmp` onto `path`, replacing what is there.

    A file replaces a file in one atomic rename. A folder (zarr store) cannot be renamed onto a non-empty
    one, so the old store is first moved to a ``.old`` name: a crash between the two renames leaves it
    there, and :func:`recover` (called by every later load or write of `path`) puts it back.
    """
    with _locked(path.parent):
        if tmp.is_dir() and path.is_dir() and not path.is_symlink():
            old = temporary_name(path, "old")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            remove(old)
        else:
            os.replace(tmp, path)


def _probe(folder: Path) -> OSError | None:
    """Whether a file can be created in `folder` (tried, then removed); the error if not."""
    probe = temporary_name(folder / "probe")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as err:
        return err
    os.unlink(probe)
    return None


def check_writable(path: str | os.PathLike[str], *, overwrite: bool, store: bool = False) -> Path:
    """Check, before any work, that `path` can be written; return it as a Path.

    Parameters
    ----------
    path : str or path-like
        The output: a file, or a folder-like store (``store=True``, e.g. ``.zarr``).
    overwrite : bool
        Whether something already at `path` may be replaced (for a store: resumed or replaced).
    store : bool, default False
        `path` is a folder-like store rather than a file.

    Raises
    ------
    FileExistsError
        `path` exists and `overwrite` is False.
    IsADirectoryError, NotADirectoryError
        A folder where a file is expected, a file where a store or a folder is expected (also for a file
        on the way to `path`).
    PermissionError
        The folder of `path`, or the folder in which it would be created, does not let a file be made.

    Notes
    -----
    A store left moved aside by a crash is put back first (:func:`recover`), so what exists is judged
    correctly. A folder that does not exist yet is not made here; the check is that it could be.
    """
    path = Path(path)
    recover(path)
    if os.path.lexists(path):
        if not overwrite:
            raise FileExistsError(f"{str(path)!r} exists; pass --overwrite (overwrite=True) to replace it")
        if store and not path.is_dir():
            raise NotADirectoryError(f"{str(path)!r} is a file; a {path.suffix} store is a folder")
        if not store and path.is_dir():
            raise IsADirectoryError(
                f"{str(path)!r} is a folder; expected a file there (remove it or choose another name)"
            )
    folder = path.parent
    missing = None
    while not os.path.lexists(folder):  # the folders still to be made, up to the first that exists
        missing, folder = folder, folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {str(path)!r}: {str(folder)!r} is a file, not a folder")
    err = _probe(folder)
    if err is not None:
        why = err.strerror or type(err).__name__
        if missing is not None:
            raise PermissionError(
                f"cannot write {str(path)!r}: the folder {str(missing)!r} cannot be made in "
                f"{str(folder)!r} ({why})"
            )
        raise PermissionError(
            f"cannot write {str(path)!r}: the folder {str(folder)!r} is not writable ({why})"
        )
    return path
