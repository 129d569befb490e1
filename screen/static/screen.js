// The read-along page: one WebSocket, one render function. Every message is the whole state,
// so a page that reconnects (app restarted, network blip) is up to date with the first message.
"use strict";

const STATUS = {
  en: { listening: "I'm listening…", thinking: "Thinking…", speaking: "", idle: "" },
  fr: { listening: "Je t'écoute…", thinking: "Je réfléchis…", speaking: "", idle: "" },
  de: { listening: "Ich höre zu…", thinking: "Ich überlege…", speaking: "", idle: "" },
};

function render(s) {
  document.documentElement.lang = s.language || "en";
  const face = document.getElementById("face");
  face.className = "face " + s.face;
  face.setAttribute("aria-label", s.face);
  document.getElementById("status").textContent = (STATUS[s.language] || STATUS.en)[s.face] || "";
  document.getElementById("previous").textContent = s.previous;
  const sentence = document.getElementById("sentence");
  // Words split exactly as the app splits them (on spaces), so event indexes match the spans.
  const words = s.sentence ? s.sentence.split(/\s+/).filter(Boolean) : [];
  if (sentence.dataset.text !== s.sentence) {
    sentence.dataset.text = s.sentence;
    sentence.replaceChildren(...words.flatMap((w, i) => {
      const span = document.createElement("span");
      span.className = "w";
      span.dataset.i = i;
      span.textContent = w;
      return i ? [document.createTextNode(" "), span] : [span];
    }));
  }
  sentence.querySelectorAll(".w").forEach((span) => {
    const i = Number(span.dataset.i);
    span.classList.toggle("lit", i === s.word);
    span.classList.toggle("said", i < s.word);
  });
  const question = document.getElementById("question");
  question.hidden = !s.question;
  question.textContent = s.question;
  const heard = document.getElementById("heard");
  heard.hidden = !s.heard;
  heard.textContent = s.heard;
}

// A screen opened from another machine needs the token its URL came with (/?token=...); a
// browser WebSocket cannot send headers, so it goes on in the query too.
const TOKEN = new URLSearchParams(location.search).get("token");
const WS_URL = `ws://${location.host}/ws` + (TOKEN ? `?token=${encodeURIComponent(TOKEN)}` : "");

function connect(delay) {
  const ws = new WebSocket(WS_URL);
  const offline = document.getElementById("offline");
  ws.onopen = () => { offline.hidden = true; delay = 500; };
  ws.onmessage = (m) => { const s = JSON.parse(m.data); if (s.type === "state") render(s); };
  ws.onclose = () => {
    offline.hidden = false;
    setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);  // back off up to 5 s, forever
  };
}

connect(500);
