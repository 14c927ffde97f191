"""The training flow: a window of published features to candidates, and the promotion decision.

The window's days are split by date (train, validation, test; never at random); the cost
flow's step chooses capacity within the budget; one trainer per family fits, evaluates and
registers a candidate (on spot: it checkpoints and stops on an interruption notice); the
promotion decision compares the best with the champion on the same test days; the serving
flow's steps package and release the champion. The steps, as :data:`FLOW` declares them:

"""

from __future__ import annotations

import subprocess
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from tasks.cost.budget import TRAINER_TASKS
from tasks.feature_contract import LABEL
from tasks.flows import cost, serving
from tasks.flows.steps import Flow, Pod, step
from tasks.settings import PROJECT_ROOT, Settings
from tasks.storage import join
from tasks.training import hardware, registry
from tasks.training.calibration import calibrate
from tasks.training.data import Split, frames, prepare_split
from tasks.training.evaluate import Evaluation, evaluate, metrics
from tasks.training.models import FAMILIES, FitOptions, Fitted, fit, load
from tasks.training.promotion import decide_promotion
from tasks.training.reference import save_reference
from tasks.training.registry import Candidate


def code_version(settings: Settings) -> str:
    """The code a model was trained with: the setting, else this checkout's git commit."""
    if settings.code_version:
        return settings.code_version
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--",
                                "tasks", "dags", "plugins", "expectations"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def register(fitted: Fitted, evaluation: Evaluation, split: Split, folder: Path, *,
             run_key: str, on_gpu: bool, started: float, settings: Settings,
             reference: dict | None = None, calibration: dict | None = None) -> Candidate:
    """Publish the version folder (model, evaluation files, card) as a new registry version."""
    info = fitted.info
    version = registry.new_version(fitted.family)
    card = {
        "version": version, "family": fitted.family, "created": datetime.now(UTC).isoformat(),
        "metrics": evaluation.metrics, "baselines": evaluation.baselines,
        "split": split.to_dict(), "code_version": code_version(settings),
        "params": info.get("params"), "trainer": {k: v for k, v in info.items() if k != "params"},
        "hardware": hardware.describe(on_gpu) | {"workers": info.get("workers", 1)},
        "duration_s": round(time.perf_counter() - started, 2), "plots": evaluation.plots,
        "run_key": run_key, "reference": reference, "calibration": calibration,
    }
    uri = registry.register(folder, card, settings)
    return Candidate(version=version, family=fitted.family, uri=uri, metrics=evaluation.metrics,
                     baselines=evaluation.baselines, test_days=split.test_days,
                     duration_s=card["duration_s"])


def train_candidate(family: str, split: Split, *, run_key: str, settings: Settings,
                    workers: int = 2, gpu: str = "auto", time_budget_minutes: float = 60,
                    notice=None, **params) -> Candidate:
    """Fit one family on the split, evaluate it on the test days, register it (not champion).

    ``run_key`` names the run's checkpoints (the same key resumes); ``params`` are the family's
    hyperparameters. Scratch files live in a temporary folder that is always removed.
    ``notice`` (:class:`tasks.cost.interruption.Notice`): on spot capacity, the interruption
    notice the trainer watches; it then checkpoints and raises ``SpotInterrupted``.
    """
    if family not in FAMILIES:
        raise ValueError(f"model family must be one of {FAMILIES}, got {family!r}")
    on_gpu = hardware.use_gpu(gpu)
    started = time.perf_counter()
    train_df, valid_df, test_df = frames(split, settings)
    scratch = None
    if settings.horovod_hostfile and not settings.is_s3:  # ranks on other nodes read the arrays
        scratch = Path(settings.root) / ".scratch"
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"flightline-train-{family}-", dir=scratch) as tmp:
        work = Path(tmp)
        options = FitOptions(
            gpu=on_gpu, time_budget_s=time_budget_minutes * 60, workers=workers, workdir=work,
            checkpoint_uri=join(settings.zone("models"), "checkpoints", run_key.replace("/", "_")),
            params=params, settings=settings, notice=notice)
        fitted = fit(family, train_df, valid_df, options)
        calibrated, calibration = calibrate(fitted.model, valid_df)
        folder = work / "version"
        calibrated.save(folder)
        model = load(family, folder)  # evaluated as saved: what the registry will serve
        evaluation = evaluate(model, train_df, test_df, folder)
        calibration["test_ece_uncalibrated"] = round(
            metrics(test_df[LABEL].to_numpy(), fitted.model.predict_proba(test_df))["ece"], 5)
        reference = save_reference(model, train_df, folder, settings)  # what monitoring compares
        return register(fitted, evaluation, split, folder, run_key=run_key, on_gpu=on_gpu,
                        started=started, settings=settings, reference=reference,
                        calibration=calibration)


def train_xgboost(split: Split, settings: Settings, **options) -> Candidate:
    """:func:`train_candidate` for XGBoost (``options``: its keyword options and parameters)."""
    return train_candidate("xgboost", split, settings=settings, **options)


def train_torch_horovod(split: Split, settings: Settings, **options) -> Candidate:
    """:func:`train_candidate` for the PyTorch model trained data-parallel with Horovod."""
    return train_candidate("torch-horovod", split, settings=settings, **options)


_TRAINER = Pod(cpu="4", memory="16Gi", gpu=True)

FLOW = Flow("training", dag="flightline_training", steps=[
    step(prepare_split, "the window's days by date: train, validation, test (never at random)"),
    step(cost.choose_within_budget, "the cost flow: spot prices, the choice, the budget check",
         name="choose_capacity", writes=("costs",)),
    step(train_xgboost, "fit, evaluate, register an XGBoost candidate", pod=_TRAINER,
         writes=("models",)),
    step(train_torch_horovod, "fit (Horovod ranks), evaluate, register a PyTorch candidate",
         pod=_TRAINER, writes=("models",)),
    step(decide_promotion, "the best candidate against the champion on the same test days",
         writes=("models",)),
    *serving.FLOW,
])
__doc__ += FLOW.table()


def run_training(end: date, window_days: int, settings: Settings, *, families: list[str],
                 run_key: str, workers: int = 2, gpu: str = "auto", margin: float = 0.002,
                 force: bool = False, params: dict[str, dict] | None = None,
                 release: bool = False) -> dict:
    """Every step in one process (the ``flightline train`` CLI): split, one candidate per
    family (``params``: family -> hyperparameters), the promotion decision, and with
    ``release`` the serving flow (package the champion, check it, release it)."""
    trainers = {f: TRAINER_TASKS[f] for f in families}
    skip = {"choose_capacity", *(set(TRAINER_TASKS.values()) - set(trainers.values()))}
    if not release:
        skip |= set(serving.FLOW.steps)
    options = {task: {"run_key": f"{run_key}-{f}", "workers": workers, "gpu": gpu,
                      **(params or {}).get(f, {})} for f, task in trainers.items()}
    options["decide_promotion"] = {"margin": margin, "force": force}
    r = FLOW.run(settings, end=end, window_days=window_days, skip=skip, options=options)
    out = {"split": {k: v for k, v in r["prepare_split"].to_dict().items() if k != "partitions"},
           "candidates": [r[t].to_dict() for t in trainers.values() if r.get(t)],
           "promotion": r["decide_promotion"].to_dict()}
    if release:
        out["release"] = (r["release"].to_dict() if r.get("release")
                          else {"released": registry.released(settings)})
    return out
