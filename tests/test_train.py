import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset

from vitseg.errors import CheckpointError, MissingFileError, ParamsError, VitsegError
from vitseg.models import create_model, prepare_model
from vitseg.train import TrainConfig, evaluate, fit, load_model, mine_class


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: tiny models run faster, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Patches(Dataset):
    """Random 32x32 patches whose mask is learnable from band 0; flips use the torch RNG."""

    def __init__(self, n=8, classes=2, bands=3, size=32, seed=0, explode_at_epoch=None):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, bands, size, size, generator=g)
        edges = torch.linspace(-1, 1, classes + 1)[1:-1]
        self.y = torch.bucketize(self.x[:, 0].contiguous(), edges).long()
        self.y[:, :3, :3] = 255  # no-data corner
        self.explode_at_epoch = explode_at_epoch
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if self.explode_at_epoch is not None and self.epoch == self.explode_at_epoch:
            raise KeyboardInterrupt("simulated kill")
        x, y = self.x[i], self.y[i]
        if torch.rand(()) < 0.5:  # augmentation drawn from the global torch RNG
            x, y = x.flip(-1), y.flip(-1)
        return x, y


def _val(classes=2, n=3, size=48):
    ds = Patches(n=n, classes=classes, size=size, seed=99)
    return [(ds.x[i], ds.y[i]) for i in range(n)]


def _model(arch="segformer", classes=2, seed=0):
    torch.manual_seed(seed)
    kw = {"encoder": "resnet18"} if arch == "unet" else {}
    return create_model(arch, in_channels=3, classes=classes, **kw)


CFG = {"epochs": 2, "batch_size": 2, "samples_per_epoch": 4, "lr": 1e-2, "lr_step_epochs": 1,
       "progress": False, "seed": 3}  # fmt: skip


def test_two_cpu_training_steps_unet(tmp_path):
    model = _model("unet", classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig.from_dict({**CFG, "epochs": 1, "device": "cpu"})
    res = fit(
        model,
        Patches(classes=3),
        _val(classes=3),
        config=cfg,
        run_dir=tmp_path,
        meta={"bands": ["B02", "B03", "B04"], "mean": np.zeros(3), "std": np.ones(3)},
    )
    assert res.start_epoch == 0 and res.monitor == "mean_iou" and res.best_epoch == 1
    hist = pd.read_csv(tmp_path / "history.csv")
    assert list(hist.columns) == [
        "epoch",
        "train_loss",
        "val_loss",
        "val_f1",
        "val_precision",
        "val_recall",
        "val_iou",
        "val_mean_iou",
        "val_mean_accuracy",
        "val_overall_accuracy",
        "lr",
        "seconds",
        "images_per_s",
    ]
    assert len(hist) == 1 and np.isfinite(hist.train_loss[0]) and hist.images_per_s[0] > 0
    assert hist.lr[0] == pytest.approx(1e-2)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any("encoder" in k for k in changed)
    assert {p.name for p in tmp_path.iterdir()} == {"last.pt", "best.pt", "history.csv"}


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    full = _model()
    ref = fit(full, Patches(), _val(), config=CFG, run_dir=tmp_path / "a")
    assert ref.history.lr.tolist() == pytest.approx([1e-2, 1e-3])  # /10 every lr_step_epochs

    killed = _model()
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        fit(killed, Patches(explode_at_epoch=1), _val(), config=CFG, run_dir=tmp_path / "b")
    ckpt = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1
    assert not [
        p for p in (tmp_path / "b").iterdir() if ".part" in p.name or p.name.startswith(".")
    ]

    # a new process: fresh model with different initial weights, resumes from last.pt
    resumed_model = _model(seed=123)
    res = fit(resumed_model, Patches(), _val(), config=CFG, run_dir=tmp_path / "b")
    assert res.start_epoch == 1
    a, b = full.state_dict(), resumed_model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    cols = ["train_loss", "val_loss", "val_f1", "lr"]
    pd.testing.assert_frame_equal(ref.history[cols], res.history[cols])


def test_checkpoints_load_weights_only_and_rebuild(tmp_path):
    model = _model()
    res = fit(model, Patches(), _val(), config=CFG, run_dir=tmp_path,
              meta={"bands": ("B02", "B03", "B04"), "mean": np.arange(3.0), "class_names": ["bg", "mines"]})  # fmt: skip
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / name, weights_only=True)
        assert ckpt["model"]["arch"] == "segformer" and ckpt["config"]["epochs"] == 2
    loaded, meta = load_model(res.last_path)
    assert meta["data"] == {"bands": ["B02", "B03", "B04"], "mean": [0.0, 1.0, 2.0],
                            "class_names": ["bg", "mines"]}  # fmt: skip
    assert meta["epoch"] == 2 and meta["model"]["classes"] == 2 and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v.cpu(), loaded.state_dict()[k]), k
    best, best_meta = load_model(res.best_path, device="auto")  # where fit validated
    prepare_model(best, "auto")  # same memory format as during fit
    assert best_meta["best"]["epoch"] == res.best_epoch
    assert best_meta["best"]["monitor"] == "f1"
    # the score stored for the best epoch is what evaluate() gives for the best weights
    s = evaluate(best, _val(), bf16=CFG.get("bf16", "auto"))
    row = res.history.set_index("epoch").loc[res.best_epoch]
    assert s["f1"][mine_class(2)] == pytest.approx(row.val_f1, nan_ok=True)


def test_rerun_is_noop_unless_overwrite(tmp_path):
    cfg = {**CFG, "epochs": 1}
    fit(_model(), Patches(), _val(), config=cfg, run_dir=tmp_path)
    stamp = (tmp_path / "last.pt").stat().st_mtime_ns
    model = _model(seed=5)
    res = fit(model, Patches(), _val(), config=cfg, run_dir=tmp_path)
    assert res.start_epoch == 1 and len(res.history) == 1
    assert (tmp_path / "last.pt").stat().st_mtime_ns == stamp
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["model_state"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    again = fit(_model(), Patches(), _val(), config=cfg, run_dir=tmp_path, overwrite=True)
    assert again.start_epoch == 0 and (tmp_path / "last.pt").stat().st_mtime_ns != stamp


def test_changed_config_is_an_error(tmp_path):
    fit(_model(), Patches(), _val(), config={**CFG, "epochs": 1}, run_dir=tmp_path)
    with pytest.raises(ParamsError, match=r"another training config.*overwrite=True"):
        fit(_model(), Patches(), _val(), config={**CFG, "lr": 0.5}, run_dir=tmp_path)
    with pytest.raises(ParamsError, match=r"another data \(\{\}\).*\{'mean': \[1\]\}"):
        fit(_model(), Patches(), _val(), config=CFG, run_dir=tmp_path, meta={"mean": [1]})


def test_config_defaults_and_errors():
    sgd = TrainConfig()
    assert (sgd.resolved_lr(), sgd.momentum, sgd.resolved_weight_decay(), sgd.batch_size) == (
        5e-2, 0.9, 1e-4, 16)  # fmt: skip
    assert (sgd.resolved_scheduler(), sgd.lr_step_epochs, sgd.lr_gamma) == ("step", 10, 0.1)
    adamw = TrainConfig(optimizer="adamw")
    assert adamw.resolved_scheduler() == "poly" and adamw.resolved_weight_decay() == 0.01
    with pytest.raises(ParamsError, match=r"unknown TrainConfig key\(s\) \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ParamsError, match="optimizer must be"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ParamsError, match="epochs must be >= 1"):
        TrainConfig(epochs=0)


def test_errors(tmp_path):
    with pytest.raises(VitsegError, match="must not be empty"):
        fit(_model(), Patches(), [], config=CFG, run_dir=tmp_path)
    with pytest.raises(VitsegError, match="plain types"):
        fit(_model(), Patches(), _val(), config=CFG, run_dir=tmp_path, meta={"x": object()})
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model(tmp_path / "nope.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(VitsegError, match="not a vitseg checkpoint"):
        load_model(tmp_path / "other.pt")


# ------------------------------------------- batched data path (PatchDataset.load_batch)


def _scenes():
    g = np.random.default_rng(0)
    img = g.normal(size=(3, 48, 48)).astype("float32")
    msk = (img[0] > 0).astype("uint8")
    msk[:4, :4] = 255
    return [(img, msk)]


class HiddenBatches(Dataset):
    """The same patches without ``load_batch``: fit falls back to a per-item DataLoader."""

    def __init__(self, ds):
        self.ds = ds

    def set_epoch(self, epoch):
        self.ds.set_epoch(epoch)

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


class KilledPatches:
    """A PatchDataset whose batches raise in epoch ``kill_at`` (a simulated kill)."""

    def __init__(self, ds, kill_at):
        self.ds, self.kill_at = ds, kill_at

    def __len__(self):
        return len(self.ds)

    def load_batch(self, indices, *, epoch, **kw):
        if epoch == self.kill_at:
            raise KeyboardInterrupt("simulated kill")
        return self.ds.load_batch(indices, epoch=epoch, **kw)


BCFG = {**CFG, "samples_per_epoch": 6, "batch_size": 3, "device": "cpu"}


def _patches():
    from vitseg.datasets import PatchDataset

    return PatchDataset(_scenes(), patch_px=32, samples_per_epoch=6, seed=4)


def test_batched_path_equals_per_item_path_and_workers(tmp_path):
    """Whole-batch cutting (in process or in persistent workers) trains to bit-identical
    weights as the per-item DataLoader: same patches, same order, same RNG use."""
    weights = {}
    for name, train, workers in (("items", HiddenBatches(_patches()), 0),
                                 ("batched", _patches(), 0), ("workers", _patches(), 1)):  # fmt: skip
        model = _model()
        res = fit(model, train, _val(), config={**BCFG, "num_workers": workers},
                  run_dir=tmp_path / name)  # fmt: skip
        assert len(res.history) == 2
        weights[name] = model.state_dict()
    for name in ("batched", "workers"):
        for k, v in weights["items"].items():
            assert torch.equal(v, weights[name][k]), (name, k)


def test_batched_path_resume_after_kill_equals_uninterrupted(tmp_path):
    full = _model()
    fit(full, _patches(), _val(), config=BCFG, run_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        fit(_model(), KilledPatches(_patches(), 1), _val(), config=BCFG, run_dir=tmp_path / "b")
    resumed = _model(seed=7)
    res = fit(resumed, _patches(), _val(), config=BCFG, run_dir=tmp_path / "b")
    assert res.start_epoch == 1
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


# ------------------------------------------------- bad input, round 2 (issue 22)


def _flip_middle_of_largest_tensor(path):
    """Flip 8 bytes in the middle of the largest tensor stored in a torch zip checkpoint."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        member = zf.read(info)
    data = bytearray(path.read_bytes())
    start = data.find(member) + len(member) // 2
    data[start : start + 8] = bytes(b ^ 0xFF for b in data[start : start + 8])
    path.write_bytes(bytes(data))


def test_checksum_mismatch_and_mismatched_checkpoints(tmp_path):
    res = fit(_model(), Patches(), _val(), config={**CFG, "epochs": 1}, run_dir=tmp_path / "r")
    good = torch.load(res.best_path, weights_only=True)
    assert len(good["sha256"]) == 64
    load_model(res.best_path, arch="segformer", in_channels=3, classes=2)
    # flipped bytes in a tensor: torch.load reads them as other weights without complaint
    _flip_middle_of_largest_tensor(res.best_path)
    with pytest.raises(CheckpointError, match=r"best\.pt is corrupt: the sha256"):
        load_model(res.best_path)
    _flip_middle_of_largest_tensor(res.last_path)
    with pytest.raises(CheckpointError, match=r"last\.pt is corrupt"):  # resuming reads it too
        fit(_model(), Patches(), _val(), config={**CFG, "epochs": 2}, run_dir=tmp_path / "r")
    # a checkpoint written before checksums (no sha256) still loads
    old = {k: v for k, v in good.items() if k != "sha256"}
    torch.save(old, tmp_path / "old.pt")
    load_model(tmp_path / "old.pt")
    # the caller expects another architecture / band count
    with pytest.raises(CheckpointError, match=r"arch='segformer', in_channels=3.*arch='unet', "
                                              r"in_channels=10 was expected"):  # fmt: skip
        load_model(tmp_path / "old.pt", arch="unet", in_channels=10)
    # metadata that does not describe the weights (4 bands for 3-band weights)
    torch.save({**old, "model": {**old["model"], "in_channels": 4}}, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match=r"do not fit the model.*'in_channels': 4"):
        load_model(tmp_path / "mixed.pt")
    # a diverged run: NaN weights
    state = dict(old["model_state"])
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save({**old, "model_state": state}, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=r"NaN/inf weights.*diverged"):
        load_model(tmp_path / "nan.pt")


def test_paths_of_the_wrong_kind_and_unknown_devices(tmp_path):
    with pytest.raises(MissingFileError, match=r"is a folder, not a checkpoint file.*best\.pt"):
        load_model(tmp_path)  # was a CheckpointError saying the file is truncated
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParamsError, match=r"run_dir .* is a file"):
        fit(_model(), Patches(), _val(), config=CFG, run_dir=tmp_path / "file")
    for dev in ("tpu", "gpu", "cuda:x", 0):
        with pytest.raises(VitsegError, match=r"'auto', 'cpu', 'cuda'"):
            TrainConfig(device=dev)
    with pytest.raises(VitsegError, match=r"device 'tpu' is not one of 'auto', 'cpu', 'cuda'"):
        load_model(tmp_path / "nope.pt", device="tpu")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("lr", float("nan"), "lr must be a finite number > 0"),
        ("lr", -0.1, "lr must be"),
        ("lr_gamma", float("nan"), "lr_gamma must be"),
        ("momentum", 1.5, r"momentum must be in \[0, 1\)"),
        ("weight_decay", float("inf"), "weight_decay must be >= 0"),
        ("epochs", 2.5, "epochs must be an integer"),
        ("batch_size", "16", "batch_size must be an integer"),
        ("num_workers", -1, "num_workers must be >= 0"),
    ],
)
def test_config_refuses_nan_and_wrong_types(key, value, match):
    with pytest.raises(ParamsError, match=match):
        TrainConfig.from_dict({key: value})
