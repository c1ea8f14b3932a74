"""The driver layer's imports: background ones speed an action up and never write to its stderr; an
action starts without the modules only some of its requests need."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from one_gluster.core import processes

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


TERM_SCRIPT = """
import os, signal, sys, tempfile
from one_gluster import driver
from one_gluster.core.staging import Staging

signal.signal(signal.SIGTERM, driver._on_signal)
with tempfile.TemporaryDirectory() as work:
    final = os.path.join(work, "image")
    with Staging(final) as staging:
        temp = staging.temp()
        open(temp, "w").close()
        if sys.argv[1] == "after":
            staging.commit(temp)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except SystemExit as exc:
            print("stopped", exc.code, os.path.exists(final))
            raise
    print("answered", os.path.exists(final))
"""


def test_term_stops_an_action_until_its_result_is_in_place_then_it_answers():
    """oned's timeout TERM unwinds an action (its staging files go); once its result is renamed into
    place it finishes and answers instead, so that no whole image is left that oned never learns of."""
    before = subprocess.run([sys.executable, "-c", TERM_SCRIPT, "before"], capture_output=True, text=True)
    after = subprocess.run([sys.executable, "-c", TERM_SCRIPT, "after"], capture_output=True, text=True)
    assert (before.returncode, before.stdout) == (143, "stopped 143 False\n"), before.stderr
    assert (after.returncode, after.stdout) == (0, "answered True\n"), after.stderr


MISSED_CHILD_SCRIPT = """
import os, signal, subprocess, sys, tempfile, time
from one_gluster import driver
from one_gluster.core.staging import Staging

signal.signal(signal.SIGTERM, driver._on_signal)
with Staging(os.path.join(sys.argv[1], "image")) as staging:
    temp = staging.temp()
    writer = subprocess.Popen(["sh", "-c", 'while :; do printf x >> "$1"; sleep 0.01; done', "-", temp],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(writer.pid, flush=True)
    while not os.path.exists(temp):
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
"""


def test_term_stops_the_children_it_missed_and_leaves_no_staging_file(tmp_path):
    """A child forked just after oned's TERM reached the process group did not get it, and would go on
    writing: the driver kills it before it removes its staging files and stops."""
    done = subprocess.run([sys.executable, "-c", MISSED_CHILD_SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 143, done.stderr
    writer = int(done.stdout)
    try:
        time.sleep(0.3)
        assert not processes.alive(writer)
        assert os.listdir(tmp_path) == []
    finally:
        if processes.alive(writer):
            os.kill(writer, 9)
