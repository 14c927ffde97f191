"""Data-parallel training of the tabular model with Horovod (Gloo on CPU, NCCL on GPU).

Run by ``tasks.training.torch_train`` as
``horovodrun -np N -H localhost:N --gloo python -m tasks.training.hvd_train --config cfg.json``,
or directly as one process (Horovod then runs with size 1). Each rank trains on its own shard of
the (per-epoch shuffled) training rows; ``DistributedOptimizer`` averages gradients; rank 0's
initial state is broadcast; validation metrics are allreduced. After every epoch rank 0 writes a
checkpoint (weights + optimiser state, ``.npz``) to the model store, so a killed run (a spot
interruption) resumes from its last completed epoch when started again with the same config.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from tasks.cost.interruption import INTERRUPTED_EXIT


def main(argv: list[str] | None = None) -> int:
    import horovod.torch as hvd
    import torch

    from tasks.settings import Settings
    from tasks.storage import Store, join
    from tasks.training.torch_model import build, load_npz, state_to_npz

    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    cfg = json.loads(Path(ap.parse_args(argv).config).read_text())

    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    torch.set_num_threads(max(1, int(cfg.get("threads_per_worker", 1))))
    torch.manual_seed(cfg["seed"])
    use_gpu = bool(cfg.get("gpu"))
    if use_gpu and not torch.cuda.is_available():  # never a silent CPU run when a GPU was asked
        raise SystemExit(f"rank {rank}: training on GPU was asked, but torch {torch.__version__} "
                         "sees no CUDA device (a CPU-only torch wheel, or no driver)")
    device = torch.device(f"cuda:{hvd.local_rank()}" if use_gpu else "cpu")
    if use_gpu:
        torch.cuda.set_device(hvd.local_rank())
    if rank == 0:
        print(f"horovod: {size} rank(s) on {device}"
              + (f" ({torch.cuda.get_device_name(device)}, NCCL built: {hvd.nccl_built()})" if use_gpu else ""),
              flush=True)

    data = np.load(cfg["data"], allow_pickle=False)
    prep = json.loads(Path(cfg["prep"]).read_text())
    xn, xc, y = data["train_num"], data["train_cat"], data["train_y"]
    vn, vc, vy = data["valid_num"], data["valid_cat"], data["valid_y"]

    model = build(prep, tuple(cfg["hidden"]), cfg["dropout"]).to(device)
    base_opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"] * size,
                                 weight_decay=float(cfg.get("weight_decay", 0.0)))

    store = Store(Settings.from_env(cfg["settings"]))  # the launcher's settings, explicitly
    ckpt_uri = cfg["checkpoint_uri"]
    start_epoch, history, best = 0, [], {"valid_logloss": float("inf"), "epoch": -1}
    if rank == 0 and store.exists(join(ckpt_uri, "latest.json")):
        latest = json.loads(store.read_text(join(ckpt_uri, "latest.json")))
        with tempfile.TemporaryDirectory() as tmp:
            local = store.download(join(ckpt_uri, latest["file"]), Path(tmp) / "ckpt.npz")
            meta = load_npz(local, model, base_opt)
        start_epoch, history, best = meta["epoch"] + 1, meta["history"], meta["best"]
        print(json.dumps({"event": "resumed", "from_epoch": meta["epoch"]}), flush=True)
    start_epoch = hvd.broadcast_object(start_epoch, root_rank=0)
    history = hvd.broadcast_object(history, root_rank=0)
    best = hvd.broadcast_object(best, root_rank=0)
    resumed_from = start_epoch - 1 if start_epoch > 0 else None

    opt = hvd.DistributedOptimizer(base_opt, named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(opt, root_rank=0)

    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    n_per = len(y) // size  # equal shards: every rank takes the same number of steps
    bs = int(cfg["batch_size"])
    v_idx = np.ascontiguousarray(np.arange(len(vy))[rank::size])
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    out_dir = Path(cfg["out_dir"])
    epochs = int(cfg["epochs"])
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        if cfg.get("schedule") == "cosine":  # a function of the epoch: a resumed run agrees
            for group in base_opt.param_groups:
                group["lr"] = cfg["lr"] * size * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        perm = np.random.default_rng(cfg["seed"] + epoch).permutation(len(y))
        shard = perm[rank * n_per : (rank + 1) * n_per]
        model.train()
        train_loss = 0.0
        for i in range(0, n_per, bs):
            b = shard[i : i + bs]
            opt.zero_grad()
            loss = loss_fn(model(to(xn[b]), to(xc[b])), to(y[b]))
            (loss / len(b)).backward()
            opt.step()
            train_loss += float(loss)
        seconds = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            logits = model(to(vn[v_idx]), to(vc[v_idx]))
            v_loss = float(loss_fn(logits, to(vy[v_idx])))
            probs = torch.sigmoid(logits).cpu()
        sums = hvd.allreduce(torch.tensor([v_loss, len(v_idx), train_loss, n_per, n_per / seconds],
                                          dtype=torch.float64), op=hvd.Sum, name=f"metrics.{epoch}")
        all_p = hvd.allgather(probs, name=f"p.{epoch}").numpy()
        all_i = hvd.allgather(torch.from_numpy(v_idx), name=f"i.{epoch}").numpy()
        if rank == 0:
            from sklearn.metrics import roc_auc_score

            row = {
                "epoch": epoch,
                "train_logloss": float(sums[2] / sums[3]) if sums[3] else None,
                "valid_logloss": float(sums[0] / sums[1]),
                "valid_auc": float(roc_auc_score(vy[all_i], all_p)),
                "samples_per_s": float(sums[4]),
                "seconds": round(seconds, 3),
            }
            history.append(row)
            print(json.dumps({"event": "epoch", **row}), flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "ckpt.npz"
                if row["valid_logloss"] < best["valid_logloss"]:
                    # kept beside the checkpoints under the epoch's name (before latest.json
                    # names this epoch): an attempt that resumes past its best epoch takes the
                    # weights its checkpoint's ``best`` names, not a later attempt's
                    best = {"valid_logloss": row["valid_logloss"], "epoch": epoch,
                            "file": f"best-{epoch:04d}.npz"}
                    out_dir.mkdir(parents=True, exist_ok=True)
                    state_to_npz(model, out_dir / "weights.npz", extra={"epoch": epoch})
                    store.upload_file(out_dir / "weights.npz", join(ckpt_uri, best["file"]))
                state_to_npz(model, local, base_opt,
                             extra={"epoch": epoch, "history": history, "best": best})
                name = f"epoch-{epoch:04d}.npz"
                store.upload_file(local, join(ckpt_uri, name))
                store.write_text(join(ckpt_uri, "latest.json"), json.dumps({"file": name, "epoch": epoch}))
        best = hvd.broadcast_object(best, root_rank=0)
        # A spot interruption notice (tasks.cost.interruption): the epoch is checkpointed, so
        # every rank stops here with the distinct "interrupted" status; the retry resumes.
        notice = cfg.get("notice") or {}
        due = rank == 0 and (
            (notice.get("simulate_at") and epoch + 1 >= notice["simulate_at"])
            or (notice.get("notice_file") and Path(notice["notice_file"]).exists()))
        if hvd.broadcast_object(bool(due), root_rank=0):
            if rank == 0:  # horovodrun reports any rank's failure as 1: the marker says why
                out_dir.mkdir(parents=True, exist_ok=True)
                (out_dir / "interrupted.json").write_text(json.dumps({"after_epoch": epoch}))
                print(json.dumps({"event": "interrupted", "after_epoch": epoch}), flush=True)
            hvd.shutdown()
            return INTERRUPTED_EXIT
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not (out_dir / "weights.npz").exists():  # resumed, no better epoch since: the best
            store.download(join(ckpt_uri, best["file"]), out_dir / "weights.npz")  # from before
        (out_dir / "result.json").write_text(json.dumps({
            "history": history, "best": best, "workers": size, "resumed_from": resumed_from,
            "device": str(device)}, indent=1))
    hvd.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
