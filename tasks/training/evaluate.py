"""Evaluation on the test days: metrics, calibration, baselines, plots."""

from __future__ import annotations

import numpy as np

CAL_BINS = 10


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """ROC AUC, PR AUC, log loss, Brier score and expected calibration error."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    cal = calibration(y, p)
    ece = float(sum(b["count"] * abs(b["mean_pred"] - b["frac_pos"]) for b in cal) / max(len(y), 1))
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": ece,
        "positive_rate": float(np.mean(y)),
        "rows": int(len(y)),
    }


def calibration(y: np.ndarray, p: np.ndarray, bins: int = CAL_BINS) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append({"bin": b, "count": int(m.sum()), "mean_pred": float(p[m].mean()),
                        "frac_pos": float(y[m].mean())})
    return out


class HistoricalRateBaseline:
    """Late rate by (carrier, origin, scheduled hour) in training data, smoothed toward the
    overall rate (m-estimate), so rare groups do not get extreme rates."""

    keys = ["carrier", "origin", "dep_hour"]

    def __init__(self, m: float = 20.0):
        self.m = m

    def fit(self, df, y):
        import pandas as pd

        d = df[self.keys].copy()
        d["y"] = y
        self.prior = float(np.mean(y))
        g = d.groupby(self.keys, observed=True)["y"].agg(["sum", "count"])
        self.table = ((g["sum"] + self.m * self.prior) / (g["count"] + self.m)).rename("rate")
        self._pd = pd
        return self

    def predict_proba(self, df) -> np.ndarray:
        joined = df[self.keys].merge(self.table.reset_index(), on=self.keys, how="left")
        return joined["rate"].fillna(self.prior).to_numpy()


def logistic_baseline(X_train, y_train):
    """Logistic regression on standardised numerics and one-hot categoricals."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from tasks.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                              StandardScaler()), NUMERIC_FEATURES),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore", min_frequency=20)),
         CATEGORICAL_FEATURES),
    ])
    Xc = X_train.copy()
    for c in CATEGORICAL_FEATURES:
        Xc[c] = Xc[c].astype("object")
    model = make_pipeline(pre, LogisticRegression(max_iter=300, C=0.5))
    model.fit(Xc, y_train)

    def predict(X):
        Xp = X.copy()
        for c in CATEGORICAL_FEATURES:
            Xp[c] = Xp[c].astype("object")
        return model.predict_proba(Xp)[:, 1]

    return predict


def plots(y: np.ndarray, curves: dict[str, np.ndarray], folder) -> dict[str, str]:
    """ROC and calibration PNGs for the model and its baselines; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    def draw(name: str, xlabel: str, ylabel: str, title: str, legend: str, series) -> str:
        fig, ax = plt.subplots(figsize=(5, 5))
        for label, xs, ys, style in series:
            ax.plot(xs, ys, style, label=label)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend(loc=legend, fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=100)
        plt.close(fig)
        return f"{name}.png"

    roc = []
    for label, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        roc.append((f"{label} (AUC {metrics(y, p)['roc_auc']:.3f})", fpr, tpr, "-"))
    cal = []
    for label, p in curves.items():
        bins = calibration(y, np.asarray(p))
        cal.append((label, [b["mean_pred"] for b in bins], [b["frac_pos"] for b in bins], "o-"))
    return {
        "roc": draw("roc", "false positive rate", "true positive rate", "ROC, test days",
                    "lower right", roc),
        "calibration": draw("calibration", "predicted probability", "observed late share",
                            "Calibration, test days", "upper left", cal),
    }
