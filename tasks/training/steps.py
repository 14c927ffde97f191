"""Training steps as the DAG and the CLI run them: split, train a candidate, gate."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from tasks.settings import PROJECT_ROOT, Settings
from tasks.storage import join

FAMILIES = ("xgboost", "torch-horovod")


def code_version() -> str:
    import os

    if os.environ.get("FLIGHTLINE_CODE_VERSION"):
        return os.environ["FLIGHTLINE_CODE_VERSION"]
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--",
                                "tasks", "dags", "plugins", "expectations"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def prepare_split(end: date, window_days: int, settings: Settings | None = None) -> dict:
    """The trailing window's date split and the exact partitions it uses (lineage)."""
    from tasks.training.data import available_days, split_days

    settings = settings or Settings.from_env()
    if not 3 <= window_days <= 3660:
        raise ValueError(f"window_days must be between 3 and 3660, got {window_days}")
    days = available_days(settings, end, window_days)
    train, valid, test = split_days(days)
    return {
        "end": end.isoformat(), "window_days": window_days,
        "train_days": [d.isoformat() for d in train],
        "valid_days": [d.isoformat() for d in valid],
        "test_days": [d.isoformat() for d in test],
        "partitions": [settings.partition("features", d) for d in days],
    }


def _frames(split: dict, settings: Settings):
    from tasks.features import read_features

    days = lambda k: [date.fromisoformat(d) for d in split[k]]  # noqa: E731
    return (read_features(days("train_days"), settings), read_features(days("valid_days"), settings),
            read_features(days("test_days"), settings))


def _permutation_importance(model, df, y, rng, rows: int = 5000) -> dict[str, float]:
    from tasks.training.data import FEATURES
    from tasks.training.evaluate import metrics

    sample = df.sample(min(rows, len(df)), random_state=0).reset_index(drop=True)
    ys = sample["label_late15"].to_numpy()
    base = metrics(ys, model.predict_proba(sample))["roc_auc"]
    out = {}
    for c in FEATURES:
        shuffled = sample.copy()
        shuffled[c] = rng.permutation(shuffled[c].to_numpy())
        out[c] = round(base - metrics(ys, model.predict_proba(shuffled))["roc_auc"], 5)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def train_candidate(family: str, split: dict, *, run_key: str, workers: int = 2,
                    gpu: str = "auto", time_budget_minutes: float = 60,
                    settings: Settings | None = None, **params) -> dict:
    """Train one model family on the split, evaluate it on the test days beside two baselines,
    and register it as a new version (not champion). Returns its version and metrics."""
    from tasks.training import evaluate, hardware, registry
    from tasks.training.data import xy

    settings = settings or Settings.from_env()
    if family not in FAMILIES:
        raise ValueError(f"model family must be one of {FAMILIES}, got {family!r}")
    on_gpu = hardware.use_gpu(gpu)
    started = time.perf_counter()
    train_df, valid_df, test_df = _frames(split, settings)
    work = Path(tempfile.mkdtemp(prefix=f"flightline-train-{family}-"))
    folder = work / "version"
    folder.mkdir()
    budget_s = time_budget_minutes * 60
    if family == "xgboost":
        from tasks.training import xgb

        booster, cats, info = xgb.train(train_df, valid_df, gpu=on_gpu, params=params or None,
                                        time_budget_s=budget_s)
        xgb.save(booster, cats, folder)
        model = xgb.XGBModel(folder)
    else:
        from tasks.training import torch_train
        from tasks.training.torch_model import TorchModel

        ckpt = join(settings.zone("models"), "checkpoints", run_key.replace("/", "_"))
        model_dir, info = torch_train.train(train_df, valid_df, workdir=work / "hvd",
                                            checkpoint_uri=ckpt, workers=workers, gpu=on_gpu,
                                            time_budget_s=budget_s, **params)
        for name in ("weights.npz", "prep.json", "model.json"):
            shutil.copy(model_dir / name, folder / name)
        model = TorchModel(folder)
        info["checkpoint_uri"] = ckpt

    y_test = test_df["label_late15"].to_numpy()
    p_model = model.predict_proba(test_df)
    hist = evaluate.HistoricalRateBaseline().fit(train_df, train_df["label_late15"].to_numpy())
    X_tr, y_tr, cats = xy(train_df)
    X_te, _, _ = xy(test_df, cats)
    logreg = evaluate.logistic_baseline(X_tr, y_tr)
    curves = {family: p_model, "historical rate": hist.predict_proba(test_df),
              "logistic regression": logreg(X_te)}
    m = evaluate.metrics(y_test, p_model)
    baselines = {"historical_rate": evaluate.metrics(y_test, curves["historical rate"])["roc_auc"],
                 "logistic_regression": evaluate.metrics(y_test, curves["logistic regression"])["roc_auc"]}
    files = evaluate.plots(y_test, curves, folder)
    importance = (model.importance() if hasattr(model, "importance")
                  else _permutation_importance(model, test_df, y_test, np.random.default_rng(0)))
    (folder / "metrics.json").write_text(json.dumps({
        "test": m, "calibration": evaluate.calibration(y_test, np.asarray(p_model)),
        "baselines": baselines}, indent=1))
    (folder / "importance.json").write_text(json.dumps(importance, indent=1))
    version = registry.new_version(family)
    card = {
        "version": version, "family": family, "created": datetime.now(UTC).isoformat(),
        "metrics": m, "baselines": baselines, "split": split, "code_version": code_version(),
        "params": info.get("params"), "trainer": {k: v for k, v in info.items() if k != "params"},
        "hardware": hardware.describe(on_gpu) | {"workers": workers if family != "xgboost" else 1},
        "duration_s": round(time.perf_counter() - started, 2), "plots": files, "run_key": run_key,
    }
    uri = registry.register(folder, card, settings)
    shutil.rmtree(work, ignore_errors=True)
    return {"version": version, "family": family, "uri": uri, "metrics": m, "baselines": baselines,
            "test_days": split["test_days"], "duration_s": card["duration_s"]}


def gate(candidates: list[dict], *, margin: float = 0.002, force: bool = False,
         settings: Settings | None = None) -> dict:
    """Pick the best challenger, score the champion on the same test days, move the alias or not."""
    from tasks.features import read_features
    from tasks.training import evaluate, registry
    from tasks.training.gate import decide

    settings = settings or Settings.from_env()
    candidates = [c for c in candidates if c]
    if not candidates:
        raise ValueError("no trained candidate to gate")
    best = max(candidates, key=lambda c: c["metrics"]["roc_auc"])
    champ = registry.champion(settings)
    champ_auc = None
    if champ:
        try:
            test_df = read_features([date.fromisoformat(d) for d in best["test_days"]], settings)
            model = registry.load_model(champ["version"], settings)
            champ_auc = evaluate.metrics(test_df["label_late15"].to_numpy(),
                                         model.predict_proba(test_df))["roc_auc"]
        except Exception as exc:  # an unreadable champion must not block a forced promotion
            print(f"champion {champ['version']} could not be scored: {exc}")
    decision = decide(best["version"], best["metrics"]["roc_auc"], best["baselines"],
                      champ["version"] if champ else None, champ_auc, margin=margin, force=force)
    out = decision.to_dict()
    if decision.promote:
        out["alias"] = registry.set_champion(best["version"], decision.reason, settings)
    out["candidates"] = {c["version"]: c["metrics"]["roc_auc"] for c in candidates}
    return out
