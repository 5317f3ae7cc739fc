"""The remote adapter: :class:`HttpTarget`, a black-box model behind a JSON HTTP endpoint."""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from mlarmor._validation import (
    check_bounds,
    check_choice,
    check_float,
    check_int,
    check_num_classes,
    check_positive,
)
from mlarmor.errors import InputError, InvalidParameterError, invalid_parameter
from mlarmor.targets._common import (
    AdapterBase,
    as_batch,
    check_input_shape,
    missing_num_classes,
    no_scores,
)
from mlarmor.targets.base import Capability

__all__ = ["HttpTarget"]

logger = logging.getLogger(__name__)

_OWNER = "HttpTarget"
_MAX_RETRY_AFTER = 60.0
"""Longest wait honoured from a ``Retry-After`` header, in seconds."""
_SNIPPET = 200


class HttpTarget(AdapterBase):
    """A model behind an HTTP endpoint that answers JSON, seen as a black box.

    Each batch of at most ``batch_size`` rows is sent as one ``POST`` with the JSON body
    ``{request_key: x.tolist()}``; the answer must be a JSON object whose ``response_key`` holds
    either the probabilities ``(n, num_classes)`` (``output="probabilities"``) or the labels ``(n,)``
    in ``0..num_classes-1`` (``output="labels"``).

    Connection errors, timeouts, HTTP 5xx and 429 are retried up to ``retries`` times, waiting
    ``backoff * 2**attempt`` seconds, or the server's ``Retry-After`` when that is longer (capped at
    60 s). Any other 4xx answer, or a body that is not the expected JSON, stops with an
    :class:`~mlarmor.errors.InputError` naming the URL (without its query string) and the status.
    Queries count the rows of every batch the endpoint answered.

    Args:
        url: ``http://`` or ``https://`` URL of the endpoint.
        bounds: Valid input range ``(low, high)``.
        num_classes: Number of classes (an endpoint cannot be asked for it; ``--classes`` on the CLI).
        headers: Extra request headers, e.g. ``{"Authorization": "Bearer <token>"}``.
        batch_size: Rows per request.
        timeout: Seconds to wait for each answer.
        retries: Further attempts after a failed one.
        backoff: Base wait between attempts, in seconds.
        output: What the endpoint returns: ``"probabilities"`` or ``"labels"``.
        request_key: JSON key of the inputs in the request body.
        response_key: JSON key of the outputs in the answer; defaults to the value of ``output``.
        input_shape: Shape of one input without the batch axis; inputs are checked against it.
        name: Human-readable identification; defaults to the URL without its query string.

    Raises:
        InvalidParameterError: A parameter is out of its domain.

    Example:
        >>> from mlarmor.targets import HttpTarget
        >>> target = HttpTarget("https://models.example/predict", bounds=(0, 1), num_classes=10,
        ...                     headers={"Authorization": "Bearer token"}, output="labels")
        >>> sorted(target.capabilities)
        ['labels']
    """

    def __init__(
        self,
        url: str,
        *,
        bounds: tuple[float, float] | Sequence[float],
        num_classes: int | None,
        headers: Mapping[str, str] | None = None,
        batch_size: int = 64,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        output: Literal["probabilities", "labels"] = "probabilities",
        request_key: str = "inputs",
        response_key: str | None = None,
        input_shape: tuple[int, ...] | None = None,
        name: str | None = None,
    ) -> None:
        self._url, credentials = _split_credentials(_check_url(url))
        self._bounds = check_bounds(bounds, _OWNER)
        classes = check_num_classes(num_classes, _OWNER)
        if classes is None:
            raise missing_num_classes(_OWNER, "a remote endpoint cannot be asked for it")
        self._num_classes = classes
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if headers is not None:
            if not isinstance(headers, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            ):
                raise invalid_parameter("headers", _OWNER, "a mapping of str to str", type(headers).__name__)
            self._headers.update(headers)
        if credentials is not None and not any(k.lower() == "authorization" for k in self._headers):
            # user:password@host in the URL: HTTP Basic authentication, as curl and requests do.
            token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._batch_size = check_int(batch_size, "batch_size", _OWNER)
        self._timeout = check_positive(timeout, "timeout", _OWNER)
        self._retries = check_int(retries, "retries", _OWNER, low=0)
        self._backoff = check_float(backoff, "backoff", _OWNER, low=0.0)
        self._output = check_choice(output, "output", _OWNER, ("probabilities", "labels"))
        if not isinstance(request_key, str) or not request_key:
            raise invalid_parameter("request_key", _OWNER, "a non-empty str", request_key)
        response_key = self._output if response_key is None else response_key
        if not isinstance(response_key, str) or not response_key:
            raise invalid_parameter("response_key", _OWNER, "a non-empty str or None", response_key)
        self._request_key = request_key
        self._response_key = response_key
        self._input_shape = check_input_shape(input_shape, _OWNER)
        self._display = redact_url(self._url)
        self._name = name or self._display
        self._queries = 0
        self._opener = urllib.request.build_opener()

    @property
    def url(self) -> str:
        """The endpoint URL."""
        return self._url

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Scores and labels for a probabilities endpoint; labels only for a labels endpoint."""
        return frozenset(("scores", "labels")) if self._output == "probabilities" else frozenset(("labels",))

    @property
    def num_classes(self) -> int:
        """Number of classes, as given."""
        return self._num_classes

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, num_classes)``, float64, as returned by the endpoint."""
        if self._output != "probabilities":
            raise no_scores(self._name)
        return self._query(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels ``(n,)``, int64 (the endpoint's labels, or the arg-max of its probabilities)."""
        out = self._query(x)
        if self._output == "probabilities":
            result: np.ndarray = out.argmax(axis=1).astype(np.int64)
            return result
        return out

    def __repr__(self) -> str:
        return (
            f"HttpTarget(url={self._display!r}, bounds={self._bounds}, num_classes={self._num_classes}, "
            f"output={self._output!r})"
        )

    # -- internals ----------------------------------------------------------------------------------

    def _query(self, x: np.ndarray) -> np.ndarray:
        arr = as_batch(x, self._input_shape, _OWNER)
        n = arr.shape[0]
        empty = np.zeros((0, self._num_classes)) if self._output == "probabilities" else np.zeros(0, np.int64)
        if n == 0:
            return empty
        parts = []
        for start in range(0, n, self._batch_size):
            chunk = arr[start : start + self._batch_size]
            parts.append(self._parse(self._post(chunk), chunk.shape[0]))
            self._queries += int(chunk.shape[0])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _post(self, chunk: np.ndarray) -> bytes:
        try:
            body = json.dumps({self._request_key: chunk.tolist()}, allow_nan=False).encode()
        except ValueError as e:
            raise InvalidParameterError(
                f"The 'x' parameter of {_OWNER} must be finite to be sent as JSON; it holds NaN or inf."
            ) from e
        last = ""
        for attempt in range(self._retries + 1):
            wait = self._backoff * 2**attempt
            # The URL's scheme was checked to be http or https in the constructor.
            request = urllib.request.Request(  # noqa: S310
                self._url, data=body, headers=self._headers, method="POST"
            )
            try:
                with self._opener.open(request, timeout=self._timeout) as response:
                    data: bytes = response.read()
                    return data
            except urllib.error.HTTPError as e:
                status = e.code
                snippet = _snippet(e)
                if status != 429 and status < 500:
                    raise InputError(self._http_error(status, e.reason, snippet)) from None
                last = f"HTTP {status} {e.reason}" + (f": {snippet}" if snippet else "")
                retry_after = _retry_after(e.headers.get("Retry-After") if e.headers else None)
                if retry_after is not None:
                    wait = max(wait, retry_after)
            except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
                reason = getattr(e, "reason", e)
                last = f"{type(e).__name__}: {reason}"
            if attempt < self._retries:
                logger.info(
                    "%s: %s; retry %d/%d in %.2f s", self._display, last, attempt + 1, self._retries, wait
                )
                time.sleep(wait)
        raise InputError(
            f"{self._display} did not answer after {self._retries + 1} attempt(s); last error: {last}. "
            "Check that the endpoint is up, or raise retries/timeout."
        )

    def _http_error(self, status: int, reason: object, snippet: str) -> str:
        hint = {
            401: "The endpoint needs authentication: pass headers={'Authorization': ...} (--header).",
            403: "The credentials in the headers are not allowed to query this endpoint.",
            404: "Check the URL.",
            413: "The request is too large: lower batch_size.",
        }.get(status, f"Check that the endpoint accepts {{{self._request_key!r}: [[...], ...]}} as JSON.")
        detail = f" ({snippet})" if snippet else ""
        return f"{self._display} answered HTTP {status} {reason}{detail}. {hint}"

    def _parse(self, raw: bytes, n: int) -> np.ndarray:
        try:
            doc: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            text = raw[:_SNIPPET].decode("utf-8", "replace")
            raise InputError(
                f"{self._display} answered HTTP 200 with a body that is not JSON: {text!r}."
            ) from None
        if not isinstance(doc, dict) or self._response_key not in doc:
            keys = sorted(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
            raise InputError(
                f"{self._display} answered HTTP 200 with JSON lacking the key {self._response_key!r} "
                f"(got {keys}). Set response_key to the key holding the {self._output}."
            )
        value = doc[self._response_key]
        if self._output == "probabilities":
            try:
                probs = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                probs = np.zeros(0)
            if probs.shape != (n, self._num_classes) or not np.all(np.isfinite(probs)):
                raise InputError(
                    f"{self._display} answered {self._response_key!r} with shape {probs.shape} (or "
                    f"non-finite values) for {n} inputs; expected {n} rows of {self._num_classes} "
                    "probabilities."
                )
            return probs
        try:
            labels = np.asarray(value)
        except (TypeError, ValueError):
            labels = np.zeros(0)
        ok = labels.shape == (n,) and labels.dtype.kind in "iu"
        if not ok or (labels.size and (labels.min() < 0 or labels.max() >= self._num_classes)):
            raise InputError(
                f"{self._display} answered {self._response_key!r} = {str(value)[:_SNIPPET]} for {n} inputs; "
                f"expected {n} integer labels in 0..{self._num_classes - 1}."
            )
        return labels.astype(np.int64)


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise invalid_parameter("url", _OWNER, "an http:// or https:// URL", url)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_parameter("url", _OWNER, "an http:// or https:// URL", url)
    return url


def _split_credentials(url: str) -> tuple[str, str | None]:
    """The URL without its ``user:password@`` part, and that part (percent-decoded), if any."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    plain = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return plain, f"{user}:{password}"


def redact_url(url: str) -> str:
    """The URL without credentials, query or fragment (they may carry secrets)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _snippet(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read(_SNIPPET)
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        error.close()
    return body.decode("utf-8", "replace").strip() if body else ""


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)
