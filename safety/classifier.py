"""The optional model-based layer: any Hugging Face text-classification model in a local folder."""

from __future__ import annotations

from typing import Optional

from errors import ModelError

# Labels that mean "fine" in common safety and toxicity classifiers; every other label is unsafe.
SAFE_LABELS = frozenset({"safe", "ok", "neutral", "non-toxic", "non_toxic", "not_toxic", "nottoxic", "label_0", "none", "clean"})


class TextClassifier:
    """Flags a text when an unsafe label's probability reaches the threshold.

    Runs after the rule layer, so it only sees text the word lists let through: it catches
    unsafe meaning written in ordinary words. On a CPU it costs a forward pass per sentence;
    a small model (DistilBERT size: ~10 ms a sentence) keeps that below what a child notices.
    """

    def __init__(self, model_dir: str, threshold: float = 0.5):
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        except Exception as err:  # noqa: BLE001 - any loading failure gets the same fix
            raise ModelError(f"safety.classifier: cannot load a text-classification model from {model_dir!r} ({err}); "
                             "point it at a folder saved with save_pretrained, or set it to null to use the rules only") from err
        self._torch = torch
        self.threshold = threshold
        labels = self.model.config.id2label
        self.labels = [labels[i] for i in range(len(labels))]
        # Multi-label toxicity models (toxic, insult, threat, ...) score each label on its own.
        self.multi_label = self.model.config.problem_type == "multi_label_classification"

    def unsafe(self, text: str) -> Optional[tuple[str, float]]:
        """The most likely unsafe label and its probability, or None."""
        enc = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=256)
        with self._torch.inference_mode():
            logits = self.model(**enc).logits[0]
        probs = logits.sigmoid() if self.multi_label else logits.softmax(-1)
        best = None
        for label, p in zip(self.labels, probs.tolist(), strict=True):
            if label.lower() not in SAFE_LABELS and p >= self.threshold and (best is None or p > best[1]):
                best = (label, p)
        return best
