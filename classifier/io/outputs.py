"""Output files that cannot destroy data: checked against the inputs, locked, written aside.

``threadguard parse`` and ``score`` write their ``--output`` and ``--errors`` files through
:func:`output_file`, so that

- an output that is one of the inputs, or lies inside an input folder, is refused by
  :func:`check_outputs` before anything is opened (opening it for writing would empty
  the input, or the run would read its own growing output without end);
- a second run writing the same path at the same time is refused (a lock file beside the
  target, ``.<name>.lock``, held with ``flock`` for the run) instead of interleaving
  with the first;
- the rows go to a temporary file beside the target (``.<name>.<random>.part``, hidden, so
  a folder read later skips it), renamed over the target only when the run ends well:
  a run that fails or is interrupted leaves the target as it was and removes the part;
- a write that fails (disk full, permission denied, a missing folder) is one
  :class:`OutputError` naming the path and the problem, which the command line prints
  as one line with a non-zero exit, instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

logger = logging.getLogger(__name__)

try:  # POSIX; elsewhere the lock is an exclusive create (see _Lock)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class OutputError(Exception):
    """An output that is refused or cannot be written; the message is one line for the user."""


def is_stdout(output: str | Path | None) -> bool:
    """Whether ``output`` means standard output (``None`` or ``-``)."""
    return output is None or str(output) == "-"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def check_outputs(inputs: Iterable[str | Path], outputs: Iterable[str | Path | None]) -> None:
    """Refuse (:class:`OutputError`) outputs that would overwrite or feed an input.

    An output is refused when it is one of the ``inputs`` (the same file, through any
    path or hard link), when it lies inside an input folder (the run would read its own
    output), or when two outputs name one file. Nothing is opened or created.
    """
    named = [Path(str(p)) for p in inputs if str(p) != "-"]
    seen: dict[Path, str] = {}
    for raw in outputs:
        if is_stdout(raw):
            continue
        out = Path(str(raw))
        target = out.resolve()
        if target in seen:
            raise OutputError(f"refusing to write {out}: it is also the {seen[target]} output")
        seen[target] = str(out)
        for source in named:
            where = source.resolve()
            if where == target or _same_file(source, out):
                raise OutputError(
                    f"refusing to write {out}: it is the input {source} (writing it would "
                    "destroy it); write the output elsewhere"
                )
            if _is_dir(source) and target.is_relative_to(where):
                raise OutputError(
                    f"refusing to write {out}: it is inside the input folder {source}, which "
                    "the run reads (it would read its own output); write it elsewhere"
                )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


class _Lock:
    """``.<name>.lock`` beside ``target``, held for the run: a second writer is refused.

    With ``flock`` the lock dies with its process (no stale lock after a crash); the file
    is removed when released, and a lock taken on a file another run removed meanwhile
    is taken again on the new one.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = target.with_name(f".{target.name}.lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        for _ in range(10):
            try:
                if fcntl is None:  # pragma: no cover - Windows
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                else:
                    fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o644)
            except FileExistsError:  # pragma: no cover - Windows
                raise self._busy() from None
            except OSError as exc:
                raise OutputError(f"cannot write {self.target}: {_why(exc)}") from None
            if fcntl is None:  # pragma: no cover - Windows
                self.fd = fd
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise self._busy() from None
                raise OutputError(f"cannot lock {self.target}: {_why(exc)}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                return
            os.close(fd)  # the holder removed the file as we opened it: lock the new one
        raise self._busy()

    def _busy(self) -> OutputError:
        return OutputError(
            f"refusing to write {self.target}: another run is writing it (lock {self.path}); "
            "wait for it to finish or write elsewhere"
        )

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)  # closing drops the flock
        self.fd = None


@contextmanager
def output_file(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write; renamed over ``target`` on success.

    The target is locked for the duration (:class:`_Lock`). On any failure the part file
    is removed and ``target`` keeps what it had; an ``OSError`` from writing becomes an
    :class:`OutputError` naming ``target``.
    """
    target = Path(str(target))
    if _is_dir(target):
        raise OutputError(f"cannot write {target}: it is a folder")
    lock = _Lock(target)
    lock.acquire()
    part: Path | None = None
    try:
        try:
            fd, name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".part"
            )
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {_why(exc)}") from None
        os.close(fd)
        part = Path(name)
        try:
            yield part
            _match_mode(part, target)
            os.replace(part, target)
            part = None
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {_why(exc)}") from None
    finally:
        if part is not None:
            with contextlib.suppress(OSError):
                part.unlink()
            logger.info("removed the partial output %s", part)
        lock.release()


def _match_mode(part: Path, target: Path) -> None:
    """Give the part file the mode a plain ``open(target, "w")`` would (mkstemp makes it
    0600), or the target's own mode when it exists."""
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(part, mode)


class GuardedText:
    """A text file whose write errors name the output (``OSError`` -> :class:`OutputError`)."""

    def __init__(self, fh: IO[str], name: str | Path) -> None:
        self.fh = fh
        self.name = str(name)

    def write(self, text: str) -> int:
        try:
            return self.fh.write(text)
        except OSError as exc:
            raise OutputError(f"cannot write {self.name}: {_why(exc)}") from None

    def flush(self) -> None:
        try:
            self.fh.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {self.name}: {_why(exc)}") from None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.fh, attr)


@contextmanager
def open_text_output(target: str | Path, newline: str | None = None) -> Iterator[IO[str]]:
    """``target`` opened for text through :func:`output_file` (locked, written aside,
    renamed into place at the end), its write errors naming ``target``."""
    with output_file(target) as part, part.open("w", encoding="utf-8", newline=newline) as fh:
        guarded = GuardedText(fh, target)
        yield cast(IO[str], guarded)  # a file as far as its writers can tell
        guarded.flush()
