"""A bounded hyperparameter search for XGBoost (Optuna), inside the training's time budget.

Each trial fits on the train days with early stopping on the validation days and scores the
validation ROC AUC; Optuna's TPE sampler (seeded) proposes the next trial, and a median pruner
stops a trial whose validation log loss is worse than the median of the finished trials at the
same round. The first trial is always the defaults (``xgb.DEFAULT_PARAMS``), so the search never
picks parameters that did worse on the validation days than the defaults. The search stops after
``trials`` trials or ``seconds``, whichever comes first (a running trial stops at its next round
when the time is up). The test days are never seen. What it tried and found goes into the model
card (``trainer.tuning``).
"""

from __future__ import annotations

import time

#: What the search may change, and within what bounds (log: sampled on a log scale).
SPACE = {
    "max_depth": ("int", 3, 10, False),
    "learning_rate": ("float", 0.03, 0.3, True),
    "min_child_weight": ("float", 1.0, 100.0, True),
    "subsample": ("float", 0.5, 1.0, False),
    "colsample_bytree": ("float", 0.4, 1.0, False),
    "reg_lambda": ("float", 0.1, 30.0, True),
    "max_cat_threshold": ("int", 8, 64, True),
}
TRIAL_ROUNDS = 1000
TRIAL_EARLY_STOPPING = 30
SEED = 2013


def search(dtrain, dvalid, y_valid, base: dict, *, trials: int, seconds: float) -> dict:
    """The best parameters found for ``base`` (XGBoost's parameters) over ``dtrain`` /
    ``dvalid`` (DMatrix-like, ``y_valid`` its labels), and the account of the search."""
    import optuna
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    def objective(trial) -> float:
        p = dict(base)
        for name, (kind, lo, hi, log) in SPACE.items():
            suggest = trial.suggest_int if kind == "int" else trial.suggest_float
            p[name] = suggest(name, lo, hi, log=log)
        booster = xgb.train(
            p, dtrain, num_boost_round=TRIAL_ROUNDS, evals=[(dvalid, "valid")],
            verbose_eval=False, callbacks=[
                xgb.callback.EarlyStopping(rounds=TRIAL_EARLY_STOPPING, metric_name="logloss",
                                           data_name="valid", save_best=True),
                _Watch(trial, deadline)])
        rounds = int(booster.num_boosted_rounds())
        trial.set_user_attr("rounds", rounds)
        return float(roc_auc_score(y_valid, booster.predict(dvalid)))

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=min(4, trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=50))
    study.enqueue_trial({k: base[k] for k in SPACE if k in base}, skip_if_exists=True)
    def out_of_time(study, trial) -> None:  # no new trial once the time is up
        if time.perf_counter() > deadline:
            study.stop()

    study.optimize(objective, n_trials=trials, timeout=seconds, catch=(),
                   callbacks=[out_of_time])
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return {"params": {}, "trials": 0, "seconds": round(time.perf_counter() - started, 2),
                "reason": "no trial finished within the search's time"}
    best = study.best_trial
    default = study.trials[0]
    return {
        "params": {k: v for k, v in best.params.items()},
        "best_valid_auc": round(best.value, 5),
        "default_valid_auc": (round(default.value, 5)
                              if default.state == optuna.trial.TrialState.COMPLETE else None),
        "trials": len(done),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "limit": {"trials": trials, "seconds": round(seconds, 1)},
        "seconds": round(time.perf_counter() - started, 2),
        "sampler": f"optuna TPE (seed {SEED}), median pruner",
        "space": {k: [lo, hi] + (["log"] if log else []) for k, (_, lo, hi, log) in SPACE.items()},
    }


class _Watch:
    """Reports the validation log loss to Optuna every 10 rounds (a pruned trial stops), and
    stops the trial once the search's time is up."""

    def __new__(cls, trial, deadline: float):
        import optuna
        import xgboost as xgb

        class Watch(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log) -> bool:
                if time.perf_counter() > deadline:
                    return True
                if epoch % 10 == 9:
                    trial.report(-float(evals_log["valid"]["logloss"][-1]), epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return False

        return Watch()
