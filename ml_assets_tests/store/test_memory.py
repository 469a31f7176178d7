"""A process that loads the definitions keeps them out of the garbage collector's walks."""

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return finished.stdout


def test_loaded_objects_are_frozen_and_later_garbage_is_still_collected():
    output = run_python(
        """
        import gc, weakref
        import ml_assets.definitions
        print("frozen", gc.get_freeze_count())

        class Node:
            pass

        node = Node()
        node.self = node
        alive = weakref.ref(node)
        del node
        gc.collect()
        print("collected", alive() is None)
        """
    )
    frozen = int(output.split("frozen ")[1].split()[0])
    assert frozen > 10_000  # Dagster and the definitions, not a handful of objects
    assert "collected True" in output


def test_no_collection_runs_at_interpreter_exit():
    # Without the definitions the final collection finalises the cycle; with them it is skipped.
    cycle = """
        class Node:
            def __del__(self):
                print("finalised at exit", flush=True)

        node = Node()
        node.self = node
        del node
        """
    assert "finalised at exit" in run_python("import gc; gc.disable()" + textwrap.dedent(cycle))
    assert "finalised at exit" not in run_python(
        "import gc; import ml_assets.definitions; gc.disable()" + textwrap.dedent(cycle)
    )
