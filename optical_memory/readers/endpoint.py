"""An OpenAI-compatible chat-completions server as a reader, e.g. `vllm serve deepseek-ai/DeepSeek-OCR`.

The read path is the DeepSeek reader's (`BandReader`): the requested rows are cut out of the stored
image as bands with the page geometry, each band is sent as one PNG, and the answer's lines are
mapped back to rows. What differs is only how a band is transcribed: one POST to
``{base_url}/chat/completions`` with the band as a base64 ``image_url`` content part followed by
the plain OCR prompt, temperature 0, and a token cap per band.

Failures are bounded and say what to check: a connection error, a timeout or a 5xx answer is retried
`retries` times with exponential backoff (``backoff_s``, then twice that, ...); a 4xx answer is not
retried; an answer that is not JSON, or not of the chat-completions shape, is a ReaderError quoting
its start. The API key, if any, is sent as a bearer token; put it in the environment and name the
variable with ``api_key_env`` in ``[reader.options]`` rather than writing it into the config file.

Only the standard library is used (urllib): nothing to install for this reader.
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from PIL import Image

from optical_memory.errors import InvalidArgument, ReaderError
from optical_memory.readers.deepseek import OCR_PROMPT, BandReader

__all__ = ["EndpointReader"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"  # where `vllm serve` listens by default
DEFAULT_MODEL = "deepseek-ai/DeepSeek-OCR"
_QUOTE_CHARS = 200  # how much of a bad answer an error message quotes


class _Retryable(Exception):
    """A failure worth another attempt: the server was unreachable, slow or answered 5xx."""


class EndpointReader(BandReader):
    """Transcribes bands of page rows with a vision model behind an OpenAI-compatible API."""

    name = "endpoint"

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        prompt: str = OCR_PROMPT,
        timeout_s: float = 120.0,
        retries: int = 2,
        backoff_s: float = 1.0,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        """`base_url` ends where `/chat/completions` is appended (vLLM: ``http://host:8000/v1``).
        `timeout_s` bounds each attempt; `retries` is the number of attempts after the first.
        `extra_body`: more request fields, e.g. vLLM's ``vllm_xargs`` for DeepSeek-OCR's n-gram
        repetition guard."""
        if not base_url.startswith(("http://", "https://")):
            raise InvalidArgument(f"endpoint base_url must start with http:// or https://, got {base_url!r}")
        if timeout_s <= 0 or retries < 0 or backoff_s < 0:
            raise InvalidArgument(
                f"endpoint needs timeout_s > 0, retries >= 0, backoff_s >= 0; got {timeout_s}, {retries}, {backoff_s}"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.prompt = prompt
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})

    def _transcribe(self, band: Image.Image, rows: int, columns: int) -> str:
        png = io.BytesIO()
        band.save(png, format="PNG")
        image_url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
        body = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image_url}},
                        {"type": "text", "text": self.prompt},
                    ],
                }
            ],
            "temperature": 0.0,
            # Two tokens a cell and a newline a row: more than any real answer, a stop for a loop.
            "max_tokens": self.max_tokens or 16 + rows * (2 * columns + 1),
            **self.extra_body,
        }
        return _content(self._post(json.dumps(body).encode("utf-8")), self.url)

    def _post(self, payload: bytes) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempts = self.retries + 1
        reason = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
            try:
                return self._once(request)
            except _Retryable as exc:
                reason = str(exc)
        raise ReaderError(
            f"the OCR endpoint {self.url} failed {attempts} time(s), last: {reason}; check that the server is "
            "running (e.g. `vllm serve deepseek-ai/DeepSeek-OCR`) and [reader.options] base_url"
        )

    def _once(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            detail = exc.read(_QUOTE_CHARS).decode("utf-8", "replace")
            if exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}: {detail}") from exc
            hint = "; is api_key (or api_key_env) right?" if exc.code in (401, 403) else ""
            hint = hint or ("; is the model name right?" if exc.code == 404 else "")
            raise ReaderError(
                f"the OCR endpoint {self.url} refused the request: HTTP {exc.code}: {detail}{hint}"
            ) from exc
        except TimeoutError as exc:
            raise _Retryable(f"no answer within timeout_s={self.timeout_s}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Retryable(f"no answer within timeout_s={self.timeout_s}") from exc
            raise _Retryable(f"unreachable ({exc.reason})") from exc
        except OSError as exc:  # e.g. the connection reset mid-answer
            raise _Retryable(f"connection failed ({exc})") from exc


def _content(body: bytes, url: str) -> str:
    """The text of a chat-completions answer; ReaderError if it is not one."""
    try:
        answer: Any = json.loads(body)
    except ValueError:
        quoted = body[:_QUOTE_CHARS].decode("utf-8", "replace")
        raise ReaderError(f"the OCR endpoint {url} answered with something that is not JSON: {quoted!r}") from None
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        quoted = json.dumps(answer)[:_QUOTE_CHARS]
        raise ReaderError(
            f"the OCR endpoint {url} answered JSON without choices[0].message.content: {quoted}"
        ) from None
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is None:
        return ""  # no text: the band reads blank
    if not isinstance(content, str):
        raise ReaderError(f"the OCR endpoint {url} answered content of type {type(content).__name__}, not text")
    return content
