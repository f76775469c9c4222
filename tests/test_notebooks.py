"""The notebooks as a student meets them: defaults equal the demo, paths from the repo root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vitseg.io import REPO_ROOT, use_repo_root
from vitseg.runner import _default_value, find_notebooks, load_experiment, notebook_parameters

NOTEBOOKS = find_notebooks()


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_defaults_equal_params_demo(name: str) -> None:
    """Opened in JupyterLab and run cell by cell, a notebook does what `make demo` did."""
    exp = load_experiment(REPO_ROOT / "params" / "demo.yaml")
    declared = notebook_parameters(NOTEBOOKS[name])
    given = {k: v for k, v in exp.common.items() if k in declared}
    given.update(exp.sections.get(name, {}))
    differ = {
        k: (_default_value(declared[k]), v)
        for k, v in given.items()
        if _default_value(declared[k]) != v
    }
    assert differ == {}, f"{name}: (notebook default, params/demo.yaml) differ: {differ}"


def test_every_notebook_starts_from_the_repo_root(tmp_path: Path) -> None:
    for name, path in NOTEBOOKS.items():
        text = path.read_text(encoding="utf-8")
        assert "use_repo_root()" in text.split("start_run(")[0], name
    here = Path.cwd()
    try:
        os.chdir(tmp_path)
        assert use_repo_root() == REPO_ROOT and Path.cwd() == REPO_ROOT
    finally:
        os.chdir(here)
