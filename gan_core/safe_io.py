"""The one way to open a file the studio did not write itself: a run's files, a config file, an upload.

Anyone who can write into a shared runs folder can put a symbolic link, a FIFO or a device where a run file
should be. Every read and write of a run file goes through `open_inside`, which walks from the run folder
down with O_NOFOLLOW (a link anywhere below it is refused, never followed), opens without blocking (a FIFO
cannot hang the server) and accepts regular files only. Writes also refuse a file with a second hard link.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from pathlib import Path

from .errors import StudioError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FD = os.open in os.supports_dir_fd and bool(_NOFOLLOW and _DIRECTORY)
_MODES = {"rb": os.O_RDONLY, "ab": os.O_WRONLY | os.O_APPEND | os.O_CREAT, "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
          "r+b": os.O_RDWR | os.O_CREAT}


MAX_JSON_DEPTH = 16  # our JSON files nest 3 deep; parsing deeper input is how a RecursionError gets in


class UnsafeFile(StudioError, ValueError):
    """A file that is a link, a device, a FIFO, or outside the folder it must stay in: refused, never followed."""


def parse_json(text: str | bytes, what: str = "file", max_depth: int = MAX_JSON_DEPTH):
    """json.loads for input we did not write: ValueError (one line) for bad JSON or nesting deeper than max_depth."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what}: JSON nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{what}: not valid JSON ({str(e)[:120]})") from None
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"{what}: JSON nested deeper than {max_depth} levels")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return data


def _parts(path: Path, inside: Path) -> list[str]:
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(inside))
    except ValueError:
        raise UnsafeFile(f"{path}: outside {inside}") from None
    parts = list(rel.parts)
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise UnsafeFile(f"{path}: not a file inside {inside}")
    return parts


def _refuse(path, e: OSError):
    if e.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
        return UnsafeFile(f"{path}: a symbolic link (or not a plain folder) where a run file should be; refused")
    if e.errno == errno.ENXIO:
        return UnsafeFile(f"{path}: not a regular file (a FIFO or socket); refused")
    return None


def _open_folders(inside: Path, names, make: bool) -> int:
    """A descriptor of inside/names[0]/names[1]/..., each step opened relative to the last without following a link
    (`make`: creating missing ones); the caller closes it."""
    dir_fd = os.open(inside, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for name in names:
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=dir_fd)
            next_fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def _check_folders(inside: Path, names, make: bool) -> None:
    """Where there is no openat (Windows): each step of inside/names... checked with lstat to be a plain folder."""
    here = inside
    for name in names:
        here = here / name
        if make:
            with contextlib.suppress(FileExistsError):
                os.mkdir(here)
        if not stat.S_ISDIR(os.lstat(here).st_mode):
            raise OSError(errno.ENOTDIR, "not a folder", str(here))


def open_fd(path, flags: int, *, inside=None) -> int:
    """An OS file descriptor for `path` (see open_inside); the caller closes it."""
    path = Path(path)
    return _open_fd(path, flags, Path(inside) if inside is not None else path.parent)


def _open_fd(path: Path, flags: int, inside: Path) -> int:
    parts = _parts(path, inside)
    flags |= _NOFOLLOW | _NONBLOCK | _CLOEXEC
    try:
        if not _DIR_FD:  # no openat here (Windows): check each step with lstat, then open
            _check_folders(Path(inside), parts[:-1], make=False)
            fd = os.open(path, flags, 0o644)
        else:
            dir_fd = _open_folders(Path(inside), parts[:-1], make=False)
            try:
                fd = os.open(parts[-1], flags, 0o644, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as e:
        refused = _refuse("/".join(parts), e)
        if refused:
            raise refused from None
        raise
    info = os.fstat(fd)
    writing = flags & (os.O_WRONLY | os.O_RDWR)
    if not stat.S_ISREG(info.st_mode) or (writing and info.st_nlink > 1):
        os.close(fd)
        what = "has a second hard link" if stat.S_ISREG(info.st_mode) else "is not a regular file"
        raise UnsafeFile(f"{'/'.join(parts)}: {what}; refused")
    if _NONBLOCK:
        import fcntl
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
    return fd


def open_inside(path: str | os.PathLike, mode: str = "rb", *, inside: str | os.PathLike | None = None):
    """A binary file object for `path`, which must lie in `inside` (default: its own folder), reached without
    following any link below `inside`. Modes: rb, ab, wb, r+b."""
    path = Path(path)
    return os.fdopen(_open_fd(path, _MODES[mode], Path(inside) if inside is not None else path.parent), mode)


def read_bytes(path, *, inside=None, max_bytes: int | None = None) -> bytes:
    """The whole file, refusing one bigger than `max_bytes` before reading it."""
    with open_inside(path, "rb", inside=inside) as f:
        size = os.fstat(f.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise UnsafeFile(f"{Path(path).name}: {size:,} bytes, over the {max_bytes:,}-byte limit")
        data = f.read(max_bytes + 1 if max_bytes is not None else -1)
    if max_bytes is not None and len(data) > max_bytes:  # grew while we read it
        raise UnsafeFile(f"{Path(path).name}: over the {max_bytes:,}-byte limit")
    return data


def is_regular(path, *, inside=None) -> bool:
    """True when `path` would open as a regular file inside `inside` (no link followed)."""
    try:
        os.close(_open_fd(Path(path), os.O_RDONLY, Path(inside) if inside is not None else Path(path).parent))
        return True
    except (OSError, UnsafeFile):
        return False


def atomic_write(path, data: bytes | str, *, inside=None) -> None:
    """Write a temp file next to `path`, then rename it over `path`: readers never see half a file, and a link
    at `path` is replaced, never written through. On failure (a full disk) nothing is left behind."""
    path = Path(path)
    inside = Path(inside) if inside is not None else path.parent
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        fd = _open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, inside)
    except UnsafeFile:
        raise UnsafeFile(f"{'/'.join(_parts(path, inside))}: its folder is a symbolic link or not a plain folder; "
                         f"refused") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        _parts(path, inside)
        os.replace(tmp, path)  # the folder was checked link-free by the walk that created tmp
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def check_npy_header(path, max_bytes: int, what: str = "file") -> tuple[tuple[int, ...], str]:
    """(shape, dtype) from a .npy header, read before any array is allocated: a 200-byte file that claims
    (10**12, 1, 28, 28) floats is refused here in one line, never handed to np.load (which would try to allocate it).
    Also refuses object arrays (pickles) and a file shorter than the data its header promises."""
    import numpy as np
    from numpy.lib import format as npy_format
    with open_inside(path, "rb") as f:
        try:
            version = npy_format.read_magic(f)
            read_header = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f".npy format version {version} is not supported")
            shape, _fortran, dtype = read_header(f)  # the header only, no data
        except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
            raise UnsafeFile(f"{what}: not a readable .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        data_at, size = f.tell(), os.fstat(f.fileno()).st_size
    if dtype.hasobject:
        raise UnsafeFile(f"{what}: not a readable .npy array (it holds Python objects, a pickle); refused")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise UnsafeFile(f"{what}: the header's shape {shape} is not a list of sizes")
    count = 1
    for n in shape:
        count *= n
    need = count * dtype.itemsize
    if need > max_bytes:
        raise UnsafeFile(f"{what}: its header claims shape {tuple(shape)} of {dtype} ({need:,} bytes), over the "
                         f"{max_bytes:,}-byte limit; refused before reading")
    if size - data_at < need:
        raise UnsafeFile(f"{what}: its header claims {need:,} bytes of data but the file holds {size - data_at:,}")
    return tuple(shape), str(dtype)


def folder_inside(path, inside) -> Path:
    """`path` as a plain folder inside `inside`, made if missing, every part of it reached without following a link:
    a `tb` (or any part below `inside`) that is a link to another folder is refused, so nothing is written, listed or
    deleted there."""
    path, inside = Path(path), Path(inside)
    parts = _parts(path, inside)
    try:
        if not _DIR_FD:
            _check_folders(inside, parts, make=True)
        else:
            os.close(_open_folders(inside, parts, make=True))
    except OSError as e:
        refused = _refuse("/".join(parts), e)
        if refused:
            raise refused from None
        raise
    return path


def remove_files(folder, prefix: str, *, inside) -> int:
    """Delete the entries named prefix* directly in `folder` (checked with folder_inside first); a link among them is
    removed itself, never what it points to. Returns how many went."""
    folder = folder_inside(folder, inside)
    removed = 0
    for entry in os.scandir(folder):
        if entry.name.startswith(prefix) and (entry.is_symlink() or not entry.is_dir(follow_symlinks=False)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed
