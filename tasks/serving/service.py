"""The BentoML service of a packaged model version (``bentoml serve``; built by
:mod:`tasks.serving.package`, which puts the version's files in the Bento's ``model/``).

Endpoints (all POST with a JSON body, as BentoML serves its APIs):

- ``/predict``: one feature row → ``{"late_probability", "model_version"}``;
- ``/predict_batch``: ``{"rows": [...]}`` → a list of probabilities; adaptive batching merges
  concurrent requests into one model call (most rows and longest wait from the settings);
- ``/model``: the model version, its metrics and lineage, and the categories it knows;
- BentoML's own ``/livez``, ``/readyz`` and Prometheus ``/metrics`` (GET).

A request that breaks the schema (:mod:`tasks.serving.schema`: missing or extra fields, wrong
types, NaN or infinity, a carrier or origin outside the contract, an empty or oversized batch) is
a 400 whose message names the field; the server keeps serving. Settings come from the
``FLIGHTLINE_*`` environment of the server (this module is an edge).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import bentoml
from bentoml.validators import ContentType
from pydantic import BaseModel, Field

from tasks.serving.schema import FeatureRow
from tasks.settings import Settings

SETTINGS = Settings.from_env()
#: The packaged version's files (inside the Bento: ``src/model``); overridable for development.
MODEL_DIR = Path(SETTINGS.serve_model_dir or Path(__file__).resolve().parents[2] / "model")

BatchRows = Annotated[list[FeatureRow], Field(min_length=1, max_length=SETTINGS.serve_max_batch_size)]
# Outputs declare their media type: BentoML otherwise derives it from the output's JSON schema
# on every response (a fifth of a single prediction's server time).
Probabilities = Annotated[list[float], ContentType("application/json")]
Json = Annotated[dict, ContentType("application/json")]


class Prediction(BaseModel):
    late_probability: float
    model_version: str


@bentoml.service(
    name="flightline",
    workers=SETTINGS.serve_workers,
    traffic={"timeout": 30, "max_concurrency": 2000},
    logging={"access": {"enabled": SETTINGS.serve_access_log == "on"}},
)
class Flightline:
    def __init__(self) -> None:
        from tasks.serving.predictor import Predictor

        self.predictor = Predictor(MODEL_DIR)  # loaded once, from the version's own files
        self.version = self.predictor.version
        self.log = None
        if SETTINGS.prediction_log == "on":
            if "data_root" not in SETTINGS.model_fields_set:  # not given to the server
                print("prediction log off: FLIGHTLINE_DATA_ROOT is not set for the server")
            else:
                from tasks.serving.prediction_log import PredictionLog

                self.log = PredictionLog(SETTINGS, self.version)
        # Everything loaded so far (libraries, the model) lives as long as the server: keep it
        # out of the garbage collector's full passes, which otherwise stall requests for tens
        # of milliseconds (the p99) every few thousand requests.
        gc.collect()
        gc.freeze()

    def _predict(self, rows: list[FeatureRow], endpoint: str) -> list[float]:
        records = [r.__dict__ for r in rows]
        probs = self.predictor.predict(records)
        if self.log is not None:
            self.log.append(records, probs, endpoint)
        return probs.tolist()

    @bentoml.api
    async def predict(self, row: FeatureRow) -> Prediction:  # type: ignore[valid-type]
        """P(arrival 15+ minutes late) for one flight's feature row."""
        # async: a 0.2 ms prediction costs less on the event loop than a hop to a thread
        return Prediction(late_probability=self._predict([row], "predict")[0],
                          model_version=self.version)

    @bentoml.api(batchable=True, max_batch_size=SETTINGS.serve_max_batch_size,
                 max_latency_ms=SETTINGS.serve_max_latency_ms)
    async def predict_batch(self, rows: BatchRows) -> Probabilities:
        """P(late) for each feature row, in order (concurrent requests are batched together)."""
        return self._predict(rows, "predict_batch")

    @bentoml.api(route="/model")
    def model(self) -> Json:
        """The served model version, its test metrics and its lineage."""
        return self.predictor.describe()

    @bentoml.on_shutdown
    def close(self) -> None:
        if self.log is not None:
            self.log.close()
