"""Output that is either complete or absent: checks before work, temporary siblings, then a rename."""
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError


def check_output(dst, force, suffix=None, folder=False, make_parents=False):
    """Fail early (before any heavy work) when dst cannot be written; returns it as a Path. With
    ``make_parents`` its folder may be missing (the caller makes it when the output is ready; nothing is
    created here), as long as the nearest existing one is writable."""
    dst = Path(dst)
    if suffix and dst.suffix != suffix:
        raise OutputError(f"{dst}: the output must end in {suffix}")
    if dst.exists() and not force:
        raise OutputError(f"{dst} exists; pass --force to overwrite it")
    if dst.exists() and dst.is_dir() != folder:
        raise OutputError(f"{dst} exists and is a {'folder' if dst.is_dir() else 'file'}")
    parent = dst.parent
    while make_parents and not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {dst}: {parent} is not an existing folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise OutputError(f"cannot write {dst}: {error.strerror or error}") from None
    return dst


def _apply_umask(path, mode):
    """mkstemp/mkdtemp create private (0600/0700) entries; give the result the permissions a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _sync(path):
    """Flush a file (or a folder's entries) to the disk, so a rename after it never exposes an empty file
    after a power cut or a crash of the machine."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def atomic_write(dst, write):
    """write(tmp_path) into a temporary sibling of dst, then rename it over dst; nothing half-written remains."""
    atomic_write_all([(dst, write)])


def atomic_write_all(outputs):
    """Several files [(dst, write)]: every one written to its temporary sibling first, then all renamed into
    place; if any write fails, none of them is."""
    temporaries = []
    try:
        for dst, write in outputs:
            dst = Path(dst)
            handle, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=dst.suffix)
            os.close(handle)
            temporaries.append((tmp, dst))
            write(tmp)
            _apply_umask(tmp, 0o666)
            _sync(tmp)
        for tmp, dst in temporaries:
            os.replace(tmp, dst)
            _sync(dst.parent)
    except BaseException:
        for tmp, _ in temporaries:
            if os.path.exists(tmp):
                os.remove(tmp)
        raise


def atomic_write_folder(dst, write):
    """write(tmp_folder) into a temporary sibling folder, then move it to dst (replacing an old one last)."""
    dst = Path(dst)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
    try:
        write(tmp)
        _apply_umask(tmp, 0o777)
        for path in [*tmp.iterdir(), tmp]:
            _sync(path)
        if dst.exists():
            old = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.old."))
            os.replace(dst, old / dst.name)
            os.replace(tmp, dst)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dst)
        _sync(dst.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
