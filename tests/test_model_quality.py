"""Model quality machinery: the calibration map (chosen, stored, served) and the bounded search."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from tasks.training.calibration import (
    CALIBRATION_FILE,
    Calibrated,
    Calibrator,
    choose,
    with_saved_calibration,
)
from tasks.training.evaluate import metrics


def _scores(n: int, seed: int, squash: float):
    """True probabilities, labels drawn from them, and a model's over-confident scores."""
    rng = np.random.default_rng(seed)
    true = rng.beta(2, 5, n)
    y = (rng.random(n) < true).astype(int)
    z = np.log(true / (1 - true))
    return y, 1 / (1 + np.exp(-squash * z)), true


def test_a_miscalibrated_model_gets_a_map_that_fixes_its_ece_on_new_rows():
    y, p, _ = _scores(20_000, 1, squash=2.5)  # over-confident: the scores run to the extremes
    days = [f"2013-09-{1 + i % 30:02d}" for i in range(len(y))]
    cal, account = choose(y, p, days)
    assert cal.method in ("platt", "isotonic"), account
    assert account["held_out"]["none"]["log_loss"] > account["held_out"][cal.method]["log_loss"]
    y2, p2, _ = _scores(20_000, 2, squash=2.5)  # new rows of the same model
    before, after = metrics(y2, p2)["ece"], metrics(y2, cal.apply(p2))["ece"]
    assert before > 0.05 and after < 0.02, (before, after)
    assert metrics(y2, cal.apply(p2))["roc_auc"] == pytest.approx(metrics(y2, p2)["roc_auc"], abs=0.002)


def test_a_calibrated_model_keeps_its_scores():
    y, p, _ = _scores(20_000, 3, squash=1.0)  # the scores are the true probabilities
    cal, account = choose(y, p, [f"d{i % 10}" for i in range(len(y))])
    assert metrics(y, cal.apply(p))["ece"] < 0.015
    assert account["held_out"]["none"]["ece"] < 0.015


def test_too_few_validation_days_leave_the_scores_as_they_are():
    y, p, _ = _scores(500, 4, squash=2.5)
    cal, account = choose(y, p, ["2013-09-01"] * len(y))
    assert cal.method == "none" and "too few" in account["reason"]


class _Constant:
    family = "xgboost"
    categories: dict = {}

    def predict_proba(self, df):
        return np.full(len(df), 0.9)

    def predict_records(self, rows):
        return np.full(len(rows), 0.9)

    def save(self, folder):
        return []


def test_the_stored_map_is_applied_on_load_for_frames_and_records(tmp_path):
    model = Calibrated(_Constant(), Calibrator("platt", a=1.0, b=-2.0))
    assert model.save(tmp_path) == [CALIBRATION_FILE]
    loaded = with_saved_calibration(_Constant(), tmp_path)
    expected = 1 / (1 + np.exp(-(np.log(9) - 2)))
    assert loaded.predict_proba(pd.DataFrame({"a": [1, 2]})) == pytest.approx([expected] * 2, abs=1e-6)
    assert loaded.predict_records([{}]) == pytest.approx([expected], abs=1e-6)
    # a version saved before calibration predicts as it always did
    assert isinstance(with_saved_calibration(_Constant(), tmp_path / "none"), _Constant)
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"method": "magic"}))
    with pytest.raises(ValueError, match="calibration.json: method must be one of"):
        with_saved_calibration(_Constant(), tmp_path)


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype("float32")
    logit = X[:, 0] * 1.5 - X[:, 1] + np.sin(3 * X[:, 2]) + 0.5 * X[:, 3] * X[:, 4]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_the_search_starts_from_the_defaults_stays_in_bounds_and_keeps_to_its_time():
    import xgboost as xgb

    from tasks.training import tuning
    from tasks.training.xgb import DEFAULT_PARAMS

    X, y = _data(3000, 5)
    Xv, yv = _data(1000, 6)
    dtrain = xgb.QuantileDMatrix(X, y, max_bin=DEFAULT_PARAMS["max_bin"])
    dvalid = xgb.QuantileDMatrix(Xv, yv, ref=dtrain)
    base = {**DEFAULT_PARAMS, "nthread": 2}
    t = time.perf_counter()
    out = tuning.search(dtrain, dvalid, yv, base, trials=4, seconds=120)
    assert 1 <= out["trials"] <= 4 and time.perf_counter() - t < 120
    assert out["best_valid_auc"] >= out["default_valid_auc"]  # the defaults were trial 0
    for name, (_, lo, hi, _) in tuning.SPACE.items():
        assert lo <= out["params"][name] <= hi, name
    # a search with no time left stops its trial at the next round and starts no other
    t = time.perf_counter()
    short = tuning.search(dtrain, dvalid, yv, base, trials=50, seconds=0.2)
    assert short["trials"] < 50 and time.perf_counter() - t < 10, short  # time, not trials


def test_a_map_that_barely_helps_on_the_validation_days_is_not_used():
    y, p, _ = _scores(20_000, 7, squash=1.05)  # nearly right: a map would fit noise and season
    cal, account = choose(y, p, [f"d{i % 10}" for i in range(len(y))])
    gain = 1 - min(v["log_loss"] for v in account["held_out"].values()) / account["held_out"]["none"]["log_loss"]
    assert gain < account["min_gain"] and cal.method == "none", account


def _features(n: int, seed: int) -> pd.DataFrame:
    """A frame with the model's columns: numerics with a signal, categoricals, the label."""
    from tasks.feature_contract import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in NUMERIC_FEATURES})
    df.loc[rng.random(n) < 0.1, NUMERIC_FEATURES[1]] = np.nan
    for i, c in enumerate(CATEGORICAL_FEATURES):
        df[c] = rng.choice([f"{c}-{k}" for k in range(3 + 2 * i)], size=n).astype(object)
    logit = df[NUMERIC_FEATURES[0]] * 1.5 + (df[CATEGORICAL_FEATURES[0]] == f"{CATEGORICAL_FEATURES[0]}-1")
    df[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def test_a_matrix_built_in_batches_is_the_matrix_built_whole():
    import xgboost as xgb

    from tasks.training.data import categories, xy
    from tasks.training.xgb import DEFAULT_PARAMS, matrix

    frame, valid = _features(2500, 3), _features(900, 4)
    cats = categories(frame)
    X, y, _ = xy(frame, cats)
    whole = xgb.QuantileDMatrix(X, y, enable_categorical=True, max_bin=256)
    batched = matrix(frame, cats, max_bin=256, batch_rows=700)  # 4 batches, the last short
    assert batched.num_row() == whole.num_row() == 2500
    assert (batched.get_label() == y).all()
    for a, b in zip(whole.get_quantile_cut(), batched.get_quantile_cut(), strict=True):
        np.testing.assert_array_equal(a, b)
    Xv, yv, _ = xy(valid, cats)
    p = {**DEFAULT_PARAMS, "nthread": 1, "subsample": 1.0, "colsample_bytree": 1.0}
    models = [xgb.train(p, d, num_boost_round=15) for d in (whole, batched)]
    dv = xgb.DMatrix(Xv, enable_categorical=True)
    np.testing.assert_allclose(models[0].predict(dv), models[1].predict(dv), rtol=1e-6)
    assert metrics(yv, models[1].predict(dv))["roc_auc"] > 0.7  # it learned the signal


def test_a_large_train_set_is_searched_on_a_sample_and_fitted_whole(monkeypatch):
    from tasks.training import xgb as trainer

    monkeypatch.setattr(trainer, "SEARCH_ROWS", 1000)
    monkeypatch.setattr(trainer, "BATCH_ROWS", 1500)
    booster, _, info = trainer.train(_features(4000, 5), _features(1000, 6),
                                     params={"nthread": 2}, tuning={"trials": 2, "seconds": 30})
    assert info["tuning"]["rows"] == 1000 and info["tuning"]["trials"] >= 1
    assert info["rows"] == {"train": 4000, "valid": 1000}
    assert info["matrix_seconds"] >= 0 and info["rounds"] >= 1


def test_the_network_sees_each_numeric_as_a_score_and_its_quantile_bins_served_alike():
    from tasks.feature_contract import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    from tasks.training.torch_model import PLE_BINS, build, prepare, prepare_records

    train = _features(2000, 8)
    k = len(NUMERIC_FEATURES)
    x_num, x_cat, _, prep = prepare(train)
    assert x_num.shape == (2000, (2 + PLE_BINS) * k) and prep["ple_bins"] == PLE_BINS
    rows = _features(5, 9).drop(columns="label_late15")
    rows.loc[0, NUMERIC_FEATURES[0]] = 1e9  # above every training value: every bin full
    rows.loc[1, NUMERIC_FEATURES[0]] = -1e9  # below: every bin empty
    rows.loc[2, NUMERIC_FEATURES[0]] = None  # missing: flagged, no score and no bins
    x, codes, _, _ = prepare(rows, prep)
    ple = x[:, 2 * k:].reshape(5, k, PLE_BINS)
    assert ple[0, 0].tolist() == [1.0] * PLE_BINS and ple[1, 0].tolist() == [0.0] * PLE_BINS
    assert ple[2, 0].tolist() == [0.0] * PLE_BINS and x[2, k] == 1.0 and x[2, 0] == 0.0
    assert ((ple[3:] >= 0) & (ple[3:] <= 1)).all() and (np.diff(ple[3:], axis=2) <= 0).all()
    records = [{c: (None if pd.isna(v) else v) for c, v in r.items()} for r in rows.to_dict("records")]
    fast, fast_codes = prepare_records(records, prep)
    np.testing.assert_allclose(fast, x, rtol=1e-6)
    assert (fast_codes == codes).all() and codes.shape == (5, len(CATEGORICAL_FEATURES))
    # a model saved before the encoding keeps its inputs (and its network's width)
    old = {key: v for key, v in prep.items() if key != "ple_bins"}
    assert prepare(rows, old)[0].shape == (5, 2 * k)
    assert build(old).mlp[0].in_features == build(prep).mlp[0].in_features - PLE_BINS * k
