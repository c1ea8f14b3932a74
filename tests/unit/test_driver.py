"""The driver layer's background imports: they speed an action up and never write to its stderr."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, threading
from one_gluster import driver
driver.preload("no_such_module_one_gluster")
driver.preload("csv")
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
