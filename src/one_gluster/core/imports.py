"""Imports started early: a heavy module an action will need, loaded in a thread while it works."""

from __future__ import annotations

import gc


def preload(module: str) -> None:
    """Import `module` (pyone) in a background thread while the action checks its arguments and
    mounts. One module per action: two imports at once share the GIL, and the one needed first is
    ready later. The cyclic GC is off meanwhile, as during start-up: an import makes only long-lived
    objects (pyone: ~10 ms less). A module that fails to import is left to the action's own import,
    which reports it as one line: the thread prints nothing."""
    import importlib
    import threading

    def load() -> None:
        gc.disable()
        try:
            importlib.import_module(module)
        except Exception:
            pass
        finally:
            gc.enable()

    threading.Thread(target=load, daemon=True).start()
