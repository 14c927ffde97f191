"""Evaluation on the test days: metrics, calibration, baselines, plots, importance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.feature_contract import CATEGORICAL_FEATURES, LABEL, MODEL_FEATURES, NUMERIC_FEATURES
from tasks.results import Result

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
        d = df[self.keys].copy()
        d["y"] = y
        self.prior = float(np.mean(y))
        g = d.groupby(self.keys, observed=True)["y"].agg(["sum", "count"])
        self.table = ((g["sum"] + self.m * self.prior) / (g["count"] + self.m)).rename("rate")
        return self

    def predict_proba(self, df) -> np.ndarray:
        joined = df[self.keys].merge(self.table.reset_index(), on=self.keys, how="left")
        return joined["rate"].fillna(self.prior).to_numpy()


#: The logistic baseline fits on at most this many train rows (a seeded sample beyond it): on
#: 10M rows it would take longer than the model it is there to put in perspective.
BASELINE_ROWS = 1_000_000


def logistic_baseline(X_train, y_train):
    """Logistic regression on standardised numerics and one-hot categoricals."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

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


def permutation_importance(model, df, rng, rows: int = 5000) -> dict[str, float]:
    """ROC AUC lost when each feature is shuffled, on a sample of labelled rows, largest first."""
    sample = df.sample(min(rows, len(df)), random_state=0).reset_index(drop=True)
    ys = sample[LABEL].to_numpy()
    base = metrics(ys, model.predict_proba(sample))["roc_auc"]
    out = {}
    for c in MODEL_FEATURES:
        shuffled = sample.copy()
        shuffled[c] = rng.permutation(shuffled[c].to_numpy())
        out[c] = round(base - metrics(ys, model.predict_proba(shuffled))["roc_auc"], 5)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


@dataclass
class Evaluation(Result):
    """A model on the test days beside the two baselines; its files are in the version folder."""

    metrics: dict
    baselines: dict[str, float]  # baseline -> test ROC AUC
    plots: dict[str, str]  # plot -> file name


def evaluate(model, train_df, test_df, folder: Path) -> Evaluation:
    """Score ``model`` on the test days beside the historical-rate and logistic-regression
    baselines (fitted on the train days); write the plots, ``metrics.json`` and
    ``importance.json`` into ``folder``."""
    from tasks.training.data import xy

    y_test = test_df[LABEL].to_numpy()
    p_model = model.predict_proba(test_df)
    hist = HistoricalRateBaseline().fit(train_df, train_df[LABEL].to_numpy())
    if len(train_df) > BASELINE_ROWS:  # a linear model gains nothing from more rows than this
        train_df = train_df.sample(n=BASELINE_ROWS, random_state=0)
    X_tr, y_tr, cats = xy(train_df)
    X_te, _, _ = xy(test_df, cats)
    logreg = logistic_baseline(X_tr, y_tr)
    curves = {model.family: p_model, "historical rate": hist.predict_proba(test_df),
              "logistic regression": logreg(X_te)}
    m = metrics(y_test, p_model)
    baselines = {"historical_rate": metrics(y_test, curves["historical rate"])["roc_auc"],
                 "logistic_regression": metrics(y_test, curves["logistic regression"])["roc_auc"]}
    files = plots(y_test, curves, folder)
    importance = model.importance(test_df)
    (folder / "metrics.json").write_text(json.dumps({
        "test": m, "calibration": calibration(y_test, np.asarray(p_model)),
        "baselines": baselines}, indent=1))
    (folder / "importance.json").write_text(json.dumps(importance, indent=1))
    return Evaluation(metrics=m, baselines=baselines, plots=files)
