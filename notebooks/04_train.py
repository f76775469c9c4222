# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Train the U-Net (Gallwey et al.) and SegFormer (VitSegh24)
#
# **Purpose.** Train the two papers' models on the tiles of notebook 03 and score them
# per split on **whole tiles** (both papers validated on random crops, and VitSegh24 reused
# its validation set for model selection; here the best epoch is picked on whole
# validation tiles and the test split is scored once, at the end).
#
# - **U-Net** (Gallwey et al. §2.4): three classes (mines, built, vegetation), two 50 %
#   dropout layers (end of the encoder and bottleneck), class-weighted cross-entropy with
#   the vegetation weight halved, SGD with momentum 0.9, learning rate 5e-2 divided by 10
#   every `lr_step_epochs` (10 in the paper), weight decay 1e-4, batch 16, random
#   flips/rotations of random patches. Best epoch by validation mean IoU.
# - **SegFormer** `mit_b0` (VitSegh24): binary mine / not mine (two output channels),
#   Tversky loss (MineSegSAT, which VitSegh24 follows), AdamW, batch 8. Best epoch by
#   validation mine F1, as in the paper. VitSegh24 fine-tuned ImageNet weights for 1000
#   epochs; nothing can be downloaded here, so it trains from scratch with a larger
#   learning rate.
#
# The demo parameters are sized for a 2-core CPU (about 10 minutes for both models): a
# ResNet-18 encoder instead of ResNet-34, 128-pixel patches and a few hundred patches per
# epoch. The papers' full settings are the defaults of `vitseg.train.TrainConfig`.
#
# **Inputs.** `<report_dir>/data/tiles/` (chip folders and `index.csv` with a `split`
# column, from 03_labels_tiles), or any folder of `images/*.tif` + `masks/*.tif`.
#
# **Outputs.** `models/<arch>/{best,last}.pt`, `history.csv`; figures (learning curves,
# predicted test tiles); tables (`train_scores.csv`: F1/precision/recall/IoU per split
# beside VitSegh24 Table 1).

# %% tags=["parameters"]
report_dir = "reports/demo"
seed = 0
simulated = True
tiles_dir = ""
archs = ["unet", "segformer"]
patch_px = 128
samples_per_epoch = 512
num_workers = 0
device = "auto"
bf16 = "auto"
lr_step_epochs = 10
unet_encoder = "resnet18"
unet_epochs = 16
unet_batch_size = 16
unet_lr = 0.05
unet_loss = "ce"
segformer_encoder = "mit_b0"
unet_encoder_weights = ""  # empty: from scratch (offline); imagenet with the network
segformer_encoder_weights = ""  # VitSegh24 fine-tuned ImageNet weights (imagenet)
segformer_epochs = 10
segformer_batch_size = 8
segformer_lr = 0.001
segformer_loss = "tversky"
tversky_alpha = 0.3
tversky_beta = 0.7
n_example_tiles = 4
overwrite = False

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import vitseg
from vitseg import datasets, io, models, plotting, train
from vitseg.constants import BINARY_CLASSES, CLASSES
from vitseg.errors import LabelError

io.use_repo_root()  # relative paths from the repository root, wherever the kernel starts
run = io.start_run(
    report_dir,
    params={
        "seed": seed, "simulated": simulated, "tiles_dir": tiles_dir, "archs": archs,
        "patch_px": patch_px, "samples_per_epoch": samples_per_epoch,
        "num_workers": num_workers, "device": device, "bf16": bf16,
        "lr_step_epochs": lr_step_epochs, "unet_encoder": unet_encoder,
        "unet_epochs": unet_epochs, "unet_batch_size": unet_batch_size, "unet_lr": unet_lr,
        "unet_loss": unet_loss, "segformer_encoder": segformer_encoder,
        "unet_encoder_weights": unet_encoder_weights,
        "segformer_encoder_weights": segformer_encoder_weights,
        "segformer_epochs": segformer_epochs, "segformer_batch_size": segformer_batch_size,
        "segformer_lr": segformer_lr, "segformer_loss": segformer_loss,
        "tversky_alpha": tversky_alpha, "tversky_beta": tversky_beta,
        "n_example_tiles": n_example_tiles, "overwrite": overwrite,
    },
    notebook="04_train",
)  # fmt: skip
tiles_path = Path(tiles_dir) if tiles_dir else run.data / "tiles"
data_source = io.data_source(simulated)
label = "[SIMULATED] " if simulated else ""
dev = models.select_device(device)
use16, why16 = models.bf16_decision(dev, bf16)
thp = vitseg.compat.huge_pages()  # torch's large tensors on huge pages (README "Benchmarks")
io.update_manifest(run.root, "precision", {"device": str(dev), "bf16": use16, "reason": why16,
                                           "huge_pages": thp})  # fmt: skip
print(f"vitseg {vitseg.__version__}; tiles {tiles_path}; device {dev}; {why16}; "
      f"torch threads {torch.get_num_threads()}; {thp}")  # fmt: skip

# %% [markdown]
# ## Tiles and band statistics
# Per-band mean and standard deviation come from the **training** tiles only. The
# SegFormer reads the same tiles with the masks mapped to VitSegh24's binary scheme
# (mines = 1, built and vegetation = 0; no data stays 255).

# %%
all_chips = datasets.load_chip_folder(tiles_path)
train_chips = all_chips.subset("train")
train_px = np.bincount(
    np.concatenate([train_chips.read_mask(i).ravel() for i in range(len(train_chips))]),
    minlength=256,
)[: len(CLASSES)]
present = [c for c, n in zip(CLASSES, train_px, strict=True) if n > 0]
print("training pixels per class:", dict(zip(CLASSES, train_px.tolist(), strict=True)))
if "mines" not in present:
    raise LabelError(
        f"the training tiles in {tiles_path} hold no mine pixels; check labels_file, its "
        "class map and the labelled extent (notebook 03)"
    )
if len(present) < len(CLASSES):
    missing = [c for c in CLASSES if c not in present]
    print(f"NOTE: the labels have no {missing} pixels in the training tiles, so the U-Net "
          f"is trained on {present} only (a class with no examples is never trained). Add "
          f"polygons of {missing} to labels_file for the full Gallwey scheme.")  # fmt: skip
folders = {
    "unet": datasets.load_chip_folder(
        tiles_path, mask_values={CLASSES.index(c): k for k, c in enumerate(present)}
    ),
    "segformer": datasets.load_chip_folder(tiles_path, mask_values={0: 1, 1: 0, 2: 0}),
}
stats = datasets.band_stats(folders["unet"], split="train")
class_names = {"unet": present, "segformer": list(BINARY_CLASSES)}
io.update_manifest(run.root, "04_classes", {"unet": present, "segformer": list(BINARY_CLASSES)})
counts = folders["unet"].index["split"].value_counts().reindex(["train", "val", "test"])
print(f"{len(folders['unet'])} tiles, bands {list(stats.bands)}; per split: {counts.to_dict()}")
pd.DataFrame({"band": stats.bands, "mean": stats.mean, "std": stats.std}).round(4)

# %%
splits = ["train", "val", "test"]
tile_sets = {
    arch: {s: datasets.TileDataset(folders[arch], stats=stats, split=s) for s in splits}
    for arch in archs
}
patch_sets = {
    arch: datasets.PatchDataset(
        folders[arch].subset("train"), patch_px=patch_px, samples_per_epoch=samples_per_epoch,
        stats=stats, seed=seed,
    )
    for arch in archs
}  # fmt: skip
configs = {
    "unet": train.TrainConfig(
        epochs=unet_epochs, batch_size=unet_batch_size, optimizer="sgd", lr=unet_lr,
        lr_step_epochs=lr_step_epochs, loss=unet_loss, samples_per_epoch=samples_per_epoch,
        num_workers=num_workers, seed=seed, device=device, bf16=bf16,
    ),
    "segformer": train.TrainConfig(
        epochs=segformer_epochs, batch_size=segformer_batch_size, optimizer="adamw",
        lr=segformer_lr, loss=segformer_loss,
        loss_kwargs={"alpha": tversky_alpha, "beta": tversky_beta} if segformer_loss == "tversky" else {},
        samples_per_epoch=samples_per_epoch, num_workers=num_workers, seed=seed,
        device=device, bf16=bf16,
    ),
}  # fmt: skip
for arch in archs:
    print(arch, configs[arch])

# %% [markdown]
# ## Training
# Checkpoints after every epoch: re-running this cell resumes a killed run, and a finished
# run is not trained again (set `overwrite = True` to start afresh).

# %%
results = {}
for arch in archs:
    torch.manual_seed(seed)  # reproducible initial weights
    net = models.create_model(
        arch, in_channels=len(stats.bands), classes=len(class_names[arch]),
        encoder=unet_encoder if arch == "unet" else segformer_encoder,
        encoder_weights=(unet_encoder_weights if arch == "unet" else segformer_encoder_weights) or None,
    )  # fmt: skip
    t0 = time.perf_counter()
    results[arch] = train.fit(
        net, patch_sets[arch], tile_sets[arch]["val"], config=configs[arch],
        run_dir=run.models / arch, overwrite=overwrite,
        meta={**stats.to_dict(), "class_names": class_names[arch], "patch_px": patch_px},
    )  # fmt: skip
    r = results[arch]
    print(f"{label}{arch}: {time.perf_counter() - t0:.0f} s, best epoch {r.best_epoch} "
          f"({r.monitor} = {r.best_score:.3f}), resumed from epoch {r.start_epoch}")  # fmt: skip
pd.concat({a: r.history for a, r in results.items()}, names=["arch"]).round(4)

# %%
fig = plotting.plot_learning_curves(
    {a: r.history for a, r in results.items()},
    title=f"{label}Learning curves: loss and whole-tile validation scores",
)
plotting.savefig(fig, run.figures / "learning_curves.png", simulated=simulated)

# %% [markdown]
# ## Scores per split (VitSegh24 Table 1)
# The best checkpoint of each model, scored on every **whole** tile of each split. F1,
# precision, recall and IoU are those of the mine class; mean IoU and overall accuracy
# cover all classes. VitSegh24's own row is printed beside ours: its numbers come from
# Sentinel-2 tiles of Ghana and random-crop validation, ours from the tiles above.

# %%
best = {arch: train.load_model(results[arch].best_path, device=dev) for arch in archs}
rows = []
for arch in archs:
    model, meta = best[arch]
    models.prepare_model(model, dev)
    c = train.mine_class(meta["model"]["classes"])
    for s in splits:
        sc = train.evaluate(model, tile_sets[arch][s], bf16=bf16)
        rows.append({
            "model": f"{arch} ({meta['model']['encoder']})", "split": s, "f1": sc["f1"][c],
            "precision": sc["precision"][c], "recall": sc["recall"][c], "iou": sc["iou"][c],
            "mean_iou": sc["mean_iou"], "overall_accuracy": sc["overall_accuracy"],
            "tiles": len(tile_sets[arch][s]), "best_epoch": meta["best"]["epoch"],
            "data_source": data_source,
        })  # fmt: skip
scores = pd.DataFrame(rows)
paper = pd.read_csv(io.data_path("reference/vitsegh24_table1.csv"))
paper = paper.assign(
    model="VitSegh24 (paper, Table 1)",
    split=paper["split"].replace({"validation": "val"}),
    data_source="VitSegh24 Table 1 (Sentinel-2 L2A, Ghana)",
)
table = pd.concat([scores, paper], ignore_index=True)
io.write_table(table, run.tables / "train_scores.csv")
wide = table.pivot_table(index="split", columns="model", values=["f1", "precision", "recall"])
print(f"{label}F1 / precision / recall of the mine class per split, beside VitSegh24 Table 1")
wide.reindex(splits).round(3)

# %% [markdown]
# ## Predicted test tiles (VitSegh24 Figs 6-8)
# Input (true colour), reference mask and each model's prediction, on test tiles with
# the most mining.

# %%
test_folder = folders["unet"].subset("test")
index = test_folder.index
order = (
    np.argsort(-index["target_frac"].to_numpy())
    if "target_frac" in index
    else np.arange(len(index))
)
picks = [int(i) for i in order[: max(1, n_example_tiles)]]
rgb_idx = (
    [list(stats.bands).index(b) for b in ("B04", "B03", "B02")]
    if "B04" in stats.bands
    else [0, 1, 2]
)
ncol = 2 + len(archs)
fig, axes = plt.subplots(len(picks), ncol, figsize=(3.4 * ncol, 3.4 * len(picks)), squeeze=False)
for row, i in enumerate(picks):
    raw = test_folder.read_image(i)
    axes[row, 0].imshow(plotting.stretch(np.moveaxis(raw[rgb_idx], 0, -1)))
    axes[row, 0].set_title(f"{index['tile_id'].iloc[i][:28]}\nRGB (B04/B03/B02)", fontsize=8)
    x, y = tile_sets["unet"]["test"][i]
    plotting.plot_classes(y.numpy(), ax=axes[row, 1], classes=present, title="reference",
                          legend=row == 0)  # fmt: skip
    for col, arch in enumerate(archs, start=2):
        model = best[arch][0]
        pred = models.predict_logits(model, x[None], bf16=bf16).argmax(1)[0].cpu().numpy()
        # SegFormer: mines -> the mine colour, the rest -> the background class's
        shown = pred if arch == "unet" else np.where(pred == 1, 0, len(present) - 1)
        plotting.plot_classes(shown, ax=axes[row, col], classes=present,
                              title=f"{arch} prediction", legend=False)  # fmt: skip
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"{label}Test tiles: input, reference and predictions (SegFormer is binary: "
             "mine / not mine)")  # fmt: skip
fig.tight_layout()
plotting.savefig(fig, run.figures / "vitsegh24_figs6-8_test_predictions.png", simulated=simulated)

# %%
io.update_manifest(
    run.root, "04_train",
    {arch: {"best": str(results[arch].best_path), "best_epoch": results[arch].best_epoch,
            results[arch].monitor: results[arch].best_score} for arch in archs},
)  # fmt: skip
print(f"{label}models in {run.models}")
