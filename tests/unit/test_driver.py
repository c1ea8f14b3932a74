"""The driver layer's imports: background ones speed an action up and never write to its stderr; an
action starts without the modules only some of its requests need."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, threading
from one_gluster.core.imports import preload
preload("no_such_module_one_gluster")
preload("csv")
for thread in threading.enumerate():
    if thread is not threading.current_thread():
        thread.join()
print("csv" in sys.modules)
try:
    import no_such_module_one_gluster
except ModuleNotFoundError as exc:
    print(exc)
"""


def test_a_failed_background_import_is_silent_and_left_to_the_action():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert done.stderr == ""                       # no "Exception in thread" traceback for oned's log
    assert done.stdout.splitlines() == ["True", "No module named 'no_such_module_one_gluster'"]


# What each action imports before it starts its work, in a fresh interpreter: the modules only some
# requests need (unpacking, checksums, URLs, removing trees) and the heavy libraries (sh, pyone) come
# later or never. `cp` starts writing right after these imports; `monitor` does nothing else.
STARTUP = """
import sys
from one_gluster.datastore import action
action(sys.argv[1])
heavy = ("bz2", "lzma", "hashlib", "tempfile", "urllib.parse", "shutil", "secrets", "sh", "pyone")
print(" ".join(name for name in heavy if name in sys.modules))
"""


def test_cp_and_monitor_start_without_modules_they_may_not_need():
    for name in ("cp", "monitor"):
        done = subprocess.run([sys.executable, "-c", STARTUP, name], capture_output=True, text=True, check=True)
        assert done.stdout == "\n", (name, done.stdout)
