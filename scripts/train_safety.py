"""Train the safety meaning layer on safety/data/train_*.tsv and write safety/data/meaning.npz.

    python -m scripts.train_safety [--layers 6 10 14 18 22] [--out safety/data/meaning.npz]

Every sentence is read by the encoder (SmolLM2-135M, the starter model) once; its features at
each candidate layer are cached beside the starter model, so a second run reads only new sentences. A fifth
of the corpus (chosen by a hash of the text, so the same on every run) is kept apart as the dev
split: the layer and the thresholds are chosen on it, never on bench/data/safety_heldout.tsv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from safety.corpus import Row, label_of, load_rows
from safety.semantic import WEIGHTS, Encoder

DATA = Path(__file__).resolve().parent.parent / "safety" / "data"
# Share of the safe dev sentences the thresholds may block; the rest of the budget is recall.
SAFE_BLOCK_BUDGET = 0.02


def is_dev(text: str) -> bool:
    """A fixed fifth of the corpus, by the text's hash: the dev split."""
    return hashlib.md5(text.encode("utf-8")).digest()[0] % 5 == 0


def features(rows: list[Row], layers: list[int], model_dir: str, cache: Path) -> dict[int, np.ndarray]:
    """Features of every row at every layer; each text is read once and kept in a cache beside the starter model."""
    path = cache / f"safety-features-{'-'.join(map(str, layers))}.npz"
    known: dict[str, int] = {}
    stored: dict[int, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            known = {str(t): i for i, t in enumerate(data["texts"])}
            stored = {layer: data[str(layer)] for layer in layers}
    missing = [r.text for r in rows if r.text not in known]
    if missing:
        encoder = Encoder(model_dir, max(layers))
        t0, per_layer = time.perf_counter(), [[] for _ in layers]
        for start in range(0, len(missing), 64):
            batch = encoder.at_layers(missing[start : start + 64], layers)
            for i, f in enumerate(batch):
                per_layer[i].append(f)
            done = min(start + 64, len(missing))
            print(f"\r  encoded {done}/{len(missing)} ({(time.perf_counter() - t0) / done * 1000:.0f} ms each)", end="", flush=True)
        print()
        texts = list(known) + missing
        stored = {layer: np.concatenate(([stored[layer]] if known else []) + per_layer[i]) for i, layer in enumerate(layers)}
        known = {t: i for i, t in enumerate(texts)}
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, texts=np.array(texts), **{str(layer): f for layer, f in stored.items()})
    order = np.array([known[r.text] for r in rows])
    return {layer: stored[layer][order] for layer in layers}


def train(x: np.ndarray, y: np.ndarray, n_classes: int, hidden: int = 256, steps: int = 300) -> dict[str, np.ndarray]:
    """A two-layer network (dropout, GELU) with balanced class weights, full batch, AdamW; numpy weights out."""
    import torch

    torch.manual_seed(0)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / scale).float()
    yt = torch.from_numpy(y)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    weights = torch.from_numpy(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0).astype(np.float32))
    first, second = torch.nn.Linear(x.shape[1], hidden), torch.nn.Linear(hidden, n_classes)
    # The tanh form of GELU, because that is what safety/semantic.py computes in numpy.
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), first, torch.nn.GELU(approximate="tanh"), torch.nn.Dropout(0.2), second)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(net(xt), yt).backward()
        opt.step()
    return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
            "w1": first.weight.detach().numpy().T.copy(), "b1": first.bias.detach().numpy(),
            "w2": second.weight.detach().numpy().T.copy(), "b2": second.bias.detach().numpy()}


def predict(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class probabilities, computed as the app computes them (safety/semantic.py)."""
    from safety.semantic import forward

    return forward(weights, x)


def concern(p: np.ndarray, classes: list[str]) -> dict[str, np.ndarray]:
    """Per row: P(unsafe), P(older), P(disclosure), P(jailbreak)."""
    idx = {c: i for i, c in enumerate(classes)}
    unsafe = p[:, [i for c, i in idx.items() if c.startswith("unsafe:")]].sum(1)
    return {"unsafe": unsafe, "older": p[:, idx["older"]], "disclosure": p[:, idx["disclosure"]],
            "jailbreak": p[:, idx["jailbreak"]]}


def pick_threshold(score_safe: np.ndarray, budget: float) -> float:
    """The lowest threshold that blocks at most `budget` of the safe sentences (and never below 0.3)."""
    if len(score_safe) == 0:
        return 0.5
    return float(max(0.3, np.quantile(score_safe, 1.0 - budget)))


def thresholds(rows: list[Row], p: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Thresholds tuned on the dev split: each blocks at most the budget of its safe sentences."""
    c = concern(p, classes)
    safe = np.array([r.level == "safe" for r in rows])
    young = c["unsafe"] + c["older"]
    out = {
        "young": pick_threshold(young[safe], SAFE_BLOCK_BUDGET),  # Preschoolers, Early Elementary: older content too
        "old": pick_threshold(c["unsafe"][safe], SAFE_BLOCK_BUDGET),  # Late Elementary, Preteens: unsafe only
        "disclosure": pick_threshold(c["disclosure"][safe], SAFE_BLOCK_BUDGET / 2),
        "jailbreak": pick_threshold(c["jailbreak"][safe], SAFE_BLOCK_BUDGET / 2),
    }
    # Toddlers: stricter than anyone (a lower bar on the same score), Preteens: a little looser.
    out["toddlers"] = max(0.3, out["young"] * 0.75)
    out["preteens"] = out["old"] + (1.0 - out["old"]) / 2
    return out


def report(name: str, rows: list[Row], p: np.ndarray, classes: list[str], th: dict[str, float]) -> float:
    """Print recall of unsafe and block rate of safe at Early Elementary on a split; returns recall."""
    c = concern(p, classes)
    young = c["unsafe"] + c["older"]
    unsafe = np.array([r.level == "unsafe" and r.category not in ("disclosure", "jailbreak") for r in rows])
    safe = np.array([r.level == "safe" for r in rows])
    disclosure = np.array([r.category == "disclosure" for r in rows])
    recall = float((young[unsafe] >= th["young"]).mean()) if unsafe.any() else 0.0
    blocked = float((young[safe] >= th["young"]).mean()) if safe.any() else 0.0
    care = float((c["disclosure"][disclosure] >= th["disclosure"]).mean()) if disclosure.any() else 0.0
    print(f"  {name}: unsafe caught {recall:.1%} of {unsafe.sum()}, safe blocked {blocked:.1%} of {safe.sum()}, "
          f"disclosures {care:.1%} of {disclosure.sum()}")
    return recall - blocked


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=[6, 10, 14, 18, 22], help="layers to read and compare")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument("--data", type=Path, default=DATA)
    args = p.parse_args()

    from llm.starter import cache_dir, starter_model_dir

    rows = load_rows(args.data)
    classes = sorted({label_of(r) for r in rows} | {"safe", "older", "disclosure", "jailbreak"})
    y = np.array([classes.index(label_of(r)) for r in rows])
    dev = np.array([is_dev(r.text) for r in rows])
    print(f"{len(rows)} sentences ({(~dev).sum()} train, {dev.sum()} dev), {len(classes)} classes")
    feats = features(rows, args.layers, starter_model_dir(), cache_dir())
    dev_rows = [r for r, d in zip(rows, dev) if d]
    # Each layer alone, and the middle one beside the deepest (what measured best here).
    candidates = [[layer] for layer in args.layers]
    if len(args.layers) > 2:
        candidates.append([args.layers[len(args.layers) // 2], args.layers[-1]])
    best = None
    for layers in candidates:
        x = np.concatenate([feats[layer] for layer in layers], axis=1)
        weights = train(x[~dev], y[~dev], len(classes))
        probs = predict(weights, x[dev])
        th = thresholds(dev_rows, probs, classes)
        print(f"layers {layers}:")
        score = report("dev", dev_rows, probs, classes, th)
        if best is None or score > best[0]:
            best = (score, layers, weights, th)
    _, layers, weights, th = best
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, classes=np.array(classes), layers=np.array(layers), thresholds=np.array(json.dumps(th)),
             **{k: v.astype(np.float32) for k, v in weights.items()})
    print(f"chose layers {layers}; thresholds {json.dumps({k: round(v, 3) for k, v in th.items()})}; wrote {args.out}")


if __name__ == "__main__":
    main()
