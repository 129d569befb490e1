"""The teacher's summary of a session: stories told, questions asked and answered, choices; no audio."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Callable

from events import ChoiceMade

log = logging.getLogger(__name__)


class Summary:
    """Counts the session's activities and rewrites the summary file after each change, so a crash loses nothing."""

    def __init__(self, path: str, age_group: str, language: str, redact: Callable[[str], str]):
        self.path = Path(path)
        self.redact = redact  # model text may repeat what a child said: personal information is taken out
        self._lock = threading.Lock()
        self._failing = False  # the last write failed (said once)
        self.data = {"started": datetime.now().isoformat(timespec="seconds"), "age_group": age_group, "language": language,
                     "stories": 0, "questions_asked": 0, "answered_right": 0, "questions": [], "choices": []}
        self._write()

    def story(self) -> None:
        """One story (or one part of a story between choices) was told."""
        with self._lock:
            self.data["stories"] += 1
            self._write()

    def quiz(self, results: list[dict]) -> None:
        """A round of questions ended."""
        with self._lock:
            for r in results:
                self.data["questions"].append({**r, "question": self.redact(r["question"]), "expected": self.redact(r["expected"])})
            self.data["questions_asked"] += len(results)
            self.data["answered_right"] += sum(1 for r in results if r["correct"])
            self._write()

    def choice(self, event: ChoiceMade) -> None:
        """The child (or the story) picked a way for the story to go."""
        with self._lock:
            self.data["choices"].append({"options": [self.redact(o) for o in event.options],
                                         "chosen": self.redact(event.chosen), "by": event.by})
            self._write()

    def _write(self) -> None:
        """Rewrite the file; a failed write (a full disk) is one warning, and the next change writes it all."""
        self.data["updated"] = datetime.now().isoformat(timespec="seconds")
        text = self._markdown() if self.path.suffix.lower() == ".md" else json.dumps(self.data, indent=2, ensure_ascii=False) + "\n"
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Written beside it and renamed over it: a full disk never leaves half a summary.
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.path)
        except OSError as err:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            if not self._failing:
                log.warning("teacher's summary: cannot write %s (%s); kept in memory until it can", self.path, err.strerror)
            self._failing = True
            return
        if self._failing:
            log.warning("teacher's summary: written again to %s", self.path)
        self._failing = False

    def _markdown(self) -> str:
        d = self.data
        out = [f"# Story time, {d['started'][:10]}", "",
               f"{d['age_group']}, {d['language']}: {d['stories']} stories, {d['questions_asked']} questions asked, "
               f"{d['answered_right']} answered right.", ""]
        if d["questions"]:
            out += ["| question | expected | right | hint |", "|---|---|---|---|"]
            out += [f"| {q['question']} | {q['expected']} | {'yes' if q['correct'] else 'no'} | {'yes' if q['hint_used'] else 'no'} |" for q in d["questions"]]
        for c in d["choices"]:
            out.append(f"- choice: {c['options'][0]} / {c['options'][1]} -> {c['chosen']} ({c['by']})")
        return "\n".join(out) + "\n"
