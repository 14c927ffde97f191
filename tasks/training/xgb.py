"""XGBoost trainer: hist on CPU, ``device="cuda"`` on a GPU; early stopping on validation.

Categoricals use XGBoost's native categorical splits (``enable_categorical``) rather than
one-hot columns: on one year of features it trains faster for the same AUC
(``bench/bench_training.py`` measures both). The model is saved in XGBoost's UBJSON format
with its category lists beside it as JSON: no pickle anywhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

DEFAULT_PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": ["logloss", "auc"],
    "tree_method": "hist",
    "max_depth": 7,
    "learning_rate": 0.06,
    "subsample": 0.85,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "reg_lambda": 2.0,
    "max_cat_to_onehot": 1,
    "max_bin": 256,
}
MAX_ROUNDS = 2000
EARLY_STOPPING = 60
#: Rows per batch when building a training matrix: the float copy of a frame never exists whole
#: (10M rows would copy about 2 GB at once; see ``bench/bench_training_scale.py``).
BATCH_ROWS = 500_000
#: Above this many train rows, the search's trials fit on a seeded sample of them (its size is
#: in the card); the final fit uses every row.
SEARCH_ROWS = 500_000


def matrix(df, cats: dict[str, list[str]], *, max_bin: int | None = None, ref=None,
           categorical: str = "native", batch_rows: int = BATCH_ROWS):
    """An XGBoost ``QuantileDMatrix`` of a features frame (labels included when it has them),
    built from an iterator over row batches: XGBoost sketches and compresses each batch, so
    memory holds the frame and one batch's float copy, never the whole frame's. ``ref``: the
    training matrix whose bins a validation or sample matrix shares."""
    import xgboost as xgb

    return xgb.QuantileDMatrix(_Batches(df, cats, batch_rows, categorical), max_bin=max_bin,
                               ref=ref, enable_categorical=True)


class _Batches:
    """An ``xgboost.DataIter`` over ``batch_rows``-row slices of a frame, each turned into the
    model matrix (:func:`tasks.training.data.xy`) with the training category lists."""

    def __new__(cls, df, cats, batch_rows: int, categorical: str):
        import xgboost as xgb

        from tasks.training.data import xy

        class Batches(xgb.DataIter):
            def __init__(self):
                self.start = 0
                super().__init__(release_data=True)

            def next(self, input_data) -> bool:
                if self.start >= len(df):
                    return False
                X, y, _ = xy(df.iloc[self.start:self.start + batch_rows], cats)
                if categorical == "onehot":
                    X = _onehot(X, cats)
                input_data(data=X, label=y)
                self.start += batch_rows
                return True

            def reset(self) -> None:
                self.start = 0

        return Batches()


def train(train_df, valid_df, *, gpu: bool = False, params: dict | None = None,
          time_budget_s: float | None = None, categorical: str = "native",
          checkpoint_uri: str = "", settings=None, notice=None, tuning: dict | None = None):
    """Fit on train, early-stop on valid. Returns (booster, categories, info).

    With ``tuning`` (``trials`` and ``seconds``), a bounded search (:mod:`tasks.training.tuning`)
    picks the parameters first, on the same train and validation days; its time comes out of
    ``time_budget_s``. A resumed fit keeps the parameters its checkpoint was trained with.

    With ``checkpoint_uri`` (and ``settings`` for the store), a checkpoint left there by an
    interrupted attempt is resumed (boosting continues from its rounds); with ``notice``, a
    spot interruption notice stops boosting at the next round, checkpoints, and raises
    ``SpotInterrupted``."""
    import xgboost as xgb

    from tasks.training.data import categories

    p = {**DEFAULT_PARAMS, **(params or {}), "device": "cuda" if gpu else "cpu"}
    cats = categories(train_df)
    t = time.perf_counter()
    dtrain = matrix(train_df, cats, max_bin=p["max_bin"], categorical=categorical)
    dvalid = matrix(valid_df, cats, ref=dtrain, categorical=categorical)
    matrix_seconds = time.perf_counter() - t
    yv = dvalid.get_label()
    init, resumed_from, resumed_params = _resume(checkpoint_uri, settings)
    searched = None
    if resumed_params is not None:
        p = {**p, **resumed_params}
    elif tuning and tuning.get("trials"):
        from tasks.training import tuning as search

        dsearch, dsearch_valid = dtrain, dvalid
        if len(train_df) > SEARCH_ROWS:  # trials on a seeded sample; the final fit on all rows
            dsearch = matrix(train_df.sample(n=SEARCH_ROWS, random_state=search.SEED), cats,
                             ref=dtrain, categorical=categorical)  # the same bins
            dsearch_valid = matrix(valid_df, cats, ref=dsearch, categorical=categorical)
        searched = search.search(dsearch, dsearch_valid, yv, p, trials=int(tuning["trials"]),
                                 seconds=float(tuning["seconds"]))
        searched["rows"] = int(dsearch.num_row())
        p = {**p, **searched["params"]}
        if time_budget_s:
            time_budget_s = max(time_budget_s - searched["seconds"], 0.1 * time_budget_s)
    callbacks = [xgb.callback.EarlyStopping(rounds=EARLY_STOPPING, metric_name="logloss",
                                            data_name="valid", save_best=True)]
    if time_budget_s:
        callbacks.append(_time_budget(time_budget_s))
    watch = _NoticeWatch(notice) if notice is not None else None
    if watch:
        callbacks.append(watch.callback())
    t = time.perf_counter()
    booster = xgb.train(p, dtrain, num_boost_round=MAX_ROUNDS - (resumed_from or 0),
                        evals=[(dvalid, "valid")], callbacks=callbacks, verbose_eval=False,
                        xgb_model=init)
    seconds = time.perf_counter() - t
    if watch and watch.fired:
        from tasks.cost.interruption import SpotInterrupted

        where = _checkpoint(booster, checkpoint_uri, settings,
                            {k: v for k, v in p.items() if k != "device"})
        raise SpotInterrupted(f"spot interruption notice after round {watch.fired}: "
                              f"{booster.num_boosted_rounds()} rounds checkpointed to {where}; "
                              "a retry resumes from them")
    info = {
        "trainer": "xgboost",
        "params": dict(p),
        "best_iteration": int(booster.best_iteration),
        "rounds": int(booster.num_boosted_rounds()),
        "train_seconds": round(seconds, 3),
        "matrix_seconds": round(matrix_seconds, 3),
        "categorical": categorical,
        "rows": {"train": int(dtrain.num_row()), "valid": int(len(yv))},
        "resumed_from": resumed_from,
        "tuning": searched,
    }
    return booster, cats, info


CHECKPOINT_META = "xgb-latest.json"


def _resume(checkpoint_uri: str, settings):
    """(booster, rounds, the parameters it was trained with) of the checkpoint an interrupted
    attempt left, else (None, None, None)."""
    if not (checkpoint_uri and settings):
        return None, None, None
    import json

    import xgboost as xgb

    from tasks.storage import Store, join

    store = Store(settings)
    meta_uri = join(checkpoint_uri, CHECKPOINT_META)
    if not store.exists(meta_uri):
        return None, None, None
    meta = json.loads(store.read_text(meta_uri))
    booster = xgb.Booster()
    booster.load_model(bytearray(store.read_bytes(join(checkpoint_uri, meta["file"]))))
    return booster, int(meta["rounds"]), meta.get("params") or {}


def _checkpoint(booster, checkpoint_uri: str, settings, params: dict | None = None) -> str:
    """Write the booster (UBJSON) and then the pointer to it: a reader never sees a pointer to
    a half-written model."""
    if not (checkpoint_uri and settings):
        return "nowhere (no checkpoint location)"
    import json

    from tasks.storage import Store, join

    store = Store(settings)
    rounds = int(booster.num_boosted_rounds())
    name = f"xgb-{rounds:05d}.ubj"
    store.write_bytes(join(checkpoint_uri, name), bytes(booster.save_raw("ubj")))
    store.write_text(join(checkpoint_uri, CHECKPOINT_META),
                     json.dumps({"file": name, "rounds": rounds, "params": params or {}}))
    return join(checkpoint_uri, name)


class _NoticeWatch:
    """Stops boosting at the first round a spot interruption notice is due."""

    def __init__(self, notice):
        self.notice = notice
        self.fired: int | None = None

    def callback(self):
        import xgboost as xgb

        watch = self

        class SpotNotice(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log) -> bool:
                if watch.notice.due(epoch + 1):
                    watch.fired = epoch + 1
                    return True
                return False

        return SpotNotice()


def fit(train_df, valid_df, options):
    """The trainer table's entry: ``(XGBModel, info)`` (``options``: a ``FitOptions``)."""
    booster, cats, info = train(train_df, valid_df, gpu=options.gpu,
                                params=options.params or None,
                                time_budget_s=options.time_budget_s,
                                checkpoint_uri=options.checkpoint_uri, settings=options.settings,
                                notice=options.notice, tuning=_tuning(options))
    return XGBModel(booster, cats), info


def _tuning(options) -> dict | None:
    """The search's limits for a fit with the family's default parameters (explicit ones are
    taken as they are): the settings' trials and minutes, at most a third of the time budget."""
    s = options.settings
    if options.params or s is None or not s.tuning_trials:
        return None
    seconds = s.tuning_minutes * 60
    if options.time_budget_s:
        seconds = min(seconds, options.time_budget_s / 3)
    return {"trials": s.tuning_trials, "seconds": seconds}


def _onehot(X, cats):
    import pandas as pd

    out = pd.get_dummies(X, columns=list(cats), dummy_na=False, dtype="float32")
    return out


def _time_budget(seconds: float):
    """A callback that stops boosting once ``seconds`` have passed (the best model is kept)."""
    import xgboost as xgb

    class TimeBudget(xgb.callback.TrainingCallback):
        def before_training(self, model):
            self.start = time.perf_counter()
            return model

        def after_iteration(self, model, epoch, evals_log) -> bool:
            return time.perf_counter() - self.start > seconds

    return TimeBudget()


class XGBModel:
    """An XGBoost booster with its category lists; saved and loaded without pickle."""

    family = "xgboost"

    def __init__(self, booster, cats: dict[str, list[str]]):
        self.booster = booster
        self.cats = cats
        self.categories = cats

    @classmethod
    def load(cls, folder: Path) -> XGBModel:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(Path(folder) / "model.ubj")
        booster.set_param({"device": "cpu"})
        return cls(booster, json.loads((Path(folder) / "categories.json").read_text()))

    def save(self, folder: Path) -> list[str]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(folder / "model.ubj")
        (folder / "categories.json").write_text(json.dumps(self.cats, indent=1))
        return ["model.ubj", "categories.json"]

    def predict_proba(self, df):
        import xgboost as xgb

        from tasks.training.data import xy

        X, _, _ = xy(df, self.cats)
        best = self.booster.attr("best_iteration")
        rng = (0, int(best) + 1) if best is not None else (0, 0)
        return self.booster.predict(xgb.DMatrix(X, enable_categorical=True), iteration_range=rng)

    def set_threads(self, n: int) -> None:
        self.booster.set_param({"nthread": n})

    def predict_records(self, rows: list[dict]):
        """:meth:`predict_proba` for rows given as dicts (serving's fast path): numerics as
        float32 and categories as their training codes, the same matrix :func:`xy` builds."""
        import numpy as np

        from tasks.feature_contract import CATEGORICAL_FEATURES, NUMERIC_FEATURES

        if not hasattr(self, "_codes"):
            self._codes = [{v: float(i) for i, v in enumerate(self.cats[c])}
                           for c in CATEGORICAL_FEATURES]
        nan = float("nan")
        X = np.array(
            [[nan if r[c] is None else r[c] for c in NUMERIC_FEATURES]
             + [nan if r[c] is None else ix.get(r[c], nan)
                for c, ix in zip(CATEGORICAL_FEATURES, self._codes, strict=True)] for r in rows],
            dtype=np.float32).reshape(len(rows), len(NUMERIC_FEATURES) + len(CATEGORICAL_FEATURES))
        best = self.booster.attr("best_iteration")
        rng = (0, int(best) + 1) if best is not None else (0, 0)
        return self.booster.inplace_predict(X, iteration_range=rng)

    def importance(self, df=None) -> dict[str, float]:
        """Share of the total gain per feature (``df`` is not needed)."""
        gain = self.booster.get_score(importance_type="total_gain")
        total = sum(gain.values()) or 1.0
        return {k: round(v / total, 5) for k, v in sorted(gain.items(), key=lambda kv: -kv[1])}
