"""Output that is either complete or absent: checks before work, temporary siblings, then a rename."""
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError


def check_output(dst, force, suffix=None, folder=False):
    """Fail early (before any heavy work) when dst cannot be written; returns it as a Path."""
    dst = Path(dst)
    if suffix and dst.suffix != suffix:
        raise OutputError(f"{dst}: the output must end in {suffix}")
    if dst.exists() and not force:
        raise OutputError(f"{dst} exists; pass --force to overwrite it")
    if dst.exists() and dst.is_dir() != folder:
        raise OutputError(f"{dst} exists and is a {'folder' if dst.is_dir() else 'file'}")
    if not dst.parent.is_dir():
        raise OutputError(f"cannot write {dst}: {dst.parent} is not an existing folder")
    try:
        with tempfile.TemporaryFile(dir=dst.parent):
            pass
    except OSError as error:
        raise OutputError(f"cannot write {dst}: {error.strerror or error}") from None
    return dst


def _apply_umask(path, mode):
    """mkstemp/mkdtemp create private (0600/0700) entries; give the result the permissions a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def atomic_write(dst, write):
    """write(tmp_path) into a temporary sibling of dst, then rename it over dst; nothing half-written remains."""
    dst = Path(dst)
    handle, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=dst.suffix)
    os.close(handle)
    try:
        write(tmp)
        _apply_umask(tmp, 0o666)
        os.replace(tmp, dst)
    except BaseException:
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
        if dst.exists():
            old = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.old."))
            os.replace(dst, old / dst.name)
            os.replace(tmp, dst)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
