"""The hosted fallback (hf-inference) through huggingface_hub's real client.

The hosted service cannot be reached from CI, so a local HTTP server speaking the same
OpenAI-compatible streaming protocol stands in for it.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from errors import ModelError
from llm.backends import create_backend
from events import SentenceReady as Sentence
from llm.storyteller import Storyteller
from settings import LLMSettings

WORDS = ["Once", " upon", " a", " time", ",", " a", " fox", " sang", ".", " The", " moon", " smiled", ". "] * 10


class FakeServer(BaseHTTPRequestHandler):
    requests: list = []
    sent: list = []  # chunks written per request
    finished = threading.Event()  # the handler returned (stream done or client gone)
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeServer.requests.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        sent = 0
        FakeServer.sent.append(0)
        try:
            for word in WORDS:
                chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": word}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                sent += 1
                FakeServer.sent[-1] = sent
                threading.Event().wait(0.01)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed the stream: what cancellation should do
        finally:
            FakeServer.finished.set()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(monkeypatch):
    # The suite runs with HF_HUB_OFFLINE=1 so nothing reaches the real hub; this server is local.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    FakeServer.requests.clear()
    FakeServer.sent.clear()
    FakeServer.finished.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def settings(url, **kw):
    return LLMSettings(backend="hf-inference", hf_base_url=url, timeout_s=5, **kw)


@pytest.mark.integration
def test_streams_sentences_from_the_hosted_api(server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "secret-token")
    backend = create_backend(settings(server))
    assert not backend.fine_tuned
    teller = Storyteller(backend, "Toddlers", "en", memory_tokens=800, max_sentence_words=30)
    said = [i.text for i in teller.stream("Tell me a story") if isinstance(i, Sentence)]
    assert said[:2] == ["Once upon a time, a fox sang.", "The moon smiled."]
    path, auth, body = FakeServer.requests[0]
    assert path.endswith("/chat/completions") and auth == "Bearer secret-token"
    assert body["stream"] is True and body["messages"][0]["role"] == "system"


def test_cancel_closes_the_http_stream(server):
    backend = create_backend(settings(server))
    cancel = threading.Event()
    for i, _ in enumerate(backend.stream([{"role": "user", "content": "hi"}], cancel)):
        if i == 3:
            cancel.set()
    assert FakeServer.finished.wait(10)
    assert FakeServer.sent[0] < len(WORDS) // 2  # the server stopped early: the client hung up


def test_unreachable_server_is_a_model_error(server):
    backend = create_backend(settings("http://127.0.0.1:9"))
    with pytest.raises(ModelError, match="failed"):
        list(backend.stream([{"role": "user", "content": "hi"}], threading.Event()))
