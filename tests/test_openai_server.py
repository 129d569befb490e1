"""llm.backend: openai against a local HTTP server speaking the OpenAI streaming protocol.

A stand-in for vLLM: it checks the protocol, cancellation, retries, a server dying mid-reply
and the fallback; tests/test_vllm.py does the same against a real vLLM serving the tiny model.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from errors import ModelError
from events import ErrorEvent, EventBus
from llm.backends import create_backend
from events import SentenceReady as Sentence
from llm.storyteller import Storyteller
from pipeline import Session
import lang
from turn import Stages
from settings import LLMSettings
from tests.fakes import ScriptedBackend

WORDS = ["Once", " upon", " a", " time", ",", " a", " fox", " sang", ".", " The", " moon", " smiled", ". "] * 10


class Server(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: list = []  # per request: "ok", "busy" (503), "die" (stream cut after 3 pieces)
    requests: list = []
    sent: list = []
    finished = threading.Event()

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Server.requests.append((self.path, self.headers.get("Authorization"), body))
        mode = Server.script.pop(0) if Server.script else "ok"
        if mode == "busy":
            self.send_response(503)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"busy")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        Server.sent.append(0)
        try:
            for i, word in enumerate(WORDS):
                if mode == "die" and i == 3:
                    self.connection.shutdown(2)  # the server process died
                    return
                chunk = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                Server.sent[-1] += 1
                threading.Event().wait(0.01)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: what cancellation should do
        finally:
            Server.finished.set()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    Server.script, Server.requests, Server.sent = [], [], []
    Server.finished.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def llm(url, **kw):
    return LLMSettings(**{"backend": "openai", "server_url": url, "timeout_s": 5, "retries": 2, **kw})


@pytest.mark.integration
def test_streams_sentences_and_asks_for_the_lora_by_name(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "school-key")
    backend = create_backend(llm(server))
    assert backend.fine_tuned  # served as "phi-ed": the adapter is applied by the server
    teller = Storyteller(backend, "Toddlers", "en", memory_tokens=800, max_sentence_words=30)
    said = [i.text for i in teller.stream("Tell me a story") if isinstance(i, Sentence)]
    assert said[:2] == ["Once upon a time, a fox sang.", "The moon smiled."]
    path, auth, body = Server.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer school-key"
    assert body["model"] == "phi-ed" and body["stream"] is True and body["messages"][0]["role"] == "system"


def test_cancel_closes_the_stream(server):
    backend = create_backend(llm(server))
    cancel = threading.Event()
    for i, _ in enumerate(backend.stream([{"role": "user", "content": "hi"}], cancel)):
        if i == 3:
            cancel.set()
    assert Server.finished.wait(10)
    assert Server.sent[0] < len(WORDS) // 2  # the server stopped early: the client hung up


@pytest.mark.integration
def test_a_busy_server_is_retried(server):
    Server.script = ["busy", "busy", "ok"]
    pieces = list(create_backend(llm(server)).stream([{"role": "user", "content": "hi"}], threading.Event()))
    assert "".join(pieces).startswith("Once upon a time") and len(Server.requests) == 3


def test_server_down_or_dying_mid_reply_is_a_clear_error_and_the_child_hears_a_friendly_line(server):
    with pytest.raises(ModelError, match="is it running|Is it running"):
        list(create_backend(llm("http://127.0.0.1:9/v1", retries=1)).stream([{"role": "user", "content": "hi"}], threading.Event()))
    Server.script = ["die"]
    teller = Storyteller(create_backend(llm(server)), "Toddlers", "en", memory_tokens=800, max_sentence_words=30)
    bus, shown, records = EventBus(), [], []
    bus.subscribe(records.append)
    Session(Stages(teller, bus, show=shown.append)).run_turn("Tell me a story")
    assert shown == [lang.get("en").sorry]
    assert [e.stage for e in records if isinstance(e, ErrorEvent)] == ["llm"]


def test_fallback_to_the_local_model_when_the_server_is_down(monkeypatch):
    import llm.backends as backends

    monkeypatch.setattr(backends, "_local", lambda settings: ScriptedBackend([["The local model tells it."]]))
    backend = create_backend(llm("http://127.0.0.1:9/v1", retries=0, fallback_local=True))
    assert "".join(backend.stream([{"role": "user", "content": "hi"}], threading.Event())) == "The local model tells it."


def test_misconfigured_server_url_is_one_line():
    with pytest.raises(ModelError, match="server_url"):
        create_backend(LLMSettings(backend="openai"))
    with pytest.raises(ModelError, match="http"):
        create_backend(llm("model-server:8000"))
