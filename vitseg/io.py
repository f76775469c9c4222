"""Run folders, manifests and atomic writes.

Everything vitseg writes goes to a temporary name beside its final path and is then
renamed (``os.replace``), so a killed process leaves either the complete file or
nothing at the final path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "Run",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_partials",
    "data_path",
    "data_source",
    "git_sha",
    "package_versions",
    "read_json",
    "set_waiting",
    "sha256_file",
    "start_run",
    "update_manifest",
    "use_repo_root",
    "write_json",
    "write_table",
]

#: Packages whose versions go into every manifest.
TRACKED_PACKAGES = (
    "vitseg", "numpy", "xarray", "dask", "rioxarray", "rasterio", "stackstac", "pystac",
    "pystac-client", "geopandas", "shapely", "pyproj", "torch", "segmentation-models-pytorch",
    "timm", "scikit-learn", "papermill", "jupytext",
)  # fmt: skip

REPO_ROOT = Path(__file__).resolve().parent.parent


#: Marker in the names of temporary files, so that leftovers of killed writers can be found.
_TMP_MARK = "vitseg-tmp-"


SIMULATED_SOURCE = "simulated scenes (vitseg.synthetic)"


def data_source(simulated: bool) -> str:
    """Return the ``data_source`` label every table of a run carries.

    Examples
    --------
    >>> data_source(True)
    'simulated scenes (vitseg.synthetic)'

    Raises
    ------
    ParamsError
        ``simulated`` is not a bool (a string such as ``"no"`` would read as true).
    """
    if not isinstance(simulated, (bool, _np_bool())):
        from vitseg.errors import ParamsError

        raise ParamsError(
            f"'simulated' must be True or False; got {simulated!r} ({type(simulated).__name__}). "
            "A non-empty string such as 'no' would count as True: pass a bool"
        )
    return SIMULATED_SOURCE if simulated else "Sentinel-2 L2A (STAC API)"


def _np_bool() -> type:
    """``numpy.bool_`` (imported lazily: this module is imported by everything)."""
    import numpy as np

    return np.bool_


def clean_partials(root: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files that killed writers left under ``root``; return them.

    :func:`atomic_path` writes to ``.<name>.vitseg-tmp-*`` beside the final path. A
    process killed with SIGKILL cannot remove it; the runner calls this before an
    experiment so such leftovers do not pile up. Final files are never touched. A
    ``root`` that does not exist gives ``[]``.

    Raises
    ------
    MissingFileError
        ``root`` is a file, not a folder.
    """
    removed: list[Path] = []
    base = Path(root)
    if not base.exists():
        return removed
    if not base.is_dir():
        from vitseg.errors import MissingFileError

        raise MissingFileError(
            f"{base} is a file; clean_partials needs the folder to clean (e.g. the report "
            "folder reports/<experiment>)"
        )
    for path in base.rglob(f".*.{_TMP_MARK}*"):
        _remove(path)
        removed.append(path)
    return removed


def write_table(df: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write a pandas DataFrame as CSV (or Parquet for ``.parquet``) atomically.

    ``index=False`` unless given. Returns ``path``.

    Raises
    ------
    ParamsError
        ``df`` is not a DataFrame, or ``path`` is a folder.
    """
    method = "to_parquet" if Path(path).suffix == ".parquet" else "to_csv"
    if not callable(getattr(df, method, None)):
        from vitseg.errors import ParamsError

        raise ParamsError(
            f"write_table needs a pandas DataFrame (it calls df.{method}); got "
            f"{type(df).__name__}. Wrap it: pandas.DataFrame(...)"
        )
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".parquet":
            df.to_parquet(tmp, **kwargs)
        else:
            df.to_csv(tmp, **kwargs)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success.

    Parameters
    ----------
    path
        Final destination. Parent folders are created.
    suffix
        Suffix of the temporary file (defaults to the final suffix, so drivers that
        infer the format from the extension keep working).

    Yields
    ------
    pathlib.Path
        Where to write. If the block raises, the temporary file is removed and
        nothing appears at ``path``.

    Raises
    ------
    ParamsError
        ``path`` has no file name (``""``, ``"."``), a folder above it is a file, or it
        is an existing folder and the block wrote a file (nothing is replaced).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "a.txt").read_text()
    'hi'
    """
    from vitseg.errors import ParamsError

    final = Path(path)
    if str(path) == "" or final.name in ("", ".", ".."):
        raise ParamsError(
            f"cannot write to {str(path)!r}: it names no file; give a file path such as "
            "'reports/demo/tables/x.csv'"
        )
    blocker = next((p for p in final.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ParamsError(
            f"cannot write {final}: {blocker} is a file, not a folder; choose another path "
            "or move the file"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{final.name}.{_TMP_MARK}",
        suffix=suffix if suffix is not None else final.suffix,
        dir=final.parent,
    )
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the name is reserved; the writer creates a file or a folder there
    try:
        yield tmp
        if final.is_dir() and not tmp.is_dir():
            raise ParamsError(
                f"cannot write the file {final}: a folder of that name exists (it was left "
                f"as it is); give a file path inside it, e.g. {final / 'name'}{final.suffix}, "
                "or remove the folder"
            )
        if tmp.is_dir() and final.exists():
            _remove(final)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    """Delete a file or a folder tree, if it exists."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    Raises
    ------
    ParamsError
        ``data`` is not bytes (e.g. a ``str``: use :func:`atomic_write_text`).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        from vitseg.errors import ParamsError

        hint = "; use atomic_write_text for text" if isinstance(data, str) else ""
        raise ParamsError(f"data must be bytes; got {type(data).__name__}{hint}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path.

    Raises
    ------
    ParamsError
        ``text`` is not a ``str`` (bytes: use :func:`atomic_write_bytes`).
    """
    if not isinstance(text, str):
        from vitseg.errors import ParamsError

        hint = "; use atomic_write_bytes for bytes" if isinstance(text, bytes) else ""
        raise ParamsError(f"text must be a str; got {type(text).__name__}{hint}")
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (numpy scalars and paths allowed).

    NaN and +/-inf are written as ``NaN`` / ``Infinity`` (as Python's :mod:`json` does),
    which :func:`read_json` reads back; strict JSON parsers refuse them.

    Raises
    ------
    ParamsError
        ``obj`` holds something JSON cannot hold (a set, an arbitrary object, a
        reference cycle); nothing is written.
    """
    try:
        text = json.dumps(obj, indent=2, default=_json_default)
    except (TypeError, ValueError) as exc:
        from vitseg.errors import ParamsError

        raise ParamsError(
            f"cannot write {path} as JSON: {exc}. Convert it to dicts, lists, strings and "
            "numbers first (a set: sorted(s))"
        ) from None
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file.

    Raises
    ------
    CorruptFileError
        The file is not UTF-8 or not valid JSON (e.g. truncated by a killed process); a
        :class:`vitseg.errors.VitsegError` and ``ValueError`` naming the file and the place.
    MissingFileError
        ``path`` does not exist or is a folder (also ``FileNotFoundError``).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = path.write_text('{"a": 1')
    >>> read_json(path)
    Traceback (most recent call last):
    ...
    vitseg.errors.CorruptFileError: ...a.json is not valid JSON (Expecting ',' delimiter at line 1, column 8)...
    """
    from vitseg.errors import CorruptFileError

    try:
        return _parse_json(Path(path))
    except CorruptFileError as exc:
        raise CorruptFileError(
            f"{exc}; it may have been cut short or edited by hand. Repair it, or delete it and "
            "re-run the step that writes it"
        ) from None


def _parse_json(path: Path) -> Any:
    """Parse a JSON file; a :class:`~vitseg.errors.CorruptFileError` says what is wrong."""
    from vitseg.errors import CorruptFileError

    _check_file(path, "a JSON file")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except UnicodeDecodeError as exc:
        raise CorruptFileError(
            f"{path} is not valid JSON (not UTF-8 text: byte offset {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None


def _read_manifest(path: Path) -> dict[str, Any]:
    """``<report>/manifest.json`` as a dict (``{}`` when absent), with a fix when corrupt."""
    from vitseg.errors import CorruptFileError

    if not path.exists():
        return {}
    fix = (
        f"Delete {path} and re-run: every notebook then runs again and overwrites its outputs "
        "(or pass another --report-dir to start a new report)"
    )
    try:
        manifest = _parse_json(path)
    except CorruptFileError as exc:
        raise CorruptFileError(
            f"the report's manifest is unreadable: {exc}; a process was killed while writing "
            f"it, or it was edited by hand. {fix}"
        ) from None
    if not isinstance(manifest, dict):
        raise CorruptFileError(
            f"the report's manifest {path} holds a JSON {type(manifest).__name__}, not the "
            f"mapping vitseg writes. {fix}"
        )
    return manifest


def _check_file(path: Path, what: str) -> None:
    """Raise :class:`~vitseg.errors.MissingFileError` unless ``path`` is an existing file."""
    from vitseg.errors import MissingFileError

    if path.is_dir():
        raise MissingFileError(f"{path} is a folder, not {what}; give the path of the file")
    if not path.exists():
        raise MissingFileError(f"no file at {path}; check the path (expected {what})")


def sha256_file(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex SHA-256 digest of a file, read in chunks.

    Raises
    ------
    MissingFileError
        ``path`` does not exist or is a folder.
    ParamsError
        ``chunk_bytes`` is not a whole number >= 1 (0 would hash nothing).
    """
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        from vitseg.errors import ParamsError

        raise ParamsError(f"chunk_bytes must be an int >= 1; got {chunk_bytes!r}")
    _check_file(Path(path), "a file to hash")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def git_sha(repo: str | os.PathLike[str] | None = None) -> str | None:
    """Return the current git commit of ``repo`` (default: vitseg's checkout), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo or REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=repo or REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Return installed versions of ``names`` (None where a package is missing).

    Raises
    ------
    ParamsError
        ``names`` is a single string (it would be read letter by letter).
    """
    if isinstance(names, str):
        from vitseg.errors import ParamsError

        raise ParamsError(
            f"names must be a tuple of package names; got the string {names!r}, which would "
            f"be read letter by letter. Pass ({names!r},)"
        )
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclasses.dataclass(frozen=True)
class Run:
    """The folders of one experiment's report, ``reports/<experiment>/``.

    Attributes
    ----------
    root
        ``reports/<experiment>``.
    figures, tables, maps, data, models, executed
        Sub-folders, created on start.
    """

    root: Path

    def __post_init__(self) -> None:
        """Take the root as a :class:`~pathlib.Path` (``Run("reports/demo")`` works too)."""
        object.__setattr__(self, "root", Path(self.root))

    @property
    def figures(self) -> Path:
        """Folder for PNG figures."""
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        """Folder for CSV/Parquet tables."""
        return self.root / "tables"

    @property
    def maps(self) -> Path:
        """Folder for COGs and vector maps."""
        return self.root / "maps"

    @property
    def data(self) -> Path:
        """Folder for intermediate data passed between notebooks."""
        return self.root / "data"

    @property
    def models(self) -> Path:
        """Folder for model checkpoints."""
        return self.root / "models"

    @property
    def executed(self) -> Path:
        """Folder for executed notebooks."""
        return self.root / "executed"

    @property
    def manifest(self) -> Path:
        """Path of ``manifest.json``."""
        return self.root / "manifest.json"


def update_manifest(root: str | os.PathLike[str], section: str, value: Any) -> Path:
    """Set ``manifest[section] = value`` in ``<root>/manifest.json`` (atomically).

    Raises
    ------
    ParamsError
        ``section`` is not a non-empty string.
    CorruptFileError
        The manifest is unreadable; the message says to delete it.
    """
    _check_key(section, "section")
    path = Path(root) / "manifest.json"
    manifest: dict[str, Any] = _read_manifest(path)
    manifest[section] = value
    return write_json(path, manifest)


def _check_key(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        from vitseg.errors import ParamsError

        raise ParamsError(f"{name} must be a non-empty string; got {value!r}")


def use_repo_root() -> Path:
    """Make the repository root the working directory; return it.

    The notebooks call it first, so their relative paths (``reports/demo``, the labels file,
    the AOI file) resolve against the repository root wherever the kernel starts:
    JupyterLab starts it in ``notebooks/``, papermill in the root.

    Examples
    --------
    >>> use_repo_root() == Path.cwd()
    True
    """
    os.chdir(REPO_ROOT)
    return REPO_ROOT


def set_waiting(root: str | os.PathLike[str], notebook: str, message: str | None) -> Path:
    """Record (or clear, with ``message=None``) that ``notebook`` waits for a person's input.

    The runner prints the message after the notebook ran: the run is not failed, it waits
    (e.g. 07_accuracy until interpreters have labelled the sample).

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> _ = set_waiting(root, "07_accuracy", "label the sample")
    >>> read_json(Path(root) / "manifest.json")["waiting"]
    {'07_accuracy': 'label the sample'}
    >>> _ = set_waiting(root, "07_accuracy", None)
    >>> read_json(Path(root) / "manifest.json")["waiting"]
    {}
    """
    from vitseg.errors import CorruptFileError

    _check_key(notebook, "notebook")
    path = Path(root) / "manifest.json"
    manifest: dict[str, Any] = _read_manifest(path)
    waiting = manifest.get("waiting") or {}
    if not isinstance(waiting, dict):
        raise CorruptFileError(
            f"the report's manifest {path} holds 'waiting' as a JSON "
            f"{type(waiting).__name__}, not the mapping vitseg writes; delete the 'waiting' "
            "entry (or the manifest) and re-run"
        )
    waiting = dict(waiting)
    if message:
        waiting[notebook] = message
    else:
        waiting.pop(notebook, None)
    return update_manifest(root, "waiting", waiting)


def start_run(
    report_dir: str | os.PathLike[str],
    *,
    params: Mapping[str, Any] | None = None,
    notebook: str | None = None,
) -> Run:
    """Create the report folders and record provenance in ``manifest.json``.

    Parameters
    ----------
    report_dir
        ``reports/<experiment>``; relative paths are taken from the current directory.
    params
        The notebook's resolved parameters, stored under ``params[notebook]``.
    notebook
        Name of the calling notebook (e.g. ``"01_grid_aoi"``).

    Returns
    -------
    Run
        The run's folders.

    Raises
    ------
    ParamsError
        ``report_dir`` is empty, it (or a folder above it) is a file, or ``params`` is
        not a mapping.
    CorruptFileError
        An existing ``manifest.json`` is not valid JSON (e.g. cut short); the message says
        to delete it.

    Examples
    --------
    >>> import tempfile
    >>> run = start_run(tempfile.mkdtemp(), params={"seed": 0}, notebook="01_grid_aoi")
    >>> run.figures.is_dir()
    True
    """
    from vitseg.errors import ParamsError

    if str(report_dir).strip() == "":
        raise ParamsError(
            "report_dir is empty; give the report folder, e.g. 'reports/demo' (an empty "
            "path would write the report into the current folder)"
        )
    if params is not None and not isinstance(params, Mapping):
        raise ParamsError(
            f"params must be a mapping of parameter names to values; got {type(params).__name__}"
        )
    run = Run(Path(report_dir))
    blocker = next(
        (p for p in (run.root, *run.root.parents) if p.exists() and not p.is_dir()), None
    )
    if blocker is not None:
        raise ParamsError(
            f"report folder {run.root} cannot be created: {blocker} is a file, not a folder; "
            "pass another --report-dir (or 'report_dir' in the params file), or move the file"
        )
    for folder in (run.figures, run.tables, run.maps, run.data, run.models, run.executed):
        folder.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(run.manifest)
    manifest["experiment"] = run.root.name
    manifest["git_sha"] = git_sha()
    manifest["python"] = platform.python_version()
    manifest["platform"] = platform.platform()
    manifest["packages"] = package_versions()
    manifest["updated"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    if params is not None:
        manifest.setdefault("params", {})[notebook or "notebook"] = dict(params)
        if "seed" in params:
            manifest.setdefault("seeds", {})[notebook or "notebook"] = params["seed"]
    write_json(run.manifest, manifest)
    return run


DATA_DIR = Path(__file__).resolve().parent / "data"


def data_path(name: str) -> Path:
    """Return the path of a real data file shipped inside vitseg (``vitseg/data/<name>``).

    Raises
    ------
    MissingFileError
        A :class:`vitseg.errors.VitsegError` (and ``FileNotFoundError``) listing the
        shipped files; also for a name that is empty or points outside ``vitseg/data``
        (``"../io.py"``). Shipped folders (``"reference"``) are returned.

    Examples
    --------
    >>> data_path("ne_10m_ghana.geojson").name
    'ne_10m_ghana.geojson'
    """
    from vitseg.errors import MissingFileError

    path = DATA_DIR / str(name)
    inside = path.resolve().is_relative_to(DATA_DIR.resolve())
    if not isinstance(name, str) or not name.strip() or not inside or path == DATA_DIR:
        available = sorted(p.name for p in DATA_DIR.iterdir())
        raise MissingFileError(
            f"data_path takes the name of a file or folder shipped in {DATA_DIR}; {name!r} "
            f"is not one inside it. Available: {available}"
        )
    if not path.exists():
        available = sorted(p.name for p in DATA_DIR.iterdir()) if DATA_DIR.exists() else []
        raise MissingFileError(
            f"no shipped data file {name!r} in {DATA_DIR}; available: {available}. "
            "See DATA_LICENSES.md for what vitseg ships."
        )
    return path
