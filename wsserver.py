"""The app's local network surface: a WebSocket server (plus a few static pages) fed by the event bus.

Both the events socket and the read-along screen use it. Who may connect is decided once per
handshake by `Access` (Origin, token, client limit); each client then gets a bounded queue and a
send timeout, so a slow, stuck or vanished client can never hold up the app or its shutdown.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import queue
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

from errors import ConfigError
from events import Event

log = logging.getLogger("storyteller.wsserver")


def is_loopback(host: str) -> bool:
    """True when a bind address only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost, or "" (every interface)
        return False


def loopback_origins(host: str, port: int) -> frozenset[str]:
    """The origins a page served on loopback host:port has in a browser on this machine."""
    own = f"[{host}]" if ":" in host else host
    return frozenset(f"http://{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", own))


@dataclass(frozen=True)
class Access:
    """Who may open the WebSocket: a pure policy, decided from the handshake alone.

    `origins`: the browser origins allowed (a client with no Origin header, i.e. not a browser,
    always is). `same_origin`: also allow a page whose Origin matches the Host it asked for, i.e.
    a page served by this server; only used where a token is required, because on its own it
    would let a DNS-rebinding page through. `token`: required in the query (?token=...) when set.
    """

    origins: frozenset[str]
    token: Optional[str]
    max_clients: int
    same_origin: bool = False

    def refusal(self, origin: Optional[str], host: Optional[str], token: Optional[str],
                clients: int) -> Optional[tuple[int, str]]:
        """(HTTP status, short body) when the handshake must be refused, else None."""
        own_page = self.same_origin and host is not None and origin == f"http://{host}"
        if origin is not None and origin not in self.origins and not own_page:
            return 403, "Forbidden: this page's origin may not open the socket (see its origins setting)\n"
        if self.token is not None and not (token and hmac.compare_digest(token.encode(), self.token.encode())):
            return 403, "Forbidden: a valid ?token= is required\n"
        if clients >= self.max_clients:
            return 503, "Too many clients\n"
        return None


def access_for(host: str, port: int, *, page: bool, token: Optional[str], origins: tuple[str, ...] = (),
               max_clients: int = 8) -> tuple[Access, bool]:
    """The policy for a server bound to host:port, and whether its token was made here (not configured).

    Any bind that other machines can reach needs a token; when none is configured one is made for
    this run. A server with a page allows that page's own origin; the events socket allows none.
    """
    local = is_loopback(host)
    made = token is None and not local
    if made:
        token = secrets.token_urlsafe(16)
    own = loopback_origins(host, port) if page and local else frozenset()
    return Access(own | frozenset(origins), token, max_clients, same_origin=page and not local), made


def lan_address() -> str:
    """This machine's address on its network, for the URL to give a tablet (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # UDP connect only picks the outgoing interface
            return s.getsockname()[0]
        except OSError:
            return socket.gethostname()


class _Client:
    """One connected client: its connection and its bounded queue of messages."""

    def __init__(self, connection, size: int):
        self.connection = connection
        self.queue: queue.Queue = queue.Queue(maxsize=size)

    def drop(self) -> None:
        """Cut the connection now, from any thread: wakes a send blocked on a client that stopped reading."""
        try:
            self.connection.socket.shutdown(socket.SHUT_RDWR)
        except OSError:  # already gone
            pass


class WebSocketSink:
    """Serve the event stream as JSON text messages to a limited number of WebSocket clients.

    Each client gets its own bounded queue; a client that falls behind (queue full, or one send
    blocked longer than SEND_TIMEOUT_S) is disconnected, never waited for. Optionally the same
    port serves static pages over plain HTTP (`pages`: path -> (content type, bytes), the socket
    then lives at /ws), greets each new client with `hello()` (a catch-up message), and turns
    events into messages with `transform` (None: not sent; by default the event's JSON record).
    `scrub` filters every event first (privacy: what may leave the process). `settings` names the config keys in error messages.
    `on_message` (optional) is given each text message a client sends, in a reader thread of that
    client; a string it returns goes back to that client only. Without it incoming messages are ignored.
    """

    QUEUE_SIZE = 256
    SEND_TIMEOUT_S = 2.0
    POLL_S = 0.25  # how soon a handler notices its client left when no events flow
    OPEN_TIMEOUT_S = 5.0  # a half-open handshake holds a thread no longer than this
    MAX_INCOMING = 4096  # clients say little (commands at most); a bigger message closes the connection

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        pages: Optional[dict[str, tuple[str, bytes]]] = None,
        hello: Optional[Callable[[], Optional[str]]] = None,
        transform: Optional[Callable[[Event], Optional[str]]] = None,
        *,
        token: Optional[str] = None,
        origins: tuple[str, ...] = (),
        max_clients: int = 8,
        scrub: Optional[Callable[[Event], Event]] = None,
        settings: str = "events.websocket_",
        on_message: Optional[Callable[[str], Optional[str]]] = None,
    ):
        from websockets.sync.server import serve

        self._clients: set[_Client] = set()
        self._opening: set = set()  # connections admitted, handshake not finished yet
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.pages, self.hello, self.scrub, self.on_message = pages or {}, hello, scrub, on_message
        self.stage = "screen" if self.pages else "events websocket"  # its name in the bus's error events
        self.transform = transform or (lambda event: json.dumps(event.as_record(), ensure_ascii=False))
        try:
            sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as err:
            raise ConfigError(f"cannot serve on {host}:{port} ({err.strerror}); set {settings}port to a free port "
                              f"(or {settings}host to an address of this machine)") from err
        self.port = sock.getsockname()[1]
        self.access, made = access_for(host, self.port, page=bool(self.pages), token=token, origins=origins,
                                       max_clients=max_clients)
        if not is_loopback(host):
            self._warn_open(host, made, settings)
        self.server = serve(self._handle, sock=sock, process_request=self._process_request,
                            open_timeout=self.OPEN_TIMEOUT_S, max_size=self.MAX_INCOMING)
        self._thread = threading.Thread(target=self.server.serve_forever, name="websocket-server", daemon=True)
        self._thread.start()

    def _warn_open(self, host: str, made: bool, settings: str) -> None:
        what = "the screen" if self.pages else "the events socket"
        where = lan_address() if host in ("", "0.0.0.0", "::") else host  # every interface: name the one a tablet reaches
        where = f"[{where}]" if ":" in where else where
        url = f"{'http' if self.pages else 'ws'}://{where}:{self.port}/"
        if made:  # the only place the token is ever written: the one line that says how to connect
            log.warning("%s is open to the network on %s:%d: connect with %s?token=%s (made for this run; set %stoken "
                        "to keep one)", what, host, self.port, url, self.access.token, settings)
        else:
            log.warning("%s is open to the network on %s:%d: connect with %s?token= and the %stoken setting",
                        what, host, self.port, url, settings)

    def _process_request(self, connection, request):  # every HTTP request and WebSocket handshake
        path = urlsplit(request.path).path
        if self.pages and path != "/ws":
            return self._page(connection, path)
        from websockets.datastructures import MultipleValuesError

        try:
            origin, host = request.headers.get("Origin"), request.headers.get("Host")
        except MultipleValuesError:  # no browser sends two; a forged request might, to confuse the check
            return connection.respond(403, "Forbidden: one Origin and one Host header at most\n")
        tokens = parse_qs(urlsplit(request.path).query).get("token", [])
        token = tokens[0] if len(tokens) == 1 else None
        with self._lock:  # counted and admitted at once, so simultaneous handshakes cannot overshoot
            refusal = self.access.refusal(origin, host, token, self._count())
            if refusal is None and self._closed.is_set():
                refusal = 503, "Shutting down\n"
            if refusal is None:
                self._opening.add(connection)
        return connection.respond(*refusal) if refusal else None

    def _count(self) -> int:  # clients that hold a slot; called under the lock
        from websockets.protocol import State

        self._opening = {c for c in self._opening if c.state is not State.CLOSED}  # handshakes that failed later
        return len(self._opening) + sum(1 for c in self._clients if c.connection.state is State.OPEN)

    def _page(self, connection, path: str):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        if path not in self.pages:  # only the listed assets: no file system path is ever built from a request
            return connection.respond(404, "not found\n")
        ctype, body = self.pages[path]
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-cache"),
                           ("Referrer-Policy", "no-referrer"), ("X-Content-Type-Options", "nosniff")])
        return Response(200, "OK", headers, body)

    def _handle(self, connection) -> None:  # one thread per client, run by websockets
        from websockets.exceptions import ConnectionClosed
        from websockets.protocol import State

        client = _Client(connection, self.QUEUE_SIZE)
        with self._lock:
            self._opening.discard(connection)
            self._clients.add(client)
            # Under the lock, so an event emitted now is either in the greeting or queued after it.
            greeting = self.hello() if self.hello else None
            if greeting:
                client.queue.put_nowait(greeting)
        if self.on_message:  # after the greeting is queued, so a reply never comes before it
            threading.Thread(target=self._read, args=(client,), name="websocket-reader", daemon=True).start()
        try:
            # A send blocked this long (the client stopped reading) raises, and websockets closes the connection.
            connection.socket.settimeout(self.SEND_TIMEOUT_S)
            # Wake up now and then even when no events flow, so the thread ends soon after its client goes.
            while connection.state is State.OPEN and not self._closed.is_set():
                try:
                    message = client.queue.get(timeout=self.POLL_S)
                except queue.Empty:
                    continue
                connection.send(message)
        except (ConnectionClosed, OSError):  # the client went away, or was dropped
            pass
        finally:
            with self._lock:
                self._clients.discard(client)

    def _read(self, client: _Client) -> None:  # one thread per client, only with on_message
        """Hand each text message to on_message; its reply joins the client's queue (_handle sends it)."""
        from websockets.exceptions import ConnectionClosed

        try:
            for message in client.connection:  # ends when the connection closes, whoever closes it
                if not isinstance(message, str):
                    continue  # only text messages mean anything here
                try:
                    reply = self.on_message(message)
                except Exception:  # a bug in the handler must not end the server, nor this client's connection
                    log.exception("%s: a client's message could not be handled", self.stage)
                    reply = json.dumps({"ok": False, "error": "the message could not be handled (see the app's log)"})
                if reply is not None:
                    try:
                        client.queue.put_nowait(reply)
                    except queue.Full:  # it sends faster than it reads our replies: cut it off
                        client.drop()
                        return
        except (ConnectionClosed, OSError):
            pass

    def __call__(self, event: Event) -> None:
        with self._lock:
            # Under the lock, so a client that connects now gets either the greeting with this
            # event in it, or this event, never neither.
            message = self.transform(self.scrub(event) if self.scrub else event)
            clients = list(self._clients)
        if message is None:
            return
        for client in clients:
            try:
                client.queue.put_nowait(message)
            except queue.Full:  # fell behind: cut it off (a page reconnects and catches up)
                client.drop()

    def close(self) -> None:
        """Disconnect every client and stop serving; returns within about a second whatever the clients do."""
        self._closed.set()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.drop()  # before shutdown(), which would otherwise wait behind a blocked send
        # shutdown() also waits for handshakes still in progress (up to OPEN_TIMEOUT_S): not here.
        stopper = threading.Thread(target=self.server.shutdown, name="websocket-shutdown", daemon=True)
        stopper.start()
        stopper.join(timeout=0.8)
        self._thread.join(timeout=0.2)
