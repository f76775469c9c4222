"""The runner: parameter checks against each notebook's parameters cell, execution, resume."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vitseg.errors import ParamsError
from vitseg.runner import (
    NotebookFailedError,
    load_experiment,
    notebook_parameters,
    resolve_parameters,
    run_experiment,
)

NB_A = """# %% [markdown]
# # A tiny notebook

# %% tags=["parameters"]
report_dir = "reports/tiny"
seed = 0
tile_px = 4
ratio = 0.5
flag = False
names = ["a"]

# %%
from pathlib import Path
out = Path(report_dir) / "tables" / "a.txt"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(f"{seed} {tile_px * 2} {ratio} {flag} {names}")
"""

NB_B = """# %% tags=["parameters"]
report_dir = "reports/tiny"
fail = False

# %%
if fail:
    raise RuntimeError("asked to fail")
"""


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    d = tmp_path / "notebooks"
    d.mkdir()
    (d / "01_make_a.py").write_text(NB_A)
    (d / "02_maybe_fail.py").write_text(NB_B)
    return d


def write_yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def test_notebook_parameters_reads_the_parameters_cell(nbdir: Path) -> None:
    params = notebook_parameters(nbdir / "01_make_a.py")
    assert set(params) == {"report_dir", "seed", "tile_px", "ratio", "flag", "names"}
    assert params["seed"]["default"] == "0"
    assert params["names"]["default"] == '["a"]'


def test_runs_notebooks_in_order_and_skips_finished_ones(nbdir: Path, tmp_path: Path) -> None:
    report = tmp_path / "reports" / "tiny"
    exp = write_yaml(
        tmp_path,
        f"common:\n  report_dir: {report}\n  seed: 3\n01_make_a:\n  tile_px: 5\n",
    )
    run_experiment(exp, notebook_dir=nbdir)
    assert (report / "tables" / "a.txt").read_text() == "3 10 0.5 False ['a']"
    assert (report / "executed" / "01_make_a.ipynb").is_file()
    manifest = json.loads((report / "manifest.json").read_text())
    assert manifest["notebooks"]["01_make_a"]["status"] == "ok"
    assert manifest["notebooks"]["01_make_a"]["params"]["tile_px"] == 5
    assert manifest["git_sha"] is None or len(manifest["git_sha"]) >= 40
    # second run: nothing changed, so nothing re-executes
    (report / "tables" / "a.txt").unlink()
    run_experiment(exp, notebook_dir=nbdir)
    assert not (report / "tables" / "a.txt").exists()
    run_experiment(exp, notebook_dir=nbdir, force=True, only=["01"])
    assert (report / "tables" / "a.txt").exists()


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("01_make_a:\n  sise_px: 5\n", r"'sise_px'.*01_make_a.*did you mean 'tile_px'"),
        ("common:\n  colour: red\n", r"common keys \['colour'\] are declared by none"),
        ("01_make_a:\n  tile_px: -2\n", r"'tile_px' must be an int > 0; got -2"),
        ("01_make_a:\n  tile_px: 0\n", r"'tile_px' must be an int > 0; got 0"),
        ("01_make_a:\n  seed: seven\n", r"'seed' must be an int.*got 'seven'"),
        ("01_make_a:\n  flag: 1\n", r"'flag' must be bool"),
        ("03_nope: {}\n", r"section '03_nope' names no notebook"),
        ("01_make_a: [1, 2]\n", r"must be a mapping"),
        ("01_make_a:\n  tile_px: [1\n", r"not valid YAML"),
        ("notebooks: [09_x]\n", r"unknown notebooks \['09_x'\]"),
    ],
)
def test_bad_params_are_params_errors(
    nbdir: Path, tmp_path: Path, yaml_text: str, match: str
) -> None:
    exp_path = write_yaml(tmp_path, yaml_text)
    with pytest.raises(ParamsError, match=match):
        exp = load_experiment(exp_path, notebook_dir=nbdir)
        declared = {n: notebook_parameters(nbdir / f"{n}.py") for n in exp.notebooks}
        resolve_parameters(exp, declared=declared)


def test_date_range_and_missing_path_checks(tmp_path: Path) -> None:
    d = tmp_path / "nb"
    d.mkdir()
    (d / "01_x.py").write_text(
        '# %% tags=["parameters"]\nseasons = ["2020-21"]\nlabels_file = ""\n'
    )
    declared = {"01_x": notebook_parameters(d / "01_x.py")}
    bad_dates = write_yaml(tmp_path, "01_x:\n  seasons: [2021-03-31/2020-11-01]\n")
    with pytest.raises(ParamsError, match=r"ends \(2020-11-01\) before it starts"):
        resolve_parameters(load_experiment(bad_dates, notebook_dir=d), declared=declared)
    bad_path = write_yaml(tmp_path, "01_x:\n  labels_file: no/such/file.gpkg\n")
    with pytest.raises(ParamsError, match=r"path of an existing file.*'no/such/file.gpkg'"):
        resolve_parameters(load_experiment(bad_path, notebook_dir=d), declared=declared)


def test_missing_experiment_file_is_a_params_error(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="does not exist"):
        load_experiment(tmp_path / "nope.yaml")


def test_failing_notebook_keeps_earlier_outputs_and_a_failed_copy(
    nbdir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "reports" / "tiny"
    exp = write_yaml(tmp_path, f"common:\n  report_dir: {report}\n02_maybe_fail:\n  fail: true\n")
    with pytest.raises(NotebookFailedError, match=r"02_maybe_fail failed.*asked to fail"):
        run_experiment(exp, notebook_dir=nbdir)
    assert (report / "executed" / "01_make_a.ipynb").is_file()
    assert (report / "executed" / "02_maybe_fail.failed.ipynb").is_file()
    assert not (report / "executed" / "02_maybe_fail.ipynb").exists()


def test_cli_prints_params_errors_without_traceback(tmp_path: Path) -> None:
    exp = write_yaml(tmp_path, "99_nothing: {}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "vitseg", "run", str(exp)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "vitseg: error:" in proc.stderr
    assert "Traceback" not in proc.stderr


NB_CHAIN = """# %% tags=["parameters"]
report_dir = "reports/tiny"
data_file = ""

# %%
x = 1
"""


def _ran(capsys: pytest.CaptureFixture[str]) -> list[str]:
    out = capsys.readouterr().out
    return [line.split()[1].rstrip(":") for line in out.splitlines() if "running ..." in line]


def test_fingerprints_chain_library_upstream_notebooks_and_input_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import vitseg.runner as runner

    d = tmp_path / "nb"
    d.mkdir()
    for name in ("01_a", "02_b", "03_c"):
        (d / f"{name}.py").write_text(NB_CHAIN)
    data = tmp_path / "labels.csv"
    data.write_text("v1")
    report = tmp_path / "reports" / "tiny"
    exp = write_yaml(tmp_path, f"common:\n  report_dir: {report}\n02_b:\n  data_file: {data}\n")
    library = {"digest": "lib-1"}
    monkeypatch.setattr(runner, "library_digest", lambda *a, **k: library["digest"])

    run_experiment(exp, notebook_dir=d)
    assert _ran(capsys) == ["01_a", "02_b", "03_c"]
    run_experiment(exp, notebook_dir=d)
    assert _ran(capsys) == []  # nothing changed
    library["digest"] = "lib-2"  # an edit of vitseg/*.py
    run_experiment(exp, notebook_dir=d)
    assert _ran(capsys) == ["01_a", "02_b", "03_c"]
    (d / "02_b.py").write_text(NB_CHAIN + "\ny = 2\n")  # an upstream notebook
    run_experiment(exp, notebook_dir=d)
    assert _ran(capsys) == ["02_b", "03_c"]
    data.write_text("v2")  # an input file of 02_b
    run_experiment(exp, notebook_dir=d)
    assert _ran(capsys) == ["02_b", "03_c"]
    run_experiment(exp, notebook_dir=d, only=["03_c"])  # --only: the chain uses 02_b's record
    assert _ran(capsys) == []
    (d / "01_a.py").write_text(NB_CHAIN + "\nz = 3\n")
    run_experiment(exp, notebook_dir=d, only=["01_a"])
    assert _ran(capsys) == ["01_a"]
    run_experiment(exp, notebook_dir=d, only=["03_c"])  # an upstream notebook changed: re-run
    assert _ran(capsys) == ["03_c"]
    run_experiment(exp, notebook_dir=d)
    assert _ran(capsys) == ["02_b", "03_c"]
    manifest = json.loads((report / "manifest.json").read_text())
    inputs = manifest["notebooks"]["03_c"]["inputs"]
    assert inputs["library"] == "lib-2" and set(inputs["upstream"]) == {"01_a", "02_b"}
    assert manifest["notebooks"]["02_b"]["inputs"]["files"][str(data)]


def test_library_digest_changes_with_a_library_file(tmp_path: Path) -> None:
    from vitseg.runner import library_digest

    (tmp_path / "mod.py").write_text("a = 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.geojson").write_text("{}")
    (tmp_path / "notes.txt").write_text("ignored")
    first = library_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("still ignored")
    assert library_digest(tmp_path) == first
    (tmp_path / "data" / "x.geojson").write_text('{"a": 1}')
    second = library_digest(tmp_path)
    assert second != first
    (tmp_path / "mod.py").write_text("a = 2\n")
    assert library_digest(tmp_path) != second


def test_passthrough_prints_lines_live_and_throttles_progress_bars() -> None:
    import io

    from vitseg.runner import _Passthrough

    sink = io.StringIO()
    p = _Passthrough(sink, prefix="> ", min_interval_s=3600)
    p.write("epoch 1\nepo")
    p.write("ch 2\n")
    p.write("\r 10%|#   |\r 20%|##  |")  # a bar: first update shown, the rest held back
    p.write("\r 30%|### |")
    assert sink.getvalue().splitlines() == ["> epoch 1", "> epoch 2", ">  20%|##  |"]


def test_run_prints_notebook_output_and_a_summary(
    nbdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (nbdir / "01_make_a.py").write_text(NB_A + '\nprint("hello from the kernel")\n')
    report = tmp_path / "reports" / "tiny"
    exp = write_yaml(tmp_path, f"notebooks: [01_make_a]\ncommon:\n  report_dir: {report}\n")
    run_experiment(exp, notebook_dir=nbdir)
    out = capsys.readouterr().out
    assert "    | hello from the kernel" in out
    assert "summary of exp.yaml" in out and "01_make_a" in out.split("summary of")[1]
    import os

    assert "MPLBACKEND" not in os.environ or os.environ["MPLBACKEND"] != "Agg"


def test_notebook_failed_error_lives_in_errors_and_is_re_exported() -> None:
    import vitseg.errors
    import vitseg.runner

    assert vitseg.runner.NotebookFailedError is vitseg.errors.NotebookFailedError
    assert NotebookFailedError is vitseg.errors.NotebookFailedError
    assert issubclass(NotebookFailedError, RuntimeError)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("common:\n  seed: 0\n# Région\n".encode("latin-1"), r"not UTF-8 text \(byte b'\\xe9'"),
        (b"\xff\xfecommon: {}\n", r"not UTF-8 text .*save the file as UTF-8"),
    ],
)
def test_experiment_file_that_is_not_utf8_is_a_params_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_bytes(content)
    with pytest.raises(ParamsError, match=message):
        load_experiment(exp)


def test_experiment_path_that_is_a_folder_is_a_params_error(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="is a folder; pass a YAML file"):
        load_experiment(tmp_path)


@pytest.mark.parametrize("manifest", ["{", '{"notebooks": {"01_make_a": {"st', "[]", "\udcff"])
def test_corrupt_manifest_stops_the_run_before_any_notebook(
    nbdir: Path, tmp_path: Path, manifest: str
) -> None:
    from vitseg.errors import CorruptFileError

    report = tmp_path / "reports" / "tiny"
    report.mkdir(parents=True)
    (report / "manifest.json").write_bytes(manifest.encode("utf-8", "surrogateescape"))
    exp = write_yaml(tmp_path, f"common:\n  report_dir: {report}\n")
    with pytest.raises(CorruptFileError, match=r"report's manifest .*Delete .*manifest\.json"):
        run_experiment(exp, notebook_dir=nbdir)
    assert not (report / "executed" / "01_make_a.ipynb").exists()


def test_report_dir_that_is_a_file_is_a_params_error(nbdir: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    exp = write_yaml(tmp_path, "notebooks: [01_make_a]\n")
    for report in (taken, taken / "sub"):
        with pytest.raises(ParamsError, match=re.escape(f"{taken} is a file, not a folder")):
            run_experiment(exp, notebook_dir=nbdir, report_dir=str(report))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("common:\n  seed: 1\n  seed: 2\n", r"key 'seed' is given twice, on lines 2 and 3"),
        ("01_make_a:\n  tile_px: 4\n02_maybe_fail: {}\n01_make_a:\n  seed: 1\n",
         r"key '01_make_a' is given twice, on lines 1 and 4"),
    ],
)  # fmt: skip
def test_duplicate_keys_and_sections_are_errors(
    nbdir: Path, tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(ParamsError, match=match):
        load_experiment(write_yaml(tmp_path, text), notebook_dir=nbdir)
