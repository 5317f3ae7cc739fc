"""HttpTarget against a real local server (stdlib http.server in a thread on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlarmor.errors import InputError, InvalidParameterError, UnsupportedModelError
from mlarmor.targets import HttpTarget, Target


class QuietServer(ThreadingHTTPServer):
    """Does not print the broken pipe of a client that timed out on purpose."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class Server:
    """A model endpoint with scripted misbehaviour, one route per behaviour."""

    def __init__(self, model: LogisticRegression) -> None:
        self.model = model
        self.hits: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.headers: dict[str, str] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.hits[self.path] += 1
                    hit = server.hits[self.path]
                    server.headers = dict(self.headers)
                route = self.path.split("?")[0]
                x = np.asarray(body.get("inputs", body.get("instances")), dtype=np.float64)
                if route == "/flaky" and hit <= 2:
                    return self.reply(503, b"warming up")
                if route == "/ratelimit" and hit == 1:
                    return self.reply(429, b"slow down", {"Retry-After": "1"})
                if route == "/auth" and self.headers.get("Authorization") != "Bearer s3cret":
                    return self.reply(401, b'{"detail": "missing token"}')
                if route == "/down":
                    return self.reply(500, b"boom")
                if route == "/badjson":
                    return self.reply(200, b"<html>not json")
                if route == "/slow":
                    time.sleep(1.0)
                with server.lock:
                    server.rows[route] += len(x)
                probs = server.model.predict_proba(x.reshape(len(x), -1))
                if route == "/labels":
                    doc: dict[str, object] = {"labels": probs.argmax(1).tolist()}
                elif route == "/custom":
                    doc = {"predictions": probs.tolist()}
                elif route == "/wrongkey":
                    doc = {"scores": probs.tolist()}
                elif route == "/shortrows":
                    doc = {"probabilities": probs[:-1].tolist()}
                else:
                    doc = {"probabilities": probs.tolist()}
                self.reply(200, json.dumps(doc).encode())

            def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, route: str) -> str:
        return self.base + route

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(digits_lr: LogisticRegression) -> Iterator[Server]:
    srv = Server(digits_lr)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def x(digits: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return digits[0][:10]


def make(url: str, **kwargs: object) -> HttpTarget:
    params: dict[str, object] = {"bounds": (0, 1), "num_classes": 10, "backoff": 0.01, **kwargs}
    return HttpTarget(url, **params)  # type: ignore[arg-type]


def test_predictions_batches_and_queries(
    server: Server, x: np.ndarray, digits_lr: LogisticRegression
) -> None:
    target = make(server.url("/predict"), batch_size=4, input_shape=(1, 8, 8))
    assert isinstance(target, Target)
    assert target.capabilities == {"scores", "labels"}
    before = server.hits["/predict"]
    probs = target.predict_proba(x)
    assert server.hits["/predict"] - before == 3  # 4 + 4 + 2 rows
    np.testing.assert_allclose(probs, digits_lr.predict_proba(x.reshape(10, -1)), rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(target.predict(x), digits_lr.predict(x.reshape(10, -1)))
    assert target.queries == 20
    target.reset_queries()
    assert target.queries == 0


def test_labels_endpoint(server: Server, x: np.ndarray, digits_lr: LogisticRegression) -> None:
    target = make(server.url("/labels"), output="labels")
    assert target.capabilities == {"labels"}
    np.testing.assert_array_equal(target.predict(x), digits_lr.predict(x.reshape(10, -1)))
    assert target.queries == 10
    with pytest.raises(UnsupportedModelError, match="no 'scores' capability"):
        target.predict_proba(x)


def test_custom_keys(server: Server, x: np.ndarray) -> None:
    target = make(server.url("/custom"), request_key="instances", response_key="predictions")
    assert target.predict_proba(x).shape == (10, 10)


def test_retries_after_two_failures(server: Server, x: np.ndarray) -> None:
    target = make(server.url("/flaky"), retries=3)
    assert target.predict(x).shape == (10,)
    assert server.hits["/flaky"] == 3
    assert target.queries == 10  # failed attempts are not queries the model answered


def test_honours_retry_after_on_429(server: Server, x: np.ndarray) -> None:
    target = make(server.url("/ratelimit"), retries=2, backoff=0.0)
    start = time.monotonic()
    target.predict(x)
    assert time.monotonic() - start >= 0.95  # waited for Retry-After: 1, not the zero backoff
    assert server.hits["/ratelimit"] == 2


def test_unauthorised_is_a_clear_error_without_retries(server: Server, x: np.ndarray) -> None:
    with pytest.raises(InputError, match=r"/auth answered HTTP 401 .*missing token.*Authorization"):
        make(server.url("/auth?api_key=hunter2")).predict(x)
    assert server.hits["/auth?api_key=hunter2"] == 1
    with pytest.raises(InputError) as info:
        make(server.url("/auth?api_key=hunter2")).predict(x)
    assert "hunter2" not in str(info.value)  # the query string may hold secrets
    authed = make(server.url("/auth"), headers={"Authorization": "Bearer s3cret"})
    assert authed.predict(x).shape == (10,)
    assert server.headers["Authorization"] == "Bearer s3cret"


def test_bad_json(server: Server, x: np.ndarray) -> None:
    with pytest.raises(InputError, match=r"/badjson answered HTTP 200 with a body that is not JSON: '<html>"):
        make(server.url("/badjson")).predict(x)


@pytest.mark.parametrize(
    ("route", "match"), [("/wrongkey", "lacking the key 'probabilities'"), ("/shortrows", "9, 10")]
)
def test_malformed_answers(server: Server, x: np.ndarray, route: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        make(server.url(route)).predict_proba(x)


def test_gives_up_after_retries_on_5xx(server: Server, x: np.ndarray) -> None:
    with pytest.raises(InputError, match=r"did not answer after 3 attempt\(s\); last error: HTTP 500"):
        make(server.url("/down"), retries=2).predict(x)
    assert server.hits["/down"] == 3


def test_connection_refused_is_retried_then_reported(x: np.ndarray) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputError, match=r"did not answer after 2 attempt\(s\)"):
        make(f"http://127.0.0.1:{port}/predict", retries=1).predict(x)


def test_timeout(server: Server, x: np.ndarray) -> None:
    with pytest.raises(InputError, match="did not answer after 1 attempt"):
        make(server.url("/slow"), timeout=0.2, retries=0).predict(x[:1])


def test_non_finite_inputs_are_refused_before_sending(server: Server) -> None:
    with pytest.raises(InvalidParameterError, match="NaN or inf"):
        make(server.url("/predict")).predict(np.full((1, 64), np.nan))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "ftp://example.org/model"}, "'url' parameter"),
        ({"url": "127.0.0.1:8000"}, "'url' parameter"),
        ({"num_classes": None}, "--classes"),
        ({"retries": -1}, "'retries' parameter"),
        ({"timeout": 0}, "'timeout' parameter"),
        ({"backoff": -1.0}, "'backoff' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"output": "logits"}, "'output' parameter"),
        ({"headers": {"Authorization": 1}}, "'headers' parameter"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, object], match: str) -> None:
    params: dict[str, object] = {"url": "http://127.0.0.1:9/predict", **kwargs}
    url = params.pop("url")
    with pytest.raises(InvalidParameterError, match=match):
        make(url, **params)  # type: ignore[arg-type]
