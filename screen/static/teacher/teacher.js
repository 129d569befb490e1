// The teacher's page: a PIN first, then one WebSocket carrying commands out and the status back.
// The PIN lives in sessionStorage only (gone when the tab closes). Every status message is the
// whole status, so a page that reconnects is up to date with its first message.
"use strict";

const KEY = "storyteller.teacher.pin";
const $ = (id) => document.getElementById(id);
let ws = null;
let last = {};          // the last status (with the server's options), merged with each reply's status
let opened = false;     // whether the current PIN ever got a socket open
let retry = 500;
let volumeTouched = 0;  // when the slider was last dragged: a status arriving mid-drag does not yank it back

function showError(text) { $("error").textContent = text; $("error").hidden = !text; }
function showMessage(text) { $("message").textContent = text || ""; }

function send(action, value) {
  if (!ws || ws.readyState !== WebSocket.OPEN) { showError("Not connected to the kiosk"); return; }
  ws.send(JSON.stringify(value === undefined ? { action } : { action, value }));
}

function choiceButtons(box, entries, action) {
  // Built once from the server's options; pressed state follows each status.
  if (box.dataset.built === JSON.stringify(entries)) return;
  box.dataset.built = JSON.stringify(entries);
  box.replaceChildren(...entries.map(([value, label]) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.action = action;
    b.dataset.value = value;
    b.textContent = label;
    b.addEventListener("click", () => send(action, value));
    return b;
  }));
}

function press(box, current) {
  box.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === current)));
}

function render(s) {
  last = s;
  const o = s.options || {};
  choiceButtons($("age_group"), (o.age_groups || []).map((g) => [g, g]), "age_group");
  choiceButtons($("language"), Object.entries(o.languages || {}), "language");
  choiceButtons($("questions"), Object.entries(o.questions || {}), "questions");
  press($("age_group"), s.age_group);
  press($("language"), s.language);
  press($("questions"), s.questions);

  const line = $("state-line");
  const state = document.createElement("span");
  state.className = s.paused ? "paused" : "";
  state.textContent = s.paused ? "Paused" : "Running";
  const language = (o.languages || {})[s.language] || s.language || "";
  const parts = [s.session ? `child #${s.session}` : "", s.age_group || "", language];
  line.replaceChildren(state, document.createTextNode(parts.filter(Boolean).map((p) => " · " + p).join("")));
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  $("pause").dataset.action = s.paused ? "resume" : "pause";

  const voices = Array.isArray(s.voices) ? s.voices : [];
  $("voice-section").hidden = voices.length === 0;
  const select = $("voice");
  const names = voices.includes(s.voice) || !s.voice ? voices : [s.voice, ...voices];
  if (select.dataset.built !== JSON.stringify(names)) {
    select.dataset.built = JSON.stringify(names);
    select.replaceChildren(...names.map((v) => new Option(v, v)));
  }
  if (!s.voice) select.selectedIndex = -1;
  else select.value = s.voice;

  if (typeof s.volume === "number" && Date.now() - volumeTouched > 1500) {
    $("volume").value = Math.round(s.volume * 100);
    $("volume-value").textContent = Math.round(s.volume * 100) + "%";
  }
  $("summary").textContent = s.summary || "Nothing yet today.";
  if (s.error) showError(s.error);
}

function reply(m) {
  if (m.status) render({ ...last, ...m.status });
  if (m.ok) { showError(""); showMessage(m.message); }
  else { showMessage(""); showError(m.error || m.message || "The kiosk refused that"); }
}

function showControls(on) {
  $("pin-form").hidden = on;
  $("controls").hidden = !on;
  $("lock").hidden = !on;
}

function setConnected(on) {
  $("all").disabled = !on;
  $("conn").textContent = on ? "Connected" : (opened ? "Reconnecting…" : "");
  $("conn").classList.toggle("on", on);
}

// Why a handshake was refused: a browser only sees the socket close, so the server says (no secret in it).
async function whyRefused() {
  try {
    const r = await fetch("/access", { cache: "no-store" });
    const a = await r.json();
    if (a.locked_for > 0) return ["locked", `Too many wrong PINs: try again in ${a.locked_for} s`];
    if (a.full) return ["full", "Too many teacher pages are open: close one and try again"];
    return ["pin", "Wrong PIN"];
  } catch (e) {
    return ["down", "The kiosk cannot be reached: trying again…"];
  }
}

function connect(pin) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // A browser WebSocket cannot send headers: the PIN goes in the query, as the token.
  const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(pin)}`);
  let open = false;
  ws = socket;
  socket.onopen = () => {
    open = opened = true;
    retry = 500;
    sessionStorage.setItem(KEY, pin);
    $("pin").value = "";  // not left in the form for the next person at the tablet
    showError("");
    showControls(true);
    setConnected(true);
  };
  socket.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "status") render(m);
    else if ("ok" in m) reply(m);
  };
  socket.onclose = async () => {
    if (ws !== socket) return;  // locked, or replaced by a newer socket
    setConnected(false);
    if (open) { setTimeout(() => connect(pin), retry); retry = Math.min(retry * 2, 5000); return; }
    const [why, text] = await whyRefused();
    if (ws !== socket) return;
    showError(text);
    if (why === "down" || why === "full") { setTimeout(() => connect(pin), 3000); return; }
    // A wrong PIN (or the lockout): ask again, never retry by itself (each try would count as a guess).
    ws = null;
    opened = false;
    sessionStorage.removeItem(KEY);
    showControls(false);
    $("pin").value = "";
    $("pin").focus();
  };
}

$("pin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const pin = $("pin").value;
  if (pin.length < 4) { showError("The PIN has at least 4 characters"); return; }
  showError("");
  if (ws) { const old = ws; ws = null; old.close(); }
  connect(pin);
});

$("lock").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  const old = ws;
  ws = null;
  opened = false;
  if (old) old.close();
  showMessage("");
  showControls(false);
  setConnected(false);
});

$("pause").addEventListener("click", () => send($("pause").dataset.action));

// Next child ends the current child's session: a second tap within 4 s confirms it.
let armed = null;
$("next").addEventListener("click", () => {
  const b = $("next");
  if (armed) {
    clearTimeout(armed);
    armed = null;
    b.classList.remove("armed");
    b.textContent = "Next child";
    send("next_child");
    return;
  }
  b.classList.add("armed");
  b.textContent = "Tap again: new child";
  armed = setTimeout(() => { armed = null; b.classList.remove("armed"); b.textContent = "Next child"; }, 4000);
});

$("voice").addEventListener("change", () => { if ($("voice").value) send("voice", $("voice").value); });

$("volume").addEventListener("input", () => {
  volumeTouched = Date.now();
  $("volume-value").textContent = $("volume").value + "%";
});
$("volume").addEventListener("change", () => { volumeTouched = 0; send("volume", Number($("volume").value) / 100); });
function nudge(step) {
  const now = typeof last.volume === "number" ? Math.round(last.volume * 100) : Number($("volume").value);
  send("volume", Math.min(100, Math.max(0, now + step)) / 100);
}
$("vol-down").addEventListener("click", () => nudge(-10));
$("vol-up").addEventListener("click", () => nudge(10));

const saved = sessionStorage.getItem(KEY);
showControls(false);
setConnected(false);
if (saved) connect(saved);
else $("pin").focus();
