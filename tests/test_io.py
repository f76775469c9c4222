"""Atomic writes, manifests and provenance."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vitseg import errors
from vitseg.io import (
    atomic_path,
    atomic_write_text,
    clean_partials,
    data_path,
    read_json,
    sha256_file,
    start_run,
    update_manifest,
    write_json,
    write_table,
)


def test_atomic_path_renames_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert not final.exists()
    assert list((tmp_path / "sub").iterdir()) == []  # the temporary file is gone too
    with atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp.suffix == ".txt"
        tmp.write_text("whole")
    assert final.read_text() == "whole"


def test_atomic_write_replaces_existing_file(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    write_json(p, {"a": 1})
    write_json(p, {"a": 2})
    assert read_json(p) == {"a": 2}
    assert atomic_write_text(tmp_path / "b.txt", "x").read_text() == "x"


def test_killed_writer_leaves_no_partial_file_at_the_final_path(tmp_path: Path) -> None:
    final = tmp_path / "big.bin"
    script = textwrap.dedent(
        f"""
        import time
        from vitseg.io import atomic_path
        with atomic_path({str(final)!r}) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"x" * 1_000_000)
                fh.flush()
                print("writing", flush=True)
                time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.1)
    assert not final.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".big.bin.vitseg-tmp-")
    # the runner sweeps such leftovers before an experiment; final files stay
    (tmp_path / "keep.txt").write_text("final")
    assert clean_partials(tmp_path) == leftovers
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_write_table_is_atomic_csv_and_parquet(tmp_path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert pd.read_csv(write_table(df, tmp_path / "t.csv")).equals(df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_start_run_creates_folders_and_manifest(tmp_path: Path) -> None:
    run = start_run(tmp_path / "reports" / "exp", params={"seed": 7, "x": 1}, notebook="01_a")
    for folder in (run.figures, run.tables, run.maps, run.data, run.models, run.executed):
        assert folder.is_dir()
    manifest = json.loads(run.manifest.read_text())
    assert manifest["experiment"] == "exp"
    assert manifest["params"]["01_a"] == {"seed": 7, "x": 1}
    assert manifest["seeds"]["01_a"] == 7
    assert manifest["packages"]["numpy"]
    update_manifest(run.root, "stac_items", ["a", "b"])
    start_run(run.root, params={"seed": 1}, notebook="02_b")
    manifest = json.loads(run.manifest.read_text())
    assert manifest["stac_items"] == ["a", "b"]  # later notebooks keep earlier sections
    assert set(manifest["params"]) == {"01_a", "02_b"}


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "a"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_data_path_names_what_is_shipped() -> None:
    with pytest.raises(errors.VitsegError, match=r"no shipped data file 'nope\.gpkg'"):
        data_path("nope.gpkg")


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.MissingCRSError, ValueError),
        (errors.CRSMismatchError, ValueError),
        (errors.BandError, KeyError),
        (errors.EmptySearchError, LookupError),
        (errors.CorruptRasterError, OSError),
        (errors.ParamsError, ValueError),
        (errors.NetworkError, ConnectionError),
    ],
)
def test_errors_are_vitseg_errors_and_builtins(cls: type[Exception], builtin: type) -> None:
    assert issubclass(cls, errors.VitsegError) and issubclass(cls, builtin)
    assert str(cls("band 'B99' unknown")) == "band 'B99' unknown"


def test_torchvision_imports_beside_cpu_torch() -> None:
    code = (
        "import vitseg, segmentation_models_pytorch as smp, torch; "
        "m = smp.Unet('resnet18', encoder_weights=None, in_channels=10, classes=3).eval(); "
        "print(tuple(m(torch.zeros(1, 10, 64, 64)).shape))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 3, 64, 64)"
