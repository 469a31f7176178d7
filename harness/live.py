"""A live `dagster dev` for end-to-end tests: started on a free loopback port with its own
DAGSTER_HOME and data folder, and stopped by its process group whatever happens; and a live
`ml-assets serve` beside it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "ml_assets"


def materialize_command(config: Path | None = None, model: str = "diabetes") -> list[str]:
    """A model's training job as `make materialize` launches it, optionally with a run config."""
    command = [
        str(BIN / "dagster"), "job", "execute",
        "-m", "ml_assets.definitions", "-j", f"{model}_training_job",
    ]  # fmt: skip
    return command if config is None else [*command, "-c", str(config)]


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session: SIGTERM to its group, then SIGKILL to
    whatever is left (dagster dev can leave children behind on a slow shutdown)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=20)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveDagster:
    """`dagster dev` (webserver and daemon) on 127.0.0.1, as `make dev` runs it; another
    workspace (and the name of its code location to wait for) may be given."""

    def __init__(
        self,
        root: Path,
        workspace: Path = REPO / "workspace.yaml",
        location: str = LOCATION,
        extra_env: dict[str, str] | None = None,
    ):
        self.workspace, self.location, self.extra_env = workspace, location, extra_env or {}
        self.home = root / "dagster_home"
        self.data = root / "data"
        self.log_path = root / "dagster-dev.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "ML_ASSETS_DATA_DIR": str(self.data),
            **self.extra_env,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "config" / "dagster.yaml", self.home / "dagster.yaml")
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                str(BIN / "dagster"), "dev", "-w", str(self.workspace),
                "-h", "127.0.0.1", "-p", str(self.port), "--log-level", "warning",
            ],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with all its children
        )  # fmt: skip
        deadline = time.time() + timeout
        while not self._location_loaded():
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited early; see {self.log_path}")
            if time.time() > deadline:
                raise TimeoutError(f"dagster dev not ready in {timeout}s; see {self.log_path}")
            time.sleep(1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        stop_group(self.process)
        self.log.close()

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST a GraphQL query to the webserver; its `data`, or an error."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            document = json.loads(response.read())
        if document.get("errors"):
            raise RuntimeError(document["errors"])
        return document["data"]

    def wait_until_idle(self, timeout: float = 240) -> None:
        """Until no run is queued or going: what one step launched never leaks into the next."""

        def idle():
            runs = self.graphql(
                """{ runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED]}) {
                     ... on Runs { results { runId } } } }"""
            )["runsOrError"]["results"]
            return not runs

        wait_for(idle, timeout, what="no run in flight")

    def _location_loaded(self) -> bool:
        try:
            data = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries {"
                " name locationOrLoadError { __typename } } } } }"
            )
        except OSError:
            return False
        entries = data["workspaceOrError"].get("locationEntries", [])
        return any(
            entry["name"] == self.location
            and (entry["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
            for entry in entries
        )


def wait_for(condition, timeout: float, interval: float = 2.0, what: str = "condition"):
    """Poll until `condition()` is truthy; return its value, or fail after `timeout`."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout}s")
        time.sleep(interval)


def run_to_end(client, run_id: str, timeout: float = 240, interval: float = 2.0) -> str:
    """Wait for a run launched through the GraphQL client to end; its final status."""
    return wait_for(
        lambda: (
            (status := client.get_run_status(run_id).value) in ("SUCCESS", "FAILURE") and status
        ),
        timeout,
        interval,
        what=f"run {run_id} to end",
    )


class LiveService:
    """`ml-assets serve` on a free loopback port, reading a live Dagster's data folder, and a
    client that keeps calling it from a thread, recording every answer."""

    def __init__(
        self,
        root: Path,
        env: dict[str, str],
        poll_seconds: float = 0.2,
        extra_args: tuple[str, ...] = (),
    ):
        self.env, self.port, self.poll_seconds = env, free_port(), poll_seconds
        self.extra_args = extra_args
        self.log_path = root / "serve.log"
        self.process: subprocess.Popen | None = None
        self.answers: list[dict] = []
        self._calling = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(BIN / "ml-assets"), "serve", "--port", str(self.port),
             "--poll-seconds", str(self.poll_seconds), *self.extra_args],
            cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: self._get("/health") == 200, timeout, 0.2, what="the service up")

    def stop(self) -> None:
        self._calling.clear()
        if self.process is not None and self.process.poll() is None:
            stop_group(self.process)
        self.log.close()

    def predict(self, model: str, rows: list[dict]) -> tuple[int, dict, dict]:
        """POST rows; the status, the headers and the JSON answer."""
        request = urllib.request.Request(
            f"{self.url}/models/{model}/predict",
            data=json.dumps({"rows": rows}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())

    def keep_calling(self, model: str, rows: list[dict]) -> threading.Thread:
        """Call the service without pause until `stop_calling`; each answer in `answers`."""
        self._calling.set()

        def call() -> None:
            while self._calling.is_set():
                try:
                    status, headers, body = self.predict(model, rows)
                    answer = {
                        "status": status,
                        "header": headers.get("x-model-version"),
                        "version": body.get("version"),
                        "error": None,
                    }
                except OSError as error:
                    answer = {"status": None, "header": None, "version": None, "error": str(error)}
                self.answers.append({"at": time.time(), **answer})

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        return thread

    def stop_calling(self, thread: threading.Thread) -> None:
        self._calling.clear()
        thread.join(timeout=20)

    def _get(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None


class WebhookReceiver:
    """A real HTTP receiver on loopback that records every JSON document POSTed to it."""

    def __init__(self):
        received: list[dict] = []

        class Recorder(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class LiveMlflow:
    """A real `mlflow server` on a free loopback port: its runs and registry in SQLite and its
    artifacts in a folder under `root`; stopped by its process group."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.log_path = root / "mlflow.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1",
            ],
            cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout, 0.5, what="the MLflow server up")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_group(self.process)
        self.log.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
