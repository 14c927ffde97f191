"""The monitoring trend as a picture: drift share and ROC AUC per day, retrain requests marked."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from tasks.monitoring.metrics import read_metrics
from tasks.settings import Settings
from tasks.storage import Store, join


def draw_trend(first: date, last: date, settings: Settings, out: Path | None = None) -> dict:
    """Draw the metrics table's days in ``[first, last]`` into a PNG (``out``, else
    ``reports/monitoring/trend-<first>-<last>.png``); returns where and what it shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    df = read_metrics(settings)
    df = df[(df["day"] >= first) & (df["day"] <= last)].groupby("day", as_index=False).last()
    if df.empty:
        raise LookupError(f"no monitored day between {first} and {last}: run flightline_monitoring "
                          "(or `flightline monitor day`) for those days first")
    days = list(df["day"])
    requests = [d for d, r in zip(days, df["retrain"], strict=True) if bool(r)]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(12, 6.5), dpi=110)
    top.plot(days, df["drift_share"], color="#1a73e8", lw=1.4, label="share of counted features drifted")
    top.axhline(settings.retrain_drift_share, color="#d93025", ls="--", lw=1,
                label=f"breach threshold {settings.retrain_drift_share}")
    top.set_ylim(0, 1)
    top.set_ylabel("drift share")
    bottom.plot(days, df["roc_auc"].astype(float), color="#81c995", lw=1, label="ROC AUC of the day")
    if "window_auc" in df and df["window_auc"].notna().any():
        bottom.plot(days, df["window_auc"].astype(float), color="#0b5027", lw=2,
                    label=f"ROC AUC of the last {settings.retrain_auc_window_days} days together "
                          "(what the policy judges)")
    bottom.plot(days, df["registry_auc"].astype(float), color="#5f6368", ls=":", lw=1.2,
                label="ROC AUC on its test days")
    bottom.set_ylabel("ROC AUC")
    for ax in (top, bottom):
        for i, d in enumerate(requests):
            ax.axvline(d, color="#d93025", alpha=0.6, lw=1.2, label="retrain requested" if i == 0 else None)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    versions = df["model_version"].nunique()
    top.set_title(f"Flightline monitoring {first} to {last}: {len(days)} days, {len(requests)} retrain "
                  f"request(s), {versions} model version(s)")
    fig.autofmt_xdate()
    fig.tight_layout()
    with tempfile.TemporaryDirectory(prefix="flightline-trend-") as tmp:
        png = Path(tmp) / "trend.png"
        fig.savefig(png)
        plt.close(fig)
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_bytes(png.read_bytes())
            where = str(out)
        else:
            where = join(settings.zone("reports"), "monitoring", f"trend-{first}-{last}.png")
            Store(settings).upload_file(png, where)
    return {"png": where, "days": len(days), "retrain_requests": [d.isoformat() for d in requests]}
