"""How the processes that load the code location treat Python's garbage collector.

A run process holds about 400 000 objects once Dagster, pandas and scikit-learn are loaded.
Each full collection walks all of them (0.1 s a time, several times a run), and the final
collections at interpreter exit took a second of every `dagster asset materialize`. What is
loaded with the definitions lives as long as the process, so it is frozen out of the
collector's walks, and at exit the operating system reclaims the memory instead.
"""

import atexit
import gc


def settle_loaded_objects() -> None:
    """Keep the objects loaded so far out of every later collection, and skip the one at exit.

    Called when ml_assets is imported (Dagster is loaded by then) and again once the
    definitions are: the collections while loading them would otherwise walk all of Dagster.
    """
    gc.freeze()
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
