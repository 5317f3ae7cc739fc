"""HTTP models from the command line (issue 11, point 6): a labels-only endpoint behind a token read
from an environment variable, and credentials in the URL, against a real local server."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from mlarmor.cli import app
from mlarmor.data import load_dataset

runner = CliRunner()
TOKEN = "Bearer s3cret"
BASIC = "Basic " + base64.b64encode(b"alice:p@ss word").decode()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    data = load_dataset("demo:breast-cancer")
    model = LogisticRegression(max_iter=2000).fit(data.x, data.y)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            auth = self.headers.get("Authorization")
            seen.append(auth or "")
            if auth not in (TOKEN, BASIC):
                return self._reply(401, {"detail": "missing token"})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            x = np.asarray(body["rows"], dtype=np.float64)
            self._reply(200, {"predicted": model.predict(x).tolist()})

        def _reply(self, status: int, doc: dict[str, object]) -> None:
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _evasion(url: str, *extra: str) -> object:
    return runner.invoke(
        app,
        [
            "evasion",
            "--model",
            url,
            "--data",
            "demo:breast-cancer",
            "--classes",
            "2",
            "--eps",
            "0.05",
            "--n-samples",
            "10",
            "--param",
            "max_queries=200",
            "--http-output",
            "labels",
            "--request-key",
            "rows",
            "--response-key",
            "predicted",
            "--no-reliability-checks",
            "-f",
            "json",
            "--fail-on",
            "critical",
            *extra,
        ],
    )  # fmt: skip


def test_labels_only_endpoint_with_a_token_from_the_environment(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_API_TOKEN", TOKEN)
    result = _evasion(f"http://{endpoint}/predict", "--header-env", "Authorization=MODEL_API_TOKEN")
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    section = report["sections"]["evasion"]
    assert (section["requested_attack"], section["attack"], section["capability"]) == (
        "auto",
        "hopskipjump",
        "labels",
    )
    assert report["clean_accuracy"] > 0.8  # the endpoint's labels, read under --response-key
    assert "s3cret" not in result.output  # the token never reaches the report


def test_credentials_in_the_url_are_sent_as_basic_auth(endpoint: str) -> None:
    result = _evasion(f"http://alice:p%40ss%20word@{endpoint}/predict")
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report["clean_accuracy"] > 0.8
    assert "alice" not in json.dumps(report)  # the URL is reported without its credentials


def test_a_missing_environment_variable_is_a_usage_error(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    result = _evasion(f"http://{endpoint}/predict", "--header-env", "Authorization=NO_SUCH_TOKEN")
    assert result.exit_code == 2
    assert "NO_SUCH_TOKEN is not set" in result.output


def test_http_options_for_a_model_file_are_refused(tmp_path) -> None:
    result = runner.invoke(
        app, ["evasion", "--model", str(tmp_path / "m.pt"), "--data", "demo:digits", "--request-key", "x"]
    )
    assert result.exit_code == 2
