"""A model provider on loopback that speaks the OpenAI and Anthropic chat wire formats.

Tests and benchmarks point litellm at it with `api_base` and tell it, per model, how to
answer: in order, a script of actions, then a default one. It counts every request.

    ok                 200 with an answer shaped by the offline model's rules
    500 / 401 / 400    that status with the provider's error body (401's names the key)
    429:<seconds>      429 with Retry-After
    hang:<seconds>     sleep, then answer 200 (a hung provider)
    garbage            200 whose body is not JSON
    bad_content        200 whose message is not the JSON the prompt asked for
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from meshcore.adapters.offline_model import answer


class _Server(ThreadingHTTPServer):
    # A fleet opens dozens of connections at once; the default backlog of 5 would turn a
    # burst into connection errors, which the breakers count as a failing provider.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up on a hung answer (its timeout is what a test checks) closed
        # the socket before the answer was written: expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ProviderServer:
    def __init__(self) -> None:
        self._scripts: dict[str, deque[str]] = {}
        self._defaults: dict[str, str] = {}
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        # When each request arrived (time.monotonic(), this machine's clock) and its model.
        self.arrivals: list[tuple[float, str]] = []
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def openai_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def behave(self, model: str, *script: str, default: str = "ok") -> None:
        """Answer `model`'s next requests with `script`, then with `default`."""
        with self._lock:
            self._scripts[model] = deque(script)
            self._defaults[model] = default

    def next_action(self, model: str) -> str:
        with self._lock:
            self.requests[model] += 1
            self.arrivals.append((time.monotonic(), model))
            script = self._scripts.get(model)
            if script:
                return script.popleft()
            return self._defaults.get(model, "ok")

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    try:
        yield server
    finally:
        server.stop()


def _handler(provider: ProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, keep-alive clients would wait
        # out a delayed ACK (40 ms) on every response.
        disable_nagle_algorithm = True

        def log_message(self, *_: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            is_anthropic = self.path.rstrip("/").endswith("/messages")
            model = body.get("model", "")
            action = provider.next_action(model)
            if action.startswith("hang:"):
                time.sleep(float(action.split(":", 1)[1]))
                action = "ok"
            if action.startswith("429"):
                retry_after = action.split(":", 1)[1] if ":" in action else "1"
                self._error(429, "rate limited", is_anthropic, {"Retry-After": retry_after})
            elif action == "401":
                # As a provider may: the rejected key, whole, in the error (logs must hide it).
                key = self.headers.get("x-api-key") or self.headers.get("Authorization", "")
                self._error(401, f"Incorrect API key provided: {key}", is_anthropic)
            elif action in {"500", "400", "404", "503"}:
                self._error(int(action), f"simulated {action}", is_anthropic)
            elif action == "garbage":
                self._send(200, b"<html>not json", "text/html")
            else:
                system, user = _prompt(body, is_anthropic)
                text = answer(system, user)
                if action == "bad_content":
                    text = "Sure! Here is what you asked for, though not as JSON."
                payload = _anthropic(model, text) if is_anthropic else _openai(model, text)
                self._send(200, json.dumps(payload).encode(), "application/json")

        def _error(self, status: int, message: str, is_anthropic: bool,
                   headers: dict[str, str] | None = None) -> None:
            if is_anthropic:
                body = {"type": "error", "error": {"type": "api_error", "message": message}}
            else:
                body = {"error": {"message": message, "type": "api_error", "code": str(status)}}
            self._send(status, json.dumps(body).encode(), "application/json", headers)

        def _send(self, status: int, data: bytes, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _prompt(body: dict, is_anthropic: bool) -> tuple[str, str]:
    def text(content: object) -> str:
        if isinstance(content, list):
            return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)

    messages = body.get("messages", [])
    system = [text(m["content"]) for m in messages if m["role"] == "system"]
    if is_anthropic and body.get("system"):
        system.append(text(body["system"]))
    user = [text(m["content"]) for m in messages if m["role"] == "user"]
    return "\n".join(system), "\n".join(user)


def _openai(model: str, text: str) -> dict:
    return {
        "id": "chatcmpl-loopback", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": len(text) // 4,
                  "total_tokens": 50 + len(text) // 4},
    }


def _anthropic(model: str, text: str) -> dict:
    return {
        "id": "msg_loopback", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": len(text) // 4},
    }
