"""The teacher's summary, session by session: stories told, questions asked and answered, choices; no audio."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from events import ChoiceMade

log = logging.getLogger(__name__)


class Summary:
    """The day's sessions for the teacher: one section per child's session, appended, never overwritten.

    The file is rewritten after each change (so a crash loses nothing) with every session it
    holds: those from before a restart are read back at start-up, and sessions older than
    `keep_days` are dropped then (the retention policy, README "Retention"). A start with no
    turns leaves the file as it was. A .md summary keeps its sessions in a JSON file beside it.
    """

    def __init__(self, path: str, age_group: str, language: str, redact: Callable[[str], str], keep_days: int = 30):
        self.path = Path(path)
        self.redact = redact  # model text may repeat what a child said: personal information is taken out
        self.keep_days = keep_days
        self._lock = threading.Lock()
        self._failing = False  # the last write failed (said once)
        self.sessions, expired = self._load()
        self.data = _fresh(age_group, language, self._next_number())
        if expired:  # the retention policy holds on disk at once, not at the next story
            self._write()

    @property
    def store(self) -> Path:
        """Where the sessions are kept as data: the file itself (JSON), or a hidden JSON beside a .md."""
        return self.path.with_name(f".{self.path.name}.json") if self.path.suffix.lower() == ".md" else self.path

    def new_session(self, age_group: str, language: str) -> None:
        """The next child: the current session (if anything happened in it) is closed and kept."""
        with self._lock:
            if _used(self.data):
                self.sessions.append(self.data)
            self.data = _fresh(age_group, language, self._next_number())

    def text(self) -> str:
        """The summary as the teacher reads it (Markdown), current session included."""
        with self._lock:
            return self._markdown()

    def story(self) -> None:
        """One story (or one part of a story between choices) was told."""
        with self._lock:
            self._begin()
            self.data["stories"] += 1
            self._write()

    def quiz(self, results: list[dict]) -> None:
        """A round of questions ended."""
        with self._lock:
            self._begin()
            for r in results:
                self.data["questions"].append({**r, "question": self.redact(r["question"]), "expected": self.redact(r["expected"])})
            self.data["questions_asked"] += len(results)
            self.data["answered_right"] += sum(1 for r in results if r["correct"])
            self._write()

    def choice(self, event: ChoiceMade) -> None:
        """The child (or the story) picked a way for the story to go."""
        with self._lock:
            self._begin()
            self.data["choices"].append({"options": [self.redact(o) for o in event.options],
                                         "chosen": self.redact(event.chosen), "by": event.by})
            self._write()

    def _next_number(self) -> int:
        """Sessions are numbered on, across restarts (never a number twice, even after old ones are dropped)."""
        return max((int(s.get("session", 0)) for s in self.sessions), default=0) + 1

    def _begin(self) -> None:
        """A session's start is its first activity (not the end of the one before)."""
        if self.data["started"] is None:
            self.data["started"] = datetime.now().isoformat(timespec="seconds")

    def _load(self) -> tuple[list[dict], bool]:
        """The sessions kept from earlier runs without those older than keep_days (none if unreadable), and whether any were."""
        try:
            data = json.loads(self.store.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return [], False
        except (OSError, ValueError) as err:
            log.warning("teacher's summary: cannot read %s (%s); it starts afresh and is rewritten at the first change",
                        self.store, err)
            return [], False
        sessions = data.get("sessions", [data]) if isinstance(data, dict) else []  # a single session: the old format
        cutoff = (datetime.now() - timedelta(days=self.keep_days)).isoformat(timespec="seconds")
        kept = [s for s in sessions if isinstance(s, dict) and str(s.get("started") or "") >= cutoff]
        return kept, len(kept) < len(sessions)

    def _write(self) -> None:
        """Rewrite the file; a failed write (a full disk) is one warning, and the next change writes it all."""
        self.data["updated"] = datetime.now().isoformat(timespec="seconds")
        files = [(self.store, json.dumps({"sessions": self._all()}, indent=2, ensure_ascii=False) + "\n")]
        if self.store != self.path:
            files.append((self.path, self._markdown()))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for path, text in files:
                # Written beside it and renamed over it: a full disk never leaves half a summary.
                tmp = path.with_name(path.name + ".tmp")
                try:
                    tmp.write_text(text, encoding="utf-8")
                    tmp.replace(path)
                finally:
                    tmp.unlink(missing_ok=True)
        except OSError as err:
            if not self._failing:
                log.warning("teacher's summary: cannot write %s (%s); kept in memory until it can", self.path, err.strerror)
            self._failing = True
            return
        if self._failing:
            log.warning("teacher's summary: written again to %s", self.path)
        self._failing = False

    def _all(self) -> list[dict]:
        return self.sessions + ([self.data] if _used(self.data) else [])

    def _markdown(self) -> str:
        out, day = [], None
        for d in self._all():
            if d["started"][:10] != day:
                day = d["started"][:10]
                out += [f"# Story time, {day}", ""]
            out += [f"## Session {d.get('session', 1)}, {d['started'][11:16]} to {d.get('updated', d['started'])[11:16]}", "",
                    f"{d['age_group']}, {d['language']}: {d['stories']} stories, {d['questions_asked']} questions asked, "
                    f"{d['answered_right']} answered right.", ""]
            if d["questions"]:
                out += ["| question | expected | right | hint |", "|---|---|---|---|"]
                out += [f"| {q['question']} | {q['expected']} | {'yes' if q['correct'] else 'no'} | {'yes' if q['hint_used'] else 'no'} |"
                        for q in d["questions"]]
            out += [f"- choice: {c['options'][0]} / {c['options'][1]} -> {c['chosen']} ({c['by']})" for c in d["choices"]]
            out.append("")
        return "\n".join(out) if out else "No stories yet today.\n"


def _fresh(age_group: str, language: str, number: int) -> dict:
    return {"session": number, "started": None, "age_group": age_group,
            "language": language, "stories": 0, "questions_asked": 0, "answered_right": 0, "questions": [], "choices": []}


def _used(session: dict) -> bool:
    """Whether anything happened in a session (an empty one is not kept)."""
    return bool(session["stories"] or session["questions_asked"] or session["choices"])
