"""v2v.py's saved probe recording (left: the child, right: the app) read per clip: what the child heard back.

v2v.py's own latency is the first app sound after the child *began*, less the end of their speech,
so a listening cue in the child's pause comes out negative. This finds, per clip, the first sound
after the child's last word, whether it was the cue (a sound under CUE_MAX_S), when the answer
began (the first sound after it that is not a cue), and cues mid-request. bench/v2v_probe.py prints it.
"""

from __future__ import annotations

import statistics
from typing import Any, Optional

import numpy as np

THRESHOLD_DBFS = -40.0  # v2v.py's default on both channels
CUE_MAX_S = 0.3  # the cue is 0.18 s (audio/cue.py); the shortest spoken line is longer
APP_GAP_S = 0.25  # the app's sounds closer than this are one (the gaps between words)
CLIP_GAP_S = 4.0  # a clip's own pauses are under 2 s; v2v plays the next one 4 s after the app is quiet


def runs(x: np.ndarray, threshold: float, merge_samples: int) -> list[tuple[int, int]]:
    """(first, last) sample of each run above threshold; runs closer than merge_samples are one."""
    loud = np.flatnonzero(np.abs(x) > threshold)
    if not len(loud):
        return []
    breaks = np.flatnonzero(np.diff(loud) > merge_samples)
    starts = np.concatenate([[loud[0]], loud[breaks + 1]])
    ends = np.concatenate([loud[breaks], [loud[-1]]])
    return list(zip(starts.tolist(), ends.tolist()))


def clips(child: np.ndarray, app: np.ndarray, rate: int) -> list[Optional[dict[str, Any]]]:
    """Per child clip: first sound after the last word (s), cue first, the answer's onset (s), cues in the request."""
    threshold = 10 ** (THRESHOLD_DBFS / 20)
    said = runs(child, threshold, int(CLIP_GAP_S * rate))
    sounds = runs(app, threshold, int(APP_GAP_S * rate))
    out: list[Optional[dict[str, Any]]] = []
    for k, (c0, c1) in enumerate(said):
        until = said[k + 1][0] if k + 1 < len(said) else len(app)
        mine = [(a, b) for a, b in sounds if c0 <= a < until]
        after = [(a, b) for a, b in mine if a >= c1]
        if not after:
            out.append(None)  # no answer
            continue
        is_cue = [(b - a) / rate < CUE_MAX_S for a, b in after]
        answer = next((a for (a, _), cue in zip(after, is_cue) if not cue), None)
        out.append({"first_s": (after[0][0] - c1) / rate, "cue_first": is_cue[0],
                    "answer_s": None if answer is None else (answer - c1) / rate,
                    "cues_mid": sum((b - a) / rate < CUE_MAX_S for a, b in mine if a < c1)})
    return out


def summary(set_name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of the table for the clips of one set."""
    firsts = [1000 * r["first_s"] for r in items]
    answers = [1000 * r["answer_s"] for r in items if r["answer_s"] is not None]

    def stat(values: list[float], q: Optional[float] = None) -> Optional[float]:
        if not values:
            return None
        return round(statistics.median(values) if q is None else float(np.percentile(values, q)))

    return {"set": set_name, "n": len(items), "first_median_ms": stat(firsts), "first_p90_ms": stat(firsts, 90),
            "cue_first": sum(r["cue_first"] for r in items), "answer_median_ms": stat(answers),
            "answer_p90_ms": stat(answers, 90), "cued_mid": sum(r["cues_mid"] > 0 for r in items)}
