"""The ``vitseg`` command: version, help, exit codes and one-line messages without tracebacks."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import vitseg
import vitseg.runner
from vitseg.__main__ import main
from vitseg.errors import CheckpointError, NotebookFailedError, ParamsError

SCRIPT = Path(sys.executable).parent / "vitseg"  # the console script of [project.scripts]
MODULE = [sys.executable, "-m", "vitseg"]
ONE_NOTEBOOK = "notebooks: [01_grid_aoi]\n"  # parameters of one notebook only: a fast check


def _files(root: Path) -> dict[str, Path]:
    latin1 = root / "latin1.yaml"
    latin1.write_bytes("common:\n  seed: 0\n# Kibi, Eastern Région\n".encode("latin-1"))
    exp = root / "exp.yaml"
    exp.write_text(ONE_NOTEBOOK)
    report = root / "report"
    report.mkdir()
    (report / "manifest.json").write_text('{"notebooks": {"01_grid_aoi": {"status": "o')
    return {"latin1": latin1, "exp": exp, "report": report}


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every command-line case at once (each starts Python and imports torch)."""
    f = _files(tmp_path_factory.mktemp("cli"))
    cases = {
        "version_script": [str(SCRIPT), "--version"],
        "version_module": [*MODULE, "--version"],
        "not_utf8": [*MODULE, "run", str(f["latin1"])],
        "corrupt_manifest": [*MODULE, "run", str(f["exp"]), "--report-dir", str(f["report"])],
    }
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cmd in cases.items()
    }
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(cases[name], proc.returncode, out, err)
    return done


def test_version_from_the_console_script_and_the_module(
    cli: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    assert SCRIPT.is_file(), "pip install -e . creates the vitseg console script"
    expected = f"vitseg {importlib.metadata.version('vitseg')}\n"
    for case in ("version_script", "version_module"):
        assert cli[case].returncode == 0, cli[case].stderr
        assert cli[case].stdout == expected
    assert vitseg.__version__ == importlib.metadata.version("vitseg")


@pytest.mark.parametrize(
    ("case", "code", "messages"),
    [
        ("not_utf8", 2, ["latin1.yaml: not UTF-8 text", "b'\\xe9'", "save the file as UTF-8"]),
        (
            "corrupt_manifest",
            3,
            [
                "CorruptFileError: the report's manifest is unreadable",
                "manifest.json is not valid JSON (Unterminated string",
                "Delete ",
                "every notebook then runs again",
            ],
        ),
    ],
)
def test_exit_codes_and_messages(
    cli: dict[str, subprocess.CompletedProcess[str]], case: str, code: int, messages: list[str]
) -> None:
    proc = cli[case]
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    for message in messages:
        assert message in proc.stderr


def test_help_is_plain_text_with_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    run = capsys.readouterr().out
    for text in (top, run):
        assert "``" not in text and ":func:" not in text and ":class:" not in text
        assert "exit status:" in text and "130" in text
    assert top.startswith("usage: vitseg ")
    for option in ("--only", "--force", "--report-dir", "--set KEY=VALUE"):
        assert option in run


def test_report_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text(ONE_NOTEBOOK)
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    for report in (blocker, blocker / "sub"):
        assert main(["run", str(exp), "--report-dir", str(report)]) == 2
        err = capsys.readouterr().err
        assert f"vitseg: error: report folder {report} cannot be created" in err
        assert f"{blocker} is a file, not a folder; pass another --report-dir" in err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "x.yaml", "--set", "seed"], "--set wants KEY=VALUE"),
        (["run", "x.yaml", "--only", "04_train", "--set", "seed=[1"], "not valid YAML"),
        (["run", "no/such.yaml"], "experiment file 'no/such.yaml' does not exist"),
        (["run", "."], "experiment file '.' is a folder"),
        (["run", "x.yaml", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_and_parameter_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("raised", "code", "message"),
    [
        (NotebookFailedError("notebook 04_train failed in cell 3: ValueError: x"), 1, "04_train"),
        (ParamsError("seed must be an integer"), 2, "vitseg: error: seed must be an integer"),
        (CheckpointError("checkpoint a.pt is corrupt"), 3, "CheckpointError: checkpoint a.pt"),
        (KeyboardInterrupt(), 130, "interrupted; finished notebooks are kept"),
    ],
)
def test_each_outcome_has_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    code: int,
    message: str,
) -> None:
    def fake_run(*args: object, **kwargs: object) -> Path:
        raise raised

    monkeypatch.setattr(vitseg.runner, "run_experiment", fake_run)
    assert main(["run", "params/demo.yaml"]) == code
    assert message in capsys.readouterr().err


def test_ok_run_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run(params: str, **kwargs: object) -> Path:
        seen.update(kwargs, params=params)
        return Path("reports/demo")

    monkeypatch.setattr(vitseg.runner, "run_experiment", fake_run)
    argv = ["run", "params/demo.yaml", "--only", "04", "--only", "05_benchmark", "--force"]
    assert main([*argv, "--report-dir", "r", "--set", "seed=3", "--set", "aoi=[kibi]"]) == 0
    assert seen == {
        "params": "params/demo.yaml",
        "only": ["04", "05_benchmark"],
        "force": True,
        "report_dir": "r",
        "overrides": {"seed": 3, "aoi": ["kibi"]},
    }
