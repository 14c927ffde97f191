"""A registry version's model behind the request schema: what the BentoML service calls, and
the in-process floor the load benchmark compares the server with. No BentoML import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tasks.feature_contract import MODEL_FEATURES


class Predictor:
    """Loads a version folder once (the model files and ``card.json``, never pickle)."""

    def __init__(self, folder: Path, *, threads: int = 1):
        from tasks.training.models import load

        folder = Path(folder)
        self.card = json.loads((folder / "card.json").read_text())
        self.version: str = self.card["version"]
        self.family: str = self.card["family"]
        self.model = load(self.family, folder)
        self.model.set_threads(threads)  # one per call: a server's concurrency is its requests
        self.known = {c: frozenset(v) for c, v in self.model.categories.items()}

    def frame(self, rows: list[dict]):
        import pandas as pd

        return pd.DataFrame({c: [r.get(c) for r in rows] for c in MODEL_FEATURES})

    def predict(self, rows: list[dict]) -> np.ndarray:
        """P(late) per row (dicts keyed by feature name, as the schema validated them)."""
        return np.asarray(self.model.predict_records(rows), dtype="float64")

    def describe(self) -> dict:
        """What ``/model`` answers: version, metrics, lineage."""
        c = self.card
        return {
            "version": self.version, "family": self.family, "created": c.get("created"),
            "metrics": c.get("metrics"), "baselines": c.get("baselines"),
            "code_version": c.get("code_version"),
            "training_window": {k: c["split"][k] for k in ("train_days", "valid_days", "test_days")},
            "partitions": c["split"].get("partitions", []),
            "categories": {k: sorted(v) for k, v in self.known.items()},
        }
