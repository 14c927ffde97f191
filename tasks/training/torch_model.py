"""The PyTorch tabular model: embeddings for categoricals, an MLP over the numerics as normal
scores of their training quantiles, missing flags and piecewise-linear quantile bins.

Weights, optimiser state and preprocessing are saved as NumPy ``.npz`` (``allow_pickle=False``)
plus JSON, never with ``torch.save``/pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tasks.feature_contract import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES


def prepare(df, prep: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """(numeric float32 [n, 2*k] with missing indicators, categorical codes int64, y, prep)."""
    import pandas as pd

    if prep is None:
        num = df[NUMERIC_FEATURES].apply(pd.to_numeric, errors="coerce").astype("float64")
        prep = {
            "mean": num.mean().fillna(0).tolist(),
            "std": num.std().replace(0, 1).fillna(1).tolist(),
            "quantiles": [_knots(num[c].dropna().to_numpy()) for c in NUMERIC_FEATURES],
            "categories": {c: sorted(map(str, df[c].dropna().unique())) for c in CATEGORICAL_FEATURES},
            "ple_bins": PLE_BINS,
        }
    num = df[NUMERIC_FEATURES].apply(pd.to_numeric, errors="coerce").to_numpy("float64")
    codes = []
    for c in CATEGORICAL_FEATURES:
        index = {v: i + 1 for i, v in enumerate(prep["categories"][c])}  # 0 = missing/unknown
        codes.append(df[c].map(lambda v, index=index: index.get(str(v), 0) if v is not None else 0)
                     .fillna(0).to_numpy("int64"))
    x_num, x_cat = _scale(num, np.stack(codes, axis=1), prep)
    y = df[LABEL].to_numpy("float32") if LABEL in df else None
    return x_num, x_cat, y, prep


QUANTILE_KNOTS = 101
#: Each numeric also enters as a piecewise-linear encoding of its training quantile level over
#: this many equal bins (Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep
#: Learning", 2022): bin t reads 0 below it, 1 above it and the position inside it, so the
#: network can draw a step at any bin edge as a tree splits.
PLE_BINS = 8


def _knots(values: np.ndarray) -> dict:
    """A column's training quantiles as (value, level) knots, repeated values merged at their
    mean level (a discrete column such as the month keeps one knot per value)."""
    if len(values) == 0:
        return {"x": [], "u": []}
    levels = np.linspace(0, 1, QUANTILE_KNOTS)
    knots = np.quantile(values, levels)
    x, inverse = np.unique(knots, return_inverse=True)
    u = np.bincount(inverse, weights=levels) / np.bincount(inverse)
    return {"x": x.tolist(), "u": u.tolist()}


def _scale(num: np.ndarray, codes: np.ndarray, prep: dict) -> tuple[np.ndarray, np.ndarray]:
    """Numerics with missing indicators (float32), and the category codes. Each numeric goes
    through its training quantiles to a standard normal score (delays run to hours, and a
    network learns better from ranks than from such tails); models saved before the quantiles
    were kept are standardised as they were trained."""
    from scipy.special import ndtri

    missing = np.isnan(num)
    parts = []
    if "quantiles" in prep:
        levels = np.full_like(num, 0.5)
        for j, k in enumerate(prep["quantiles"]):
            if len(k["x"]) > 1:
                levels[:, j] = np.interp(num[:, j], k["x"], k["u"])
        levels[missing] = 0.5
        num = ndtri(np.clip(levels, 0.005, 0.995))
        bins = int(prep.get("ple_bins", 0))  # models saved before the encoding have none
        if bins:
            ple = np.clip(levels[:, :, None] * bins - np.arange(bins), 0.0, 1.0)
            ple[missing] = 0.0
            parts.append(ple.reshape(len(num), -1))
    else:
        num = (num - np.array(prep["mean"])) / np.array(prep["std"])
    num[missing] = 0.0
    return np.concatenate([num, missing.astype("float64"), *parts], axis=1).astype("float32"), codes


def prepare_records(rows: list[dict], prep: dict) -> tuple[np.ndarray, np.ndarray]:
    """:func:`prepare` for a few rows given as dicts (serving), without pandas."""
    nan = float("nan")
    num = np.array([[nan if r[c] is None else r[c] for c in NUMERIC_FEATURES] for r in rows],
                   dtype="float64").reshape(len(rows), len(NUMERIC_FEATURES))
    index = [{v: i + 1 for i, v in enumerate(prep["categories"][c])} for c in CATEGORICAL_FEATURES]
    codes = np.array([[ix.get(r[c], 0) if r[c] is not None else 0
                       for c, ix in zip(CATEGORICAL_FEATURES, index, strict=True)] for r in rows],
                     dtype="int64").reshape(len(rows), len(CATEGORICAL_FEATURES))
    return _scale(num, codes, prep)


def build(prep: dict, hidden: tuple[int, ...] = (128, 64), dropout: float = 0.1):
    import torch
    from torch import nn

    class TabularNet(nn.Module):
        def __init__(self):
            super().__init__()
            sizes = [len(prep["categories"][c]) + 1 for c in CATEGORICAL_FEATURES]
            self.embeddings = nn.ModuleList(
                nn.Embedding(n, min(16, (n + 1) // 2 + 1)) for n in sizes)
            width = ((2 + int(prep.get("ple_bins", 0)) * ("quantiles" in prep)) * len(NUMERIC_FEATURES)
                     + sum(e.embedding_dim for e in self.embeddings))
            layers: list[nn.Module] = []
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
                width = h
            layers.append(nn.Linear(width, 1))
            self.mlp = nn.Sequential(*layers)

        def forward(self, x_num, x_cat):
            emb = [e(x_cat[:, i]) for i, e in enumerate(self.embeddings)]
            return self.mlp(torch.cat([x_num, *emb], dim=1)).squeeze(1)

    return TabularNet()


def state_to_npz(model, path: Path, optimizer=None, extra: dict | None = None) -> None:
    """Weights (and optimiser state) as plain arrays; scalars and structure as JSON inside."""
    arrays = {f"model/{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    meta = dict(extra or {})
    if optimizer is not None:
        sd = optimizer.state_dict()
        meta["param_groups"] = sd["param_groups"]
        for idx, st in sd["state"].items():
            for name, val in st.items():
                arrays[f"opt/{idx}/{name}"] = val.detach().cpu().numpy() if hasattr(val, "detach") else np.asarray(val)
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_npz(path: Path, model, optimizer=None) -> dict:
    import torch

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta_json"]).decode())
        model.load_state_dict({k[len("model/"):]: torch.from_numpy(z[k].copy())
                               for k in z.files if k.startswith("model/")})
        if optimizer is not None and "param_groups" in meta:
            state: dict = {}
            for k in z.files:
                if k.startswith("opt/"):
                    _, idx, name = k.split("/", 2)
                    state.setdefault(int(idx), {})[name] = torch.from_numpy(z[k].copy())
            optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta


class TorchModel:
    """A Horovod/PyTorch tabular model: weights (``.npz``), preprocessing and shape (JSON);
    saved and loaded without pickle."""

    family = "torch-horovod"
    FILES = ("weights.npz", "prep.json", "model.json")

    def __init__(self, files: dict[str, bytes]):
        import io

        import torch

        self.files = files
        self.prep = json.loads(files["prep.json"])
        self.categories = self.prep["categories"]
        cfg = json.loads(files["model.json"])
        self.net = build(self.prep, tuple(cfg["hidden"]), cfg["dropout"])
        load_npz(io.BytesIO(files["weights.npz"]), self.net)
        self.net.eval()
        self._torch = torch

    @classmethod
    def load(cls, folder: Path) -> TorchModel:
        return cls({name: (Path(folder) / name).read_bytes() for name in cls.FILES})

    def save(self, folder: Path) -> list[str]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        return list(self.files)

    def predict_proba(self, df) -> np.ndarray:
        x_num, x_cat, _, _ = prepare(df, self.prep)
        return self._predict(x_num, x_cat)

    def set_threads(self, n: int) -> None:
        self._torch.set_num_threads(n)

    def predict_records(self, rows: list[dict]) -> np.ndarray:
        """:meth:`predict_proba` for rows given as dicts (serving's fast path)."""
        return self._predict(*prepare_records(rows, self.prep))

    def _predict(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.no_grad():
            out = []
            for i in range(0, len(x_num), 65536):
                logits = self.net(torch.from_numpy(x_num[i:i + 65536]), torch.from_numpy(x_cat[i:i + 65536]))
                out.append(torch.sigmoid(logits).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def importance(self, df) -> dict[str, float]:
        """Permutation importance on labelled rows ``df`` (ROC AUC lost per shuffled feature)."""
        from tasks.training.evaluate import permutation_importance

        return permutation_importance(self, df, np.random.default_rng(0))
