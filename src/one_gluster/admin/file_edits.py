"""Configuration files changed in place: a backup beside them, then the new text renamed over them."""

from __future__ import annotations

import os
import shutil
import tempfile
import time


def replace(path: str, text: str) -> str:
    """Replace `path` with `text` (temporary file, rename; mode and owner kept); return the backup's path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = f"{path}.one-gluster-{stamp}.bak"
    serial = 1
    while os.path.exists(backup):
        serial += 1
        backup = f"{path}.one-gluster-{stamp}-{serial}.bak"
    shutil.copy2(path, backup)
    info = os.stat(path)
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, info.st_mode & 0o7777)
        os.chown(temp, info.st_uid, info.st_gid)
        os.rename(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return backup
