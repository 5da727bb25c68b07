"""Run folders the tool can trust: claimed (a marker file), locked (one writer), written safely
(no writes through symbolic links, unique temporary names, atomic replaces) and fingerprinted
(a resume or rerun that would mix two data sets, models or option sets is refused).

A run folder holds only data: TSV/JSON/TOML text, PNG pictures and ``.pt`` files that are read
with ``torch.load(weights_only=True)`` (tensors, numbers, strings; never code).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import io
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from captum_certified.cli._config import ConfigError

#: The file that marks a folder as created by this tool (JSON: kind, creation time).
MARKER = ".captum-certified-run"
#: The lock file of rank 0 (other torchrun ranks: ``.lock-rank<r>``).
LOCK = ".lock"
#: The file recording what a run's results depend on (data, model weights, options).
FINGERPRINT = "fingerprint.json"
_TEMP_PREFIX = ".tmp-"
_TEMP_SUFFIX = ".partial"


def resolve_out(value: str | os.PathLike | None, option: str = "--out") -> Path:
    """``--out`` as a path: ``~`` expanded; an empty path is refused (it would mean "here")."""
    text = "" if value is None else os.fspath(value)
    if not text.strip():
        raise ConfigError(f"{option} must name a folder, got an empty path")
    return Path(os.path.expanduser(text))


def claim(out: Path, kind: str, option: str = "--out", *, create: bool = True) -> None:
    """Create ``out`` with the marker, or check that it is an empty folder or one this tool
    created for a run of the same ``kind`` (``certify``, ``train``, ``compare``).

    A folder with files that lacks the marker is refused: the tool never replaces files it
    did not write. The marker is not a secret, only a guard against mistakes.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out} is a file, not a folder")
    marker = out / MARKER
    if out.is_dir():
        if marker.is_symlink() or (marker.exists() and not marker.is_file()):
            raise ConfigError(f"{marker} is not a regular file; refusing to use {out}")
        if marker.is_file():
            try:
                recorded = json.loads(marker.read_text()).get("kind")
            except (ValueError, AttributeError):
                recorded = None
            if recorded != kind:
                raise ConfigError(
                    f"{option} {out} holds a `{recorded}` run, not a `{kind}` run; choose "
                    "another folder"
                )
            return
        if any(out.iterdir()):
            raise ConfigError(
                f"{option} {out} is a folder with files that captum-certified did not create "
                f"(no {MARKER}); it writes only into a new or empty folder or one of its own "
                "runs: choose another --out"
            )
    if not create:
        return
    out.mkdir(parents=True, exist_ok=True)
    record = {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_text(marker, json.dumps(record) + "\n")


@contextmanager
def locked(out: Path, rank: int = 0) -> Iterator[None]:
    """Hold an exclusive lock on the run folder ``out`` (``fcntl.flock`` on ``.lock``) while
    the run writes; the lock file names the process (pid, host, command).

    The kernel releases the lock when its process dies, so a lock left by a killed run is
    recovered by the next one. When another live process holds it, a ``ConfigError`` names
    that process. Temporary files that a killed writer left behind are removed.
    """
    path = out / (LOCK if rank == 0 else f"{LOCK}-rank{rank}")
    check_not_link(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            raise ConfigError(
                f"{out} is in use by another captum-certified process ({holder}); wait for "
                "it to finish, stop it, or choose another --out"
            ) from None
        who = (
            f"pid {os.getpid()} on {socket.gethostname()}, since "
            f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}, command: {' '.join(sys.argv)}"
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (who + "\n").encode("utf-8", "surrogateescape"), 0)
        if rank == 0:
            remove_stale_temps(out)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files of writes that were killed (under ``folder``, two levels)."""
    removed = []
    for pattern in ("*", "*/*"):
        for path in folder.glob(f"{pattern[:-1]}{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def check_not_link(path: Path) -> None:
    """Refuse a symbolic link where the tool writes (the write would land in its target)."""
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link; refusing to write through it")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``path`` atomically: a uniquely named temporary file in the same folder, fsync,
    ``os.replace`` (which replaces a link planted at ``path``, never writing into its target).
    A failed write removes its temporary file; a killed one leaves a ``.tmp-*.partial`` file
    that :func:`remove_stale_temps` removes."""
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_TEMP_PREFIX}{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent
    )
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(path)) from None
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """:func:`write_bytes` of UTF-8 text."""
    return write_bytes(path, text.encode("utf-8", "surrogateescape"))


def save_torch(obj: Any, path: Path) -> Path:
    """``torch.save`` through :func:`write_bytes` (serialized in memory first, so a full disk
    is an ``OSError`` with ``errno.ENOSPC``, not torch's "unexpected pos")."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getvalue())


def append_text(path: Path, text: str) -> None:
    """Append ``text`` durably (one write, fsync) without following a link at ``path``."""
    fd = _open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        _write_all(fd, text.encode("utf-8", "surrogateescape"))
        os.fsync(fd)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        os.close(fd)


def read_text(path: Path) -> str:
    """Read ``path`` without following a link planted there."""
    fd = _open_nofollow(path, os.O_RDONLY)
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _open_nofollow(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link; refusing to use it") from None
        raise


def tensor_hash(*tensors: Any) -> str:
    """SHA-256 of tensors' dtypes, shapes and bytes (a fingerprint of a data set)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():  # the bytes of a contiguous CPU tensor, read in place
            digest.update(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()))
    return digest.hexdigest()


def state_dict_hash(model: Any) -> str:
    """SHA-256 of a model's ``state_dict`` (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor_hash(value).encode())
    return digest.hexdigest()


def check_fingerprint(
    out: Path, current: dict[str, Any], *, computed: bool, what: str, name: str = FINGERPRINT
) -> None:
    """Record ``current`` (what the results depend on) in ``out/name``, or, when results were
    already ``computed``, refuse if the recorded fingerprint differs (naming the entries).

    A folder in which nothing was computed takes the new fingerprint: a corrected command
    can reuse it.
    """
    path = out / name
    if computed and path.exists():
        try:
            previous = json.loads(read_text(path))
        except ValueError:
            previous = {}
        changed = sorted(
            k for k in set(current) | set(previous) if previous.get(k) != current.get(k)
        )
        if changed:
            details = "; ".join(
                f"{k}: {previous.get(k)!r} then, {current.get(k)!r} now" for k in changed
            )
            raise ConfigError(
                f"{out} holds {what} computed with a different {', '.join(changed)} ({details}); "
                "rerun with the same inputs to resume, or choose another --out"
            )
        return
    write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")


def save_figure(fig: Any, path: Path, **kwargs: Any) -> Path:
    """``fig.savefig`` through :func:`write_bytes` (no write through a link at ``path``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", **kwargs)
    return write_bytes(path, buffer.getvalue())


def os_error_message(err: OSError) -> str:
    """One line for an ``OSError`` of a write: full disk, read-only folder, no permission."""
    where = f" writing {err.filename}" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return f"no space left on the device{where}; free some space and rerun to resume"
    if err.errno == errno.EROFS:
        return f"read-only file system{where}; choose another --out"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied{where}; choose another --out"
    return f"{err.strerror or err}{where}"
