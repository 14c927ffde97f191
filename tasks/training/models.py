"""What every model family offers, and the table of trainers.

A model (:class:`Model`) predicts late-arrival probabilities from a features frame, says which
features matter, and saves to / loads from a folder without pickle; so evaluation, the registry
and serving treat every family the same way. A trainer (:class:`Trainer`, one per family in
:data:`TRAINERS`) fits a model on the train frame, early-stopping or checkpointing on the
validation frame. A new family is one new entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tasks.settings import Settings


class Model(Protocol):
    family: str
    #: Each categorical feature's values seen in training (others are unknown to the model).
    categories: dict[str, list[str]]

    def predict_proba(self, df):
        """P(arrival 15+ minutes late) for each row of a features frame (a NumPy array)."""

    def predict_records(self, rows: list[dict]):
        """The same probabilities for rows given as dicts keyed by feature name (serving's
        fast path, without pandas; the serving check holds it to ``predict_proba``)."""

    def set_threads(self, n: int) -> None:
        """Use ``n`` threads per prediction call (serving: 1, its concurrency comes from
        requests, and a second thread per tiny call costs more CPU than it saves)."""

    def importance(self, df) -> dict[str, float]:
        """Feature importance, largest first; ``df`` (labelled rows) serves families that
        measure it by permutation."""

    def save(self, folder: Path) -> list[str]:
        """Write the model into ``folder``; returns the file names."""

    @classmethod
    def load(cls, folder: Path) -> Model:
        """The model saved in ``folder``, read into memory (the folder may go afterwards)."""


@dataclass(frozen=True)
class FitOptions:
    gpu: bool = False
    time_budget_s: float | None = None
    workers: int = 1  # data-parallel processes, for trainers that have them
    workdir: Path | None = None  # scratch space of the fit
    checkpoint_uri: str = ""  # where trainers that checkpoint keep their epochs (resume)
    params: dict = field(default_factory=dict)  # the family's own hyperparameters
    settings: Settings | None = None  # for trainers that write to the model store
    notice: Any = None  # a tasks.cost.interruption.Notice the trainer watches (spot capacity)


@dataclass(frozen=True)
class Trainer:
    family: str
    fit: Callable  # (train_df, valid_df, FitOptions) -> (Model, info dict)
    model: type  # the family's Model class (its ``load``)


@dataclass
class Fitted:
    family: str
    model: Model
    info: dict  # the trainer's account: params, rounds or epochs, seconds, rows, workers


def _trainers() -> dict[str, Trainer]:
    from tasks.training import torch_model, torch_train, xgb

    return {
        "xgboost": Trainer("xgboost", xgb.fit, xgb.XGBModel),
        "torch-horovod": Trainer("torch-horovod", torch_train.fit, torch_model.TorchModel),
    }


TRAINERS: dict[str, Trainer] = _trainers()
FAMILIES = tuple(TRAINERS)


def trainer(family: str) -> Trainer:
    if family not in TRAINERS:
        raise ValueError(f"model family must be one of {FAMILIES}, got {family!r}")
    return TRAINERS[family]


def fit(family: str, train_df, valid_df, options: FitOptions) -> Fitted:
    """Fit one family's model on the train frame (validation: early stopping, best epoch)."""
    model, info = trainer(family).fit(train_df, valid_df, options)
    return Fitted(family=family, model=model, info=info)


def load(family: str, folder: Path) -> Model:
    """A saved model of any family, read into memory, with its calibration map when it was
    saved with one (:mod:`tasks.training.calibration`)."""
    from tasks.training.calibration import with_saved_calibration

    return with_saved_calibration(trainer(family).model.load(folder), folder)
