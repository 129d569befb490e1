"""Train the safety meaning layer on safety/data/train_*.tsv and write safety/data/meaning.npz.

    python -m scripts.train_safety [--encoder gemma-3-270m] [--layers 4 8 12 [--together]] [--out safety/data/meaning.npz]

Every sentence is read by the encoder (a packaged model, packaged.KNOWN) once; its features at
each candidate layer are cached beside the converted model, so a second run reads only new sentences. A fifth
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
from packaged import KNOWN
from safety.semantic import WEIGHTS, open_encoder

DATA = Path(__file__).resolve().parent.parent / "safety" / "data"
# Share of the safe dev sentences the thresholds may block; the rest of the budget is recall.
SAFE_BLOCK_BUDGET = 0.02
# Label smoothing in the training loss: on the 5c corpus's dev split (layers 6 + 10) 0.1 caught
# 78.3 % of the unsafe instead of 76.5 % and blocked 1.32 % of book and tale lines instead of 1.60 %,
# with the same disclosures; 0.2 lost disclosures. On the 5d split it trades some of the unsafe
# (78.7 against 80.6 %) for disclosures (87.6 against 84.7 %) (BENCHMARKS.md, 5d).
LABEL_SMOOTHING = 0.1
# Networks from different starts, averaged: on the 5e dev split 3 caught 82.1 % of the unsafe
# instead of 79.0 % at the same 2 % of the safe, and fewer story lines (BENCHMARKS.md, 5f).
SEEDS = 3
ENCODER = "gemma-3-270m"  # chosen on the dev split (BENCHMARKS.md, 5): it reads French and German
# The layer sets compared for each encoder (SmolLM2 has 30 blocks, Gemma 3 18). On a first run over
# every fourth Gemma layer, layers past 12 read worse and cost more (BENCHMARKS.md, 5).
CANDIDATES = {"smollm2-135m-instruct": [[6], [10], [14], [18], [22], [14, 22]],
              "gemma-3-270m": [[6], [8], [10], [12], [6, 10], [8, 12], [10, 12]]}


def is_dev(text: str) -> bool:
    """A fixed fifth of the corpus, by the text's hash: the dev split."""
    return hashlib.md5(text.encode("utf-8")).digest()[0] % 5 == 0


def features(rows: list, layers: list[int], encoder: str) -> dict[int, np.ndarray]:
    """Features of every row (anything with a .text) at every layer; each text is read once and cached beside the model.

    One cache file per layer, so any set of layers reuses what an earlier run read.
    """
    from packaged import cache_dir

    cache = cache_dir(KNOWN[encoder])
    stored: dict[int, dict[str, np.ndarray]] = {}
    for layer in layers:
        path = cache / f"features-layer{layer}.npz"
        stored[layer] = {}
        if path.is_file():
            with np.load(path) as data:
                stored[layer] = dict(zip((str(t) for t in data["texts"]), data["x"]))
    texts = list(dict.fromkeys(r.text for r in rows))
    missing = [t for t in texts if any(t not in stored[layer] for layer in layers)]
    if missing:
        reader = open_encoder(encoder, max(layers))
        t0 = time.perf_counter()
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            for layer, f in zip(layers, reader.at_layers(chunk, layers)):
                stored[layer].update(zip(chunk, f))
            done = start + len(chunk)
            print(f"\r  encoded {done}/{len(missing)} ({(time.perf_counter() - t0) / done * 1000:.0f} ms each)", end="", flush=True)
        print()
        cache.mkdir(parents=True, exist_ok=True)
        for layer in layers:
            kept = list(stored[layer])
            np.savez(cache / f"features-layer{layer}.npz", texts=np.array(kept), x=np.stack([stored[layer][t] for t in kept]))
    return {layer: np.stack([stored[layer][r.text] for r in rows]) for layer in layers}


def train(x: np.ndarray, y: np.ndarray, n_classes: int, hidden: int = 256, steps: int = 300,
          seeds: int = 1) -> dict[str, np.ndarray]:
    """`seeds` networks trained from different starts, their logits averaged, as one network (see ensemble)."""
    return ensemble([train_one(x, y, n_classes, hidden, steps, seed) for seed in range(seeds)])


def ensemble(nets: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Networks over the same standardized features, as one whose logits are their mean.

    Side by side their hidden layers are one wider layer; the output layer, stacked and divided
    by their number, averages the logits. So the app reads it as any head (safety/semantic.py).
    """
    k = len(nets)
    return {"mean": nets[0]["mean"], "scale": nets[0]["scale"],
            "w1": np.concatenate([n["w1"] for n in nets], axis=1), "b1": np.concatenate([n["b1"] for n in nets]),
            "w2": np.concatenate([n["w2"] for n in nets], axis=0) / k, "b2": sum(n["b2"] for n in nets) / k}


def train_one(x: np.ndarray, y: np.ndarray, n_classes: int, hidden: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    """A two-layer network (dropout, GELU) with balanced class weights, full batch, AdamW; numpy weights out."""
    import torch

    torch.manual_seed(seed)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / scale).float()
    yt = torch.from_numpy(y)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    weights = torch.from_numpy(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0).astype(np.float32))
    first, second = torch.nn.Linear(x.shape[1], hidden), torch.nn.Linear(hidden, n_classes)
    # The tanh form of GELU, because that is what safety/semantic.py computes in numpy.
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), first, torch.nn.GELU(approximate="tanh"), torch.nn.Dropout(0.2), second)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=LABEL_SMOOTHING)
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


def story_lines(rows: list[Row]) -> np.ndarray:
    """Per row: a safe story sentence with nothing tricky in it (the book and tale lines)."""
    return np.array([r.level == "safe" and r.side == "output" and r.category == "none" for r in rows])


def thresholds(rows: list[Row], p: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Thresholds tuned on the dev split: each blocks at most the budget of its safe sentences."""
    c = concern(p, classes)
    safe = np.array([r.level == "safe" for r in rows])
    young = c["unsafe"] + c["older"]
    # Every bar is a share of the dev split's safe sentences it may block, so the age groups keep
    # their order whatever the spread of the probabilities (label smoothing caps them near 0.9,
    # where fixed factors of a bar had made Toddlers block a third of the classic tales).
    return {
        "toddlers": pick_threshold(young[safe], SAFE_BLOCK_BUDGET * 4),  # the strictest: older content too
        # Preschoolers, Early Elementary: older content too. A bar on the dev split's story lines
        # alone (0.5 % of them, for the 1 % bar on real stories) lost 14 points of recall (5e).
        "young": pick_threshold(young[safe], SAFE_BLOCK_BUDGET),
        "old": pick_threshold(c["unsafe"][safe], SAFE_BLOCK_BUDGET),  # Late Elementary: unsafe only
        "preteens": pick_threshold(c["unsafe"][safe], SAFE_BLOCK_BUDGET / 2),  # a little looser
        "disclosure": pick_threshold(c["disclosure"][safe], SAFE_BLOCK_BUDGET / 2),
        "jailbreak": pick_threshold(c["jailbreak"][safe], SAFE_BLOCK_BUDGET / 2),
    }


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
    story = story_lines(rows)
    told = float((young[story] >= th["young"]).mean()) if story.any() else 0.0
    print(f"  {name}: unsafe caught {recall:.1%} of {unsafe.sum()}, safe blocked {blocked:.1%} of {safe.sum()} "
          f"(story lines {told:.2%} of {story.sum()}), disclosures {care:.1%} of {disclosure.sum()}")
    langs = np.array([r.lang for r in rows])
    print("    " + ", ".join(f"{lang}: caught {(young[unsafe & (langs == lang)] >= th['young']).mean():.0%}, "
                             f"blocked {(young[safe & (langs == lang)] >= th['young']).mean():.1%}"
                             for lang in sorted(set(langs))))
    return recall - blocked


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", choices=sorted(KNOWN), default=ENCODER, help="the packaged model whose hidden states are read")
    p.add_argument("--layers", type=int, nargs="+", help="layers to compare one by one (default: the encoder's candidates)")
    p.add_argument("--together", action="store_true", help="read the --layers side by side as one candidate (e.g. --layers 6 10 --together)")
    p.add_argument("--seeds", type=int, default=SEEDS, help="networks averaged into the head (one wider network)")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument("--data", type=Path, default=DATA)
    args = p.parse_args()

    if args.layers:
        candidates = [sorted(args.layers)] if args.together else [[layer] for layer in args.layers]
    else:
        candidates = CANDIDATES[args.encoder]
    layers_read = sorted({layer for layers in candidates for layer in layers})
    rows = load_rows(args.data)
    classes = sorted({label_of(r) for r in rows} | {"safe", "older", "disclosure", "jailbreak"})
    y = np.array([classes.index(label_of(r)) for r in rows])
    dev = np.array([is_dev(r.text) for r in rows])
    print(f"{len(rows)} sentences ({(~dev).sum()} train, {dev.sum()} dev), {len(classes)} classes")
    feats = features(rows, layers_read, args.encoder)
    dev_rows = [r for r, d in zip(rows, dev) if d]
    best = None
    for layers in candidates:
        x = np.concatenate([feats[layer] for layer in layers], axis=1)
        weights = train(x[~dev], y[~dev], len(classes), seeds=args.seeds)
        probs = predict(weights, x[dev])
        th = thresholds(dev_rows, probs, classes)
        print(f"layers {layers}:")
        score = report("dev", dev_rows, probs, classes, th)
        if best is None or score > best[0]:
            best = (score, layers, weights, th)
    _, layers, weights, th = best
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, classes=np.array(classes), layers=np.array(layers), thresholds=np.array(json.dumps(th)),
             encoder=np.array(args.encoder),
             **{k: v.astype(np.float32) for k, v in weights.items()})
    print(f"chose layers {layers}; thresholds {json.dumps({k: round(v, 3) for k, v in th.items()})}; wrote {args.out}")


if __name__ == "__main__":
    main()
