"""Character-level DGA scorer: logistic regression over character n-grams of a domain label.

Training data is generated, never downloaded: benign labels are built from English words (the
`english-words` package) the way people name sites (one or two words, a word and digits, an
acronym and a word, hyphenated words); DGA labels imitate published families: uniform random
letters (Cryptolocker, Ramnit), letters and digits (Necurs, Pykspa) and hex digests (Bamital,
Dyre). Dictionary DGAs (Suppobox, Matsnu: glued English words) are deliberately NOT a positive
class: a character model cannot tell them from real multi-word names, and training on them
flagged ~9 % of real benign names. `train(seed)` is deterministic.

scikit-learn contract (DESIGN.md §6): parameters stored untouched in `__init__`, learned state
ending in `_`, `fit` / `score_samples`, a fitted `threshold_` kept apart from the raw score, and
`explain` giving the top features. Scoring needs no scikit-learn: the fitted weights are a plain
dict persisted as JSON with metadata in `dga_model.json` beside this file.
Regenerate it with `python -m detectors.dgamodel`.
"""
from __future__ import annotations

import json
import math
import random
import string
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

MODEL_PATH = Path(__file__).with_name("dga_model.json")
FEATURES = ("char 1-3-grams of ^label$ (presence)", "length bucket", "digit count bucket",
            "longest consonant run", "vowel ratio bucket")
_VOWELS = set("aeiouy")


def features(label: str) -> dict[str, float]:
    """Presence features of one domain label (no dots, lower case)."""
    text = f"^{label}$"
    feats = {f"g:{text[i:i + n]}": 1.0 for n in (1, 2, 3) for i in range(len(text) - n + 1)}
    letters = [c for c in label if c.isalpha()]
    run = longest = 0
    for c in label:
        run = run + 1 if c.isalpha() and c not in _VOWELS else 0
        longest = max(longest, run)
    vowels = sum(c in _VOWELS for c in letters) / max(1, len(letters))
    feats[f"len:{min(len(label), 33) // 3}"] = 1.0
    feats[f"digits:{min(sum(c.isdigit() for c in label), 4)}"] = 1.0
    feats[f"consrun:{min(longest, 6)}"] = 1.0
    feats[f"vowels:{round(vowels * 5)}"] = 1.0
    return feats


class DgaModel:
    def __init__(self, C: float = 1.0, min_weight: float = 0.01, benign_quantile: float = 0.999):
        self.C = C
        self.min_weight = min_weight
        self.benign_quantile = benign_quantile

    def fit(self, labels: list[str], y: list[int]) -> DgaModel:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
        vec = DictVectorizer()
        matrix = vec.fit_transform([features(x) for x in labels])
        clf = LogisticRegression(C=self.C, max_iter=3000).fit(matrix, y)
        self.weights_ = {name: round(float(w), 4) for name, w in
                         zip(vec.get_feature_names_out(), clf.coef_[0])
                         if abs(w) >= self.min_weight}
        self.intercept_ = round(float(clf.intercept_[0]), 4)
        # Threshold fitted on benign training scores: the rate of benign names flagged is bounded.
        benign = sorted(self.score_samples([x for x, t in zip(labels, y) if t == 0]))
        self.threshold_ = max(0.5, benign[int(self.benign_quantile * (len(benign) - 1))])
        return self

    def score_samples(self, labels: list[str]) -> list[float]:
        """Probability that each label is algorithmically generated."""
        return [_sigmoid(self.intercept_ + sum(self.weights_.get(f, 0.0) for f in features(x)))
                for x in labels]

    def explain(self, label: str, top: int = 5) -> list[tuple[str, float]]:
        contributions = [(f, self.weights_[f]) for f in features(label) if f in self.weights_]
        return sorted(contributions, key=lambda fw: -abs(fw[1]))[:top]

    def to_dict(self, metadata: dict) -> dict:
        return {"params": {"C": self.C, "min_weight": self.min_weight,
                           "benign_quantile": self.benign_quantile},
                "intercept_": self.intercept_, "threshold_": self.threshold_,
                "metadata": metadata, "weights_": dict(sorted(self.weights_.items()))}

    @classmethod
    def from_dict(cls, data: dict) -> DgaModel:
        model = cls(**data["params"])
        model.weights_, model.intercept_ = data["weights_"], data["intercept_"]
        model.threshold_ = data["threshold_"]
        return model


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass
class Sample:
    label: str
    family: str      # "benign" or the DGA style imitated
    y: int


def _words() -> list[str]:
    from english_words import get_english_words_set
    common = get_english_words_set(["web2"], lower=True) & \
        get_english_words_set(["gcide"], lower=True, alpha=True)
    return sorted(w for w in common if w.isalpha() and 3 <= len(w) <= 9)


def benign_label(rng: random.Random, words: list[str]) -> str:
    w1, w2 = rng.choice(words), rng.choice(words)
    style = rng.randrange(8)
    if style == 0:
        return w1
    if style == 1:
        return w1 + w2
    if style == 2:
        return f"{w1}{rng.randint(1, 999)}"
    if style == 3:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 4))) + w1
    if style == 4:
        return f"{w1}-{w2}"
    if style == 5:     # brands and transliterations: words cut and glued, vowels kept
        return w1[:rng.randint(3, len(w1))] + w2[rng.randint(0, len(w2) - 2):]
    if style == 6:
        return w1 + w2 + rng.choice(words)
    return w1 + rng.choice(["ly", "ify", "hub", "app", "net", "online", "shop", "gov", "tv"])


def dga_label(rng: random.Random, family: str) -> str:
    if family == "random_letters":
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(8, 24)))
    if family == "letters_digits":
        alphabet = string.ascii_lowercase + string.digits
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 26)))
    return "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([12, 16, 32])))


DGA_FAMILIES = ("random_letters", "letters_digits", "hex")


def dataset(seed: int = 0, n_per_class: int = 8_000) -> list[Sample]:
    rng = random.Random(seed)
    words = _words()
    samples = [Sample(benign_label(rng, words), "benign", 0) for _ in range(n_per_class)]
    samples += [Sample(dga_label(rng, f), f, 1)
                for f in DGA_FAMILIES for _ in range(n_per_class // len(DGA_FAMILIES))]
    return samples


def train(seed: int = 0, n_per_class: int = 8_000) -> tuple[DgaModel, dict]:
    """Fit on 80 % of a generated data set; metrics on the held-out 20 %."""
    from sklearn.model_selection import train_test_split
    samples = dataset(seed, n_per_class)
    train_set, test_set = train_test_split(samples, test_size=0.2, random_state=seed,
                                           stratify=[s.family for s in samples])
    model = DgaModel().fit([s.label for s in train_set], [s.y for s in train_set])
    metrics = evaluate(model, test_set)
    metadata = {"features": FEATURES, "seed": seed, "n_train": len(train_set),
                "n_test": len(test_set), "held_out": metrics,
                "versions": {p: version(p) for p in ("scikit-learn", "english-words")}}
    return model, metadata


def evaluate(model: DgaModel, samples: list[Sample]) -> dict:
    flagged = [score >= model.threshold_
               for score in model.score_samples([s.label for s in samples])]
    tp = sum(f and s.y for f, s in zip(flagged, samples))
    fp = sum(f and not s.y for f, s in zip(flagged, samples))
    positives = sum(s.y for s in samples)
    per_family = {fam: round(sum(f for f, s in zip(flagged, samples) if s.family == fam)
                             / max(1, sum(s.family == fam for s in samples)), 4)
                  for fam in ("benign", *DGA_FAMILIES)}
    return {"precision": round(tp / max(1, tp + fp), 4), "recall": round(tp / max(1, positives), 4),
            "flagged_rate_by_family": per_family}


@cache
def load_default() -> DgaModel:
    return DgaModel.from_dict(json.loads(MODEL_PATH.read_text()))


if __name__ == "__main__":
    fitted, meta = train()
    MODEL_PATH.write_text(json.dumps(fitted.to_dict(meta), indent=0, sort_keys=False) + "\n")
    print(json.dumps(meta["held_out"], indent=2))
