"""Run an experiment's notebooks in order with papermill.

An experiment is one YAML file, ``params/<experiment>.yaml``::

    notebooks: [01_grid_aoi, 08_monitoring]   # optional; default: every notebook
    common:                                   # keys given to each notebook that declares them
      report_dir: reports/demo
      seed: 0
    04_train:                                 # keys for one notebook only
      epochs: 20

Each ``notebooks/NN_name.py`` (jupytext py:percent) is converted to a notebook and
executed by papermill with the repository root as working directory; the executed
copy lands in ``<report_dir>/executed/NN_name.ipynb``. papermill only warns about
parameters a notebook does not declare, so the runner checks every key against the
notebook's parameters cell first and refuses unknown keys, wrong types and
impossible values with a :class:`~vitseg.errors.ParamsError`.

A notebook whose source and parameters did not change since its last successful
run is skipped (``--force`` runs it again), so an interrupted experiment resumes at
the notebook that did not finish.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as _dt
import difflib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vitseg.errors import CorruptFileError, MissingFileError, NotebookFailedError, ParamsError
from vitseg.io import REPO_ROOT, clean_partials, read_json, start_run, update_manifest
from vitseg.paramspec import check_parameters, has_spec

__all__ = [
    "Experiment",
    "NotebookFailedError",
    "find_notebooks",
    "library_digest",
    "load_experiment",
    "notebook_parameters",
    "parse_overrides",
    "resolve_parameters",
    "run_experiment",
]

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
_NAME_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
_RESERVED = ("common", "notebooks")


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file."""

    path: Path
    name: str
    common: dict[str, Any]
    sections: dict[str, dict[str, Any]]
    notebooks: list[str] = field(default_factory=list)

    @property
    def report_dir(self) -> Path:
        """``common.report_dir`` (default ``reports/<name>``)."""
        return Path(self.common.get("report_dir", f"reports/{self.name}"))


def find_notebooks(folder: str | os.PathLike[str] = NOTEBOOK_DIR) -> dict[str, Path]:
    """Return ``{name: path}`` of the ``NN_name.py`` notebooks in ``folder``, in order.

    Raises
    ------
    MissingFileError
        ``folder`` does not exist or is a file (an empty result would read as "no
        notebooks", and every key as unknown).
    """
    if not Path(folder).is_dir():
        kind = "is a file, not a folder" if Path(folder).exists() else "does not exist"
        raise MissingFileError(
            f"notebook folder {str(folder)!r} {kind}; pass the folder of the NN_name.py "
            f"notebooks (default {_rel(NOTEBOOK_DIR)})"
        )
    found = {p.stem: p for p in sorted(Path(folder).glob("[0-9][0-9]_*.py"))}
    return {k: v for k, v in found.items() if _NAME_RE.match(k)}


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping of the experiment file holds the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _DuplicateKeyError(f"key {key!r} is given twice, on lines {seen[key]} and {line}")
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _safe_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def load_experiment(
    path: str | os.PathLike[str], *, notebook_dir: str | os.PathLike[str] = NOTEBOOK_DIR
) -> Experiment:
    """Read and structurally check ``params/<experiment>.yaml`` (safe YAML loader).

    Raises
    ------
    ParamsError
        Missing file (or a folder), text that is not UTF-8, YAML syntax error, a section
        that names no notebook, a section that is not a mapping, or an empty
        ``notebooks`` list.
    MissingFileError
        ``notebook_dir`` does not exist or is a file.
    """
    p = Path(path)
    if p.is_dir():
        raise ParamsError(
            f"experiment file {str(p)!r} is a folder; pass a YAML file such as params/demo.yaml"
        )
    if not p.is_file():
        raise ParamsError(
            f"experiment file {str(p)!r} does not exist; pass a YAML file such as params/demo.yaml"
        )
    try:
        raw = _safe_load_unique(p.read_text(encoding="utf-8"))
    except _DuplicateKeyError as exc:
        raise ParamsError(
            f"{p}: {exc}; YAML would silently keep only the last one. Merge them into one "
            "entry (sections: one mapping per notebook)"
        ) from None
    except UnicodeDecodeError as exc:
        raise ParamsError(
            f"{p}: not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start} cannot be decoded); save the file as UTF-8, e.g. "
            f"'iconv -f latin1 -t utf-8 {p} > fixed.yaml'"
        ) from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{p}: not valid YAML ({exc}); fix the syntax at the line shown") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(
            f"{p}: expected a mapping of sections at the top; got {type(raw).__name__}"
        )
    available = find_notebooks(notebook_dir)
    common = raw.get("common") or {}
    if not isinstance(common, dict):
        raise ParamsError(f"{p}: 'common' must be a mapping of keys; got {type(common).__name__}")
    sections: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if key in _RESERVED:
            continue
        if key not in available:
            hint = difflib.get_close_matches(str(key), list(available), n=1)
            raise ParamsError(
                f"{p}: section {key!r} names no notebook; available: {sorted(available)}"
                + (f". Did you mean {hint[0]!r}?" if hint else "")
            )
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ParamsError(f"{p}: section {key!r} must be a mapping; got {type(value).__name__}")
        sections[str(key)] = value
    order = raw.get("notebooks")
    if order is None:
        names = list(available)
    else:
        if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
            raise ParamsError(f"{p}: 'notebooks' must be a list of notebook names; got {order!r}")
        if not order:
            raise ParamsError(
                f"{p}: 'notebooks' is empty, so nothing would run; list the notebooks to run, "
                "or remove the key to run them all"
            )
        unknown = [n for n in order if n not in available]
        if unknown:
            raise ParamsError(
                f"{p}: 'notebooks' lists unknown notebooks {unknown}; available: {sorted(available)}"
            )
        names = [n for n in available if n in order]
    return Experiment(path=p, name=p.stem, common=dict(common), sections=sections, notebooks=names)


def notebook_parameters(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Return the parameters cell of a py:percent notebook as papermill sees it.

    Returns
    -------
    dict
        ``{name: {"inferred_type_name": ..., "default": ...}}``.

    Raises
    ------
    MissingFileError
        ``path`` does not exist or is a folder.
    ParamsError
        The notebook is not UTF-8 text, or has no cell tagged ``parameters``.
    """
    import jupytext
    import papermill

    if not Path(path).is_file():
        kind = "is a folder, not a notebook file" if Path(path).is_dir() else "does not exist"
        raise MissingFileError(f"notebook {str(path)!r} {kind}; give an NN_name.py notebook")
    try:
        nb = jupytext.read(path)
    except UnicodeDecodeError as exc:
        raise ParamsError(
            f"notebook {str(path)!r} is not UTF-8 text (byte "
            f"{exc.object[exc.start : exc.start + 1]!r} at offset {exc.start}); save it as UTF-8"
        ) from None
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ParamsError(
            f"notebook {Path(path).name} has no cell tagged 'parameters'; add "
            "'# %% tags=[\"parameters\"]' above its literal defaults"
        )
    with tempfile.TemporaryDirectory() as tmp:
        ipynb = _to_ipynb(path, Path(tmp) / (Path(path).stem + ".ipynb"))
        params = papermill.inspect_notebook(str(ipynb))
    return {k: dict(v) for k, v in params.items()}


def _to_ipynb(py: str | os.PathLike[str], dest: Path, *, kernel_name: str = "python3") -> Path:
    """Convert a py:percent notebook to ``.ipynb`` with a kernelspec papermill can use."""
    import jupytext

    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": "Python 3",
        "language": "python",
    }
    jupytext.write(nb, dest)
    return dest


def _default_value(spec: Mapping[str, Any]) -> Any:
    try:
        return ast.literal_eval(str(spec.get("default")))
    except (ValueError, SyntaxError):
        return spec.get("default")


def _check_default_type(notebook: str, key: str, value: Any, spec: Mapping[str, Any]) -> None:
    """Type check of a key :mod:`vitseg.paramspec` does not declare (notebooks of your own)."""
    default = _default_value(spec)
    if not isinstance(default, (list, dict, str, bool, int, float)) or default is None:
        return
    expected: tuple[type, ...] = (int, float) if isinstance(default, float) else (type(default),)
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        raise ParamsError(
            f"{notebook}: parameter {key!r} must be {type(default).__name__} like its default "
            f"{spec.get('default')}; got {value!r} ({type(value).__name__})"
        )


def resolve_parameters(
    experiment: Experiment,
    *,
    declared: Mapping[str, Mapping[str, Mapping[str, Any]]],
    report_dir: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Merge ``common`` and each section, checking keys, types and values.

    Parameters
    ----------
    experiment
        From :func:`load_experiment`.
    declared
        ``{notebook: notebook_parameters(...)}`` for the notebooks to run.
    report_dir
        Overrides ``common.report_dir``.

    Returns
    -------
    dict
        ``{notebook: parameters}`` for each notebook in ``declared``.

    Raises
    ------
    ParamsError
        A key no notebook declares (naming the key, the notebook and close
        matches), a wrong type, or an impossible value.
    """
    common = dict(experiment.common)
    if report_dir is not None:
        common["report_dir"] = report_dir
    all_declared = {k for params in declared.values() for k in params}
    unused = sorted(k for k in common if k not in all_declared)
    if unused:
        raise ParamsError(
            f"{experiment.path}: common keys {unused} are declared by none of the notebooks "
            f"{sorted(declared)}; remove them or fix their spelling"
        )
    resolved: dict[str, dict[str, Any]] = {}
    for nb, params in declared.items():
        section = experiment.sections.get(nb, {})
        for key in section:
            if key not in params:
                hint = difflib.get_close_matches(key, list(params), n=1)
                raise ParamsError(
                    f"{experiment.path}: key {key!r} in section {nb!r} is not a parameter of "
                    f"notebook {nb}"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                    + f" Its parameters are: {sorted(params)}"
                )
        merged = {k: v for k, v in common.items() if k in params}
        merged.update(section)
        full = {k: _default_value(spec) for k, spec in params.items()}
        full.update(merged)
        declared_here = {k: v for k, v in full.items() if has_spec(nb, k)}
        check_parameters(nb, declared_here)  # one declared type, range and choice set per key
        for key in set(merged) - set(declared_here):  # a notebook of your own: its default's type
            _check_default_type(nb, key, merged[key], params[key])
        resolved[nb] = merged
    return resolved


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings (values as YAML: numbers, lists, booleans).

    Examples
    --------
    >>> parse_overrides(["seed=3", "stac_source=http://127.0.0.1:8000", "aoi=[kibi]"])
    {'seed': 3, 'stac_source': 'http://127.0.0.1:8000', 'aoi': ['kibi']}

    Raises
    ------
    ParamsError
        A pair without ``=`` or key, a value that is not YAML, a key set twice (the
        first value would be dropped silently), or ``pairs`` given as one string.
    """
    if isinstance(pairs, str):
        raise ParamsError(
            f"overrides must be a list of 'KEY=VALUE' strings, e.g. ['seed=1']; got the string "
            f"{pairs!r}"
        )
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set wants KEY=VALUE, e.g. --set seed=1; got {pair!r}")
        if key.strip() in out:
            raise ParamsError(
                f"--set {key.strip()} is given twice ({out[key.strip()]!r}, then {text!r}); "
                "only one value can apply: keep one"
            )
        try:
            out[key.strip()] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as exc:
            raise ParamsError(f"--set {pair!r}: the value is not valid YAML ({exc})") from None
    return out


def _input_files(params: Mapping[str, Any]) -> list[str]:
    """Paths named by ``*_file``/``*_files`` parameters (strings, lists or dict values)."""
    found: list[str] = []
    for key, value in params.items():
        if not key.endswith(("_file", "_files")):
            continue
        values = value.values() if isinstance(value, dict) else value
        for v in [values] if isinstance(values, str) else list(values):
            if isinstance(v, str) and v and "://" not in v:
                found.append(v)
    return sorted(found)


def _file_digest(name: str) -> str:
    path = Path(name) if Path(name).is_absolute() else REPO_ROOT / name
    if not path.exists():
        return "missing"
    if path.is_dir():
        return "folder"
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


LIBRARY_DIR = Path(__file__).resolve().parent


def library_digest(root: str | os.PathLike[str] = LIBRARY_DIR) -> str:
    """Hash of the vitseg library: every ``.py`` file and every shipped data file.

    Part of every notebook's fingerprint: after an edit of the library, no result is
    served as up to date.

    Raises
    ------
    MissingFileError
        ``root`` is not a folder.
    """
    h = hashlib.sha256()
    base = Path(root)
    if not base.is_dir():  # a wrong root would hash nothing: every result looks up to date
        raise MissingFileError(f"library folder {str(base)!r} does not exist or is not a folder")
    for path in sorted(base.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if path.suffix != ".py" and "data" not in path.relative_to(base).parts:
            continue
        h.update(str(path.relative_to(base)).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _fingerprint(
    source: Path,
    params: Mapping[str, Any],
    *,
    library: str = "",
    upstream: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Fingerprint of one notebook run, and what went into it (for the manifest).

    A notebook is up to date only when its source, its parameters, the files its
    ``*_file`` keys name (07's ``reference_file`` appearing or changing counts), the
    library (:func:`library_digest`) and the fingerprints of every notebook before it
    are unchanged.
    """
    parts: dict[str, Any] = {
        "source": hashlib.sha256(source.read_bytes()).hexdigest()[:16],
        "params": hashlib.sha256(
            json.dumps(params, sort_keys=True, default=str).encode()
        ).hexdigest()[:16],
        "files": {name: _file_digest(name)[:16] for name in _input_files(params)},
        "library": library,
        "upstream": dict(upstream or {}),
    }
    fp = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return fp, parts


def run_experiment(
    params_path: str | os.PathLike[str],
    *,
    only: Sequence[str] | None = None,
    force: bool = False,
    report_dir: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    notebook_dir: str | os.PathLike[str] = NOTEBOOK_DIR,
    kernel_name: str = "python3",
    show_output: bool = True,
) -> Path:
    """Execute the notebooks of an experiment in order; return the report folder.

    Parameters
    ----------
    params_path
        ``params/<experiment>.yaml``.
    only
        Notebook names (``"04_train"``; the ``NN`` prefix alone also works) to run.
    force
        Re-execute notebooks that are up to date.
    report_dir
        Overrides ``common.report_dir``.
    overrides
        ``{key: value}`` set in ``common`` over the file's values (the CLI's ``--set
        key=value``), e.g. the URL of a STAC API started for this run.
    notebook_dir
        Where the ``NN_name.py`` notebooks live.
    kernel_name
        Jupyter kernel to execute with.
    show_output
        Print what each notebook prints (and its progress bars) live, indented, so no
        long step is silent; a summary table ends the run.

    Raises
    ------
    ParamsError
        Bad parameters (nothing is executed), or a report folder that cannot be set up.
    CorruptFileError
        The report's ``manifest.json`` is not valid JSON, or its ``notebooks`` section is
        not a mapping of notebook records.
    NotebookFailedError
        A notebook raised; earlier notebooks' outputs are kept.
    """
    import papermill

    exp = load_experiment(params_path, notebook_dir=notebook_dir)
    if overrides:
        exp = Experiment(
            path=exp.path, name=exp.name, common={**exp.common, **dict(overrides)},
            sections=exp.sections, notebooks=exp.notebooks,
        )  # fmt: skip
    available = find_notebooks(notebook_dir)
    names = list(exp.notebooks)
    if isinstance(only, str):  # one name, not its characters
        only = [only]
    if only:
        chosen = []
        for want in only:
            match = [n for n in available if n == want or n.split("_", 1)[0] == want]
            if not match:
                raise ParamsError(
                    f"--only {want!r} names no notebook; available: {sorted(available)}"
                )
            chosen.extend(match)
        names = [n for n in available if n in chosen]
    declared = {n: notebook_parameters(available[n]) for n in exp.notebooks}
    resolved = resolve_parameters(exp, declared=declared, report_dir=report_dir)
    root = Path(resolved[names[0]].get("report_dir", exp.report_dir)) if names else exp.report_dir
    root = root if root.is_absolute() else REPO_ROOT / root
    try:
        run = start_run(root)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a subfolder goes
        raise ParamsError(
            f"report folder {root} cannot be set up: {exc.filename} is a file where a folder "
            "is needed; move it, or pass another --report-dir"
        ) from None
    for leftover in clean_partials(root):
        print(f"removed a partial file left by a killed writer: {_rel(leftover)}", flush=True)
    manifest_path = run.manifest
    update_manifest(root, "experiment_file", str(exp.path))
    library = library_digest()
    summary: list[tuple[str, str, float, int]] = []
    state0 = _notebook_states(manifest_path)
    computed: dict[str, str] = {}  # fingerprints of the notebooks of this run, so far
    for i, nb in enumerate(names, 1):
        params = resolved[nb]
        upstream = {  # a notebook left out by --only counts with its recorded fingerprint
            n: computed.get(n) or str(state0.get(n, {}).get("fingerprint", "never run"))
            for n in exp.notebooks[: exp.notebooks.index(nb)]
        }
        fp, parts = _fingerprint(available[nb], params, library=library, upstream=upstream)
        computed[nb] = fp
        out = run.executed / f"{nb}.ipynb"
        state = _notebook_states(manifest_path)
        prev = state.get(nb, {})
        if (
            not force
            and out.exists()
            and prev.get("fingerprint") == fp
            and prev.get("status") == "ok"
        ):
            print(f"[{i}/{len(names)}] {nb}: up to date (use --force to re-run)", flush=True)
            summary.append((nb, "up to date", 0.0, 0))
            continue
        print(f"[{i}/{len(names)}] {nb}: running ...", flush=True)
        t0, wall0 = time.perf_counter(), time.time()
        with tempfile.TemporaryDirectory() as tmp, _kernel_env({"PYTHONHASHSEED": "0"}):
            src = _to_ipynb(available[nb], Path(tmp) / f"{nb}.ipynb", kernel_name=kernel_name)
            failed = run.executed / f"{nb}.failed.ipynb"
            partial = run.executed / f".{nb}.running.ipynb"
            try:
                papermill.execute_notebook(
                    str(src), str(partial), parameters=params, cwd=str(REPO_ROOT),
                    kernel_name=kernel_name, progress_bar=False, log_output=False,
                    stdout_file=_Passthrough(sys.stdout) if show_output else None,
                    stderr_file=_Passthrough(sys.stdout) if show_output else None,
                )  # fmt: skip
            except papermill.PapermillExecutionError as exc:
                if partial.exists():
                    os.replace(partial, failed)  # papermill writes as it goes: keep it
                _record(root, nb, {"status": "failed", "fingerprint": fp, "error": exc.ename})
                raise NotebookFailedError(
                    f"notebook {nb} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}. "
                    f"The executed copy up to the failure is {failed}. Fix the cause and re-run; "
                    "finished notebooks are skipped."
                ) from None
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.replace(partial, out)
        failed.unlink(missing_ok=True)
        seconds = time.perf_counter() - t0
        waiting = (read_json(manifest_path).get("waiting") or {}).get(nb)
        if waiting:
            print(f"[{i}/{len(names)}] {nb}: waiting for you: {waiting}", flush=True)
        summary.append((nb, "waiting" if waiting else "ran", seconds, _files_written(root, wall0)))
        _record(root, nb, {
            "status": "ok", "fingerprint": fp, "inputs": parts, "seconds": round(seconds, 1),
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "params": params,
        })  # fmt: skip
        print(f"[{i}/{len(names)}] {nb}: done in {seconds:.0f} s -> {_rel(out)}",
              flush=True)  # fmt: skip
    if summary:
        print(f"\nsummary of {exp.path.name} -> {_rel(root)}", flush=True)
        print(f"  {'notebook':<18} {'status':<11} {'seconds':>8} {'files written':>14}")
        for nb, status, seconds, n_files in summary:
            print(f"  {nb:<18} {status:<11} {seconds:>8.0f} {n_files:>14}", flush=True)
    return root


@contextlib.contextmanager
def _kernel_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the kernels started inside, then restore the caller's."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Passthrough:
    """File-like sink for a kernel's stdout/stderr: prints it live, indented, to ``stream``.

    Progress bars (carriage-return updates, e.g. tqdm in training) are shown at most every
    ``min_interval_s`` so a CI log stays readable; whole lines are shown at once.
    """

    def __init__(self, stream: Any, *, prefix: str = "    | ", min_interval_s: float = 10.0):
        self.stream = stream
        self.prefix = prefix
        self.min_interval_s = min_interval_s
        self._last_bar = -float("inf")
        self._partial = ""

    def write(self, text: str) -> int:
        for piece in re.split(r"(?<=\n)", self._partial + text):
            if not piece:
                continue
            if not piece.endswith("\n"):
                if "\r" in piece:  # a progress bar redrawn in place
                    bar = piece.rsplit("\r", 1)[-1]
                    now = time.monotonic()
                    if bar.strip() and now - self._last_bar >= self.min_interval_s:
                        self._emit(bar)
                        self._last_bar = now
                    self._partial = ""
                else:  # the start of a line: wait for its end
                    self._partial = piece
                continue
            self._partial = ""
            line = piece.rstrip("\n").rsplit("\r", 1)[-1]
            if line.strip():
                self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        self.stream.write(f"{self.prefix}{line}\n")
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


def _files_written(root: Path, since: float) -> int:
    skip = {"executed", "manifest.json"}
    return sum(
        1
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip and p.stat().st_mtime >= since
    )


def _notebook_states(manifest_path: Path) -> dict[str, dict[str, Any]]:
    """Return the manifest's ``notebooks`` section: a mapping of mappings (else CorruptFileError)."""
    if not manifest_path.exists():
        return {}
    manifest = read_json(manifest_path)
    states = manifest.get("notebooks", {}) if isinstance(manifest, dict) else None
    if not isinstance(states, dict) or not all(isinstance(v, dict) for v in states.values()):
        raise CorruptFileError(
            f"the report's manifest is unreadable: {manifest_path} is valid JSON but its "
            f"'notebooks' section is not a mapping of notebook records (got "
            f"{type(states).__name__}: {str(states)[:80]}). Delete {manifest_path}; every "
            "notebook then runs again"
        )
    return states


def _record(root: Path, notebook: str, info: dict[str, Any]) -> None:
    manifest = read_json(root / "manifest.json") if (root / "manifest.json").exists() else {}
    notebooks = manifest.get("notebooks", {})
    notebooks[notebook] = info
    update_manifest(root, "notebooks", notebooks)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
