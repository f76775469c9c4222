"""The dask side of prediction: block tasks, halo chunking and window read plans.

:func:`vitseg.predict.predict_cube` hands each block of the scene to a task built
here. :func:`_halo_map` builds those tasks by hand (one per output block): a block
either gathers copied halo strips of its neighbours' chunks, or, for a source that
reads from files, reads its own window plus halo. Default chunks follow one window
lattice over the scene (:func:`_lattice_chunks`), so that blocks share only the
overlap of their edge windows.

A file-backed cube under element-wise arithmetic (``open_map(dn).astype("float32") *
1e-4``) is read through a :class:`_SourcePlan` (:func:`_source_plan`): the same
element-wise tasks applied to a window read straight from the file, instead of dask
slicing the window out of whole scaled chunks. Plans read dask's internals
(``dask._task_spec``, ``dask.blockwise``, ``dask.layers``), which change between
releases: whenever they do not import, the graph has another shape, or a one-pixel dry
run fails, :func:`_source_plan` returns None and the blocks are read the plain way (same
values, more reading).

Tasks that read, predict, classify or write a block count themselves busy
(:func:`_busy`), so that the CPU forward passes running side by side split the cores
(:func:`_share_cores`) instead of competing for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import dask.array as da
import numpy as np

__all__: list[str] = []

#: Tasks busy in this process now (block reads and predictions, classification, window
#: writes), and torch's thread count before vitseg set any (see _share_cores).
_ACTIVE = 0
_ACTIVE_LOCK = threading.Lock()
_BASE_THREADS: int | None = None
#: Per thread: how deep inside _busy() it is (only such threads adjust torch's threads).
_LOCAL = threading.local()


@contextlib.contextmanager
def _busy() -> Iterator[None]:
    """Count this task among those busy in the process (see :func:`_share_cores`)."""
    global _ACTIVE
    with _ACTIVE_LOCK:
        _ACTIVE += 1
    _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
    try:
        yield
    finally:
        _LOCAL.depth -= 1
        with _ACTIVE_LOCK:
            _ACTIVE -= 1


def _share_cores(torch: Any) -> None:
    """Give this thread's CPU forward passes its share of the cores.

    With one task busy, torch uses every core; with two (dask's threads reading,
    blending, classifying or writing one block while another is in the model), each
    forward gets half of them, so the model never competes with the other thread for a
    core (torch's OpenMP threads wait for their slowest member) and reading/writing
    overlaps inference. Thread counts are per thread in torch's OpenMP backend.
    """
    global _BASE_THREADS
    if _BASE_THREADS is None:
        _BASE_THREADS = max(1, int(torch.get_num_threads()))
    n = max(1, _BASE_THREADS // max(1, _ACTIVE))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _lattice_chunks(size: int, tile: int, overlap: int, target: int = 1024) -> tuple[int, ...]:
    """Default chunk sizes along an axis: blocks of whole windows on one window lattice.

    Windows advance by ``stride = tile - overlap`` from the far edge of the axis, and
    chunk boundaries fall in the middle of the overlaps, so that a chunk plus its halo
    of ``overlap // 2`` on each inner side is exactly ``n`` windows (``n * stride`` about
    ``target``): neighbouring blocks share only the overlap of their edge windows, and
    an axis costs no more windows than one block covering it whole (2048 px of tile 256,
    overlap 32: 9 windows, not 5 + 5). The short remainder is the *first* chunk: dask
    starts with the last blocks, so the largest run first and the smallest last, and the
    workers finish together. A remainder no longer than a quarter chunk (or shorter than
    the halo) is merged into its neighbour (:func:`_halo_chunks`).

    Examples
    --------
    >>> _lattice_chunks(2048, 256, 32)  # blocks of 928 and 1152 px: 4 + 5 windows
    (912, 1136)
    >>> _lattice_chunks(4096, 256, 32)
    (720, 1120, 1120, 1136)
    >>> _lattice_chunks(1000, 256, 32), _lattice_chunks(2048, 1024, 32)
    ((1000,), (1040, 1008))
    """
    stride = max(tile - overlap, 1)
    half = overlap // 2
    core = max(1, round(target / stride)) * stride
    if size <= core + half:
        return (size,)
    # cores counted from the far edge, whose block has no outer halo: its n windows
    # reach half an overlap further, into the chunk itself
    sizes = list(_halo_chunks(size - half, core, half))
    sizes[0] += half
    return tuple(reversed(sizes))


def _halo_chunks(size: int, chunk: int, depth: int) -> tuple[int, ...]:
    """Chunk sizes of ``chunk`` px along an axis of ``size``, none narrower than ``depth``.

    A last chunk narrower than the halo (so that every halo comes from the immediate
    neighbour) or no wider than a quarter chunk (a sliver would cost a task, and model
    windows, of its own) is merged into the one before it.

    Examples
    --------
    >>> _halo_chunks(100, 32, 16), _halo_chunks(90, 40, 8)
    ((32, 32, 36), (40, 50))
    >>> _halo_chunks(100, 40, 16)
    (40, 40, 20)
    """
    sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    if len(sizes) > 1 and (sizes[-1] < depth or sizes[-1] <= chunk // 4):
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes) if sizes else (size,)


def _strip(block: np.ndarray[Any, Any], sy: slice, sx: slice) -> np.ndarray[Any, Any]:
    """Copy a halo strip out (a view would keep the whole neighbour chunk alive)."""
    return np.array(block[..., sy, sx], dtype="float32", copy=True)


def _haloed_task(
    parts: list[list[np.ndarray[Any, Any] | None]],
    payload: Any,
    func: Any,
    top: int,
    left: int,
) -> np.ndarray[Any, Any]:
    """Assemble a chunk with its neighbours' strips, predict it, return the chunk's part."""
    present = [[p for p in row if p is not None] for row in parts]
    rows = [np.concatenate(row, axis=-1) if len(row) > 1 else row[0] for row in present if row]
    block = np.concatenate(rows, axis=-2) if len(rows) > 1 else rows[0]
    centre = parts[1][1]
    assert centre is not None
    del parts, rows
    with _busy():
        res: np.ndarray[Any, Any] = func(block, payload)
    h, w = centre.shape[-2:]
    return np.ascontiguousarray(res[..., top : top + h, left : left + w])


def _file_backed(arr: da.Array) -> bool:
    """Tell whether ``arr`` reads lazily from files through xarray (e.g. ``open_map``).

    Such a source can read any window cheaply (the slice reaches the file reader), so
    each block reads its own window with the halo instead of sharing neighbour chunks.
    False for anything else, and whenever dask's graph is not laid out as expected
    (the caller then rechunks: slower, never wrong).

    Examples
    --------
    >>> import dask.array as da
    >>> _file_backed(da.zeros((2, 2), chunks=1)), _file_backed(object())
    (False, False)
    """
    try:
        for layer in arr.dask.layers.values():
            for key, value in layer.items() if len(layer) == 1 else ():
                obj = getattr(value, "value", value)
                if str(key).startswith("original-") and not isinstance(obj, np.ndarray):
                    return "xarray" in type(obj).__module__
    except Exception:  # dask's graph changed shape: take the plain path
        return False
    return False


@dataclasses.dataclass(frozen=True)
class _Step:
    """One element-wise layer of a :class:`_SourcePlan`.

    ``task`` is dask's task, called with ``{placeholder: value}``. ``args`` give each
    placeholder as ``(placeholder, kind, value)``: ``kind`` is ``"array"`` (``value``
    names the layer below), ``"slices"`` (the window, for a source's ``getter``) or
    ``"const"`` (a scalar, or the lazily indexed file array). Plain ufunc arithmetic
    also has ``ufunc`` and its ``operands`` as ``(is_placeholder, placeholder or
    literal)``, read off dask's task once, when the plan is built.
    """

    task: Any
    args: tuple[tuple[str, str, Any], ...]
    ufunc: np.ufunc | None = None
    operands: tuple[tuple[bool, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class _SourcePlan:
    """Element-wise dask layers over lazily read file sources, evaluable on any window.

    ``steps`` maps a layer name to its :class:`_Step`; ``top`` is the layer of the array.
    """

    top: str
    steps: Mapping[str, _Step]
    shape: tuple[int, ...]

    def read(self, window: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        """Evaluate the layers on ``window`` only: the slice reaches the file reader.

        An arithmetic step whose float input is an intermediate used by it alone (say
        the ``* 1e-4`` after ``astype``) writes its result over that input: one
        window-sized array (and its page faults) less per step. Never over what a source
        returned, which may be a reader's cache.
        """
        return self._run(window, {})

    def check(self) -> bool:
        """Run the plan on one pixel of every source, without reading the files.

        Each source layer gives a 1-pixel array of ones of its file's dtype instead of
        reading; every other task runs as :meth:`read` runs it. True when that gives one
        float pixel per axis: dask's tasks still take the values the plan hands them.
        Raises whatever a changed dask raises (the caller falls back).
        """
        fake: dict[str, Any] = {}
        for name, step in self.steps.items():
            if any(k == "slices" for _, k, _ in step.args):
                (dtype,) = {np.dtype(v.dtype) for _, k, v in step.args if k == "const"}
                fake[name] = np.ones((1,) * len(self.shape), dtype=dtype)
        window = tuple(slice(0, 1) for _ in self.shape)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # 1 / x on the ones, say: no matter here
            out = self._run(window, fake)
        return bool(out.shape == (1,) * len(self.shape))

    def _run(self, window: tuple[slice, ...], fake: Mapping[str, Any]) -> np.ndarray[Any, Any]:
        uses: dict[str, int] = {}
        for step in self.steps.values():
            for _, k, v in step.args:
                if k == "array":
                    uses[v] = uses.get(v, 0) + 1
        sources = {
            n for n, step in self.steps.items() if any(k == "slices" for _, k, _ in step.args)
        }

        memo: dict[str, Any] = {}  # a step used twice (``where(x != nodata, x)``) runs once

        def value(name: str) -> Any:
            if name not in memo:
                memo[name] = fake[name] if name in fake else evaluate(name)
            return memo[name]

        def evaluate(name: str) -> Any:
            step = self.steps[name]
            vals: dict[str, Any] = {
                p: window if k == "slices" else value(v) if k == "array" else v
                for p, k, v in step.args
            }
            if step.ufunc is not None:
                ops = [vals[v] if ref else v for ref, v in step.operands]
                spare = {
                    id(vals[p])
                    for p, k, v in step.args
                    if k == "array" and uses[v] == 1 and v not in sources
                }
                for op in ops:
                    if (
                        id(op) in spare and isinstance(op, np.ndarray)
                        and np.issubdtype(op.dtype, np.floating)
                        and np.result_type(*ops) == op.dtype
                        and np.broadcast_shapes(*(np.shape(o) for o in ops)) == op.shape
                    ):  # fmt: skip
                        return step.ufunc(*ops, out=op)
            return step.task(vals)

        return np.asarray(value(self.top), dtype="float32")


# the operators of dask's element-wise arithmetic, as numpy ufuncs
_UFUNCS: dict[Any, np.ufunc] = {
    operator.add: np.add, operator.sub: np.subtract, operator.mul: np.multiply,
    operator.truediv: np.true_divide, operator.floordiv: np.floor_divide,
    operator.mod: np.remainder, operator.pow: np.power, operator.neg: np.negative,
    operator.pos: np.positive, operator.abs: np.absolute, operator.invert: np.invert,
    operator.eq: np.equal, operator.ne: np.not_equal, operator.lt: np.less,
    operator.le: np.less_equal, operator.gt: np.greater, operator.ge: np.greater_equal,
    operator.and_: np.bitwise_and, operator.or_: np.bitwise_or, operator.xor: np.bitwise_xor,
}  # fmt: skip


def _pointwise(func: Any) -> bool:
    """Tell whether a blockwise function acts pixel by pixel (same result on any window)."""
    from dask.array.chunk import astype

    return isinstance(_UFUNCS.get(func, func), np.ufunc) or any(
        func is f for f in (astype, np.where, np.clip)
    )


def _source_plan(arr: da.Array) -> _SourcePlan | None:
    """Plan window reads of ``arr`` when it is element-wise ops over file-backed sources.

    ``open_map(path).astype("float32") * 1e-4`` is such an array. dask slices a window
    out of each whole chunk *after* the element-wise ops, so a window crossing chunk
    edges would read, convert and scale up to four whole chunks (2.25x the scene for
    2048 px in 1024 px chunks and four blocks); the plan instead applies the same tasks
    to a window read straight from the file. Only pixel-wise functions (:func:`_pointwise`:
    arithmetic, comparisons, ufuncs, ``where``, ``clip``, ``astype``) over sources read
    by dask's ``getter`` qualify; anything else (``map_blocks``, reductions,
    broadcasting, rechunking, indexing, in-memory sources) returns None, and the caller
    reads windows through the dask graph.

    The plan reads dask's internals (``dask._task_spec``, ``dask.blockwise``,
    ``dask.layers``), which change between releases without notice. So a plan is built
    only when all of them import, the graph has the expected shape, and a dry run on one
    pixel (:meth:`_SourcePlan.check`) works; any failure returns None, and the caller
    takes the plain dask path (slower on files, same values).

    Examples
    --------
    >>> import dask.array as da
    >>> _source_plan(da.ones((2, 4, 4), chunks=2) * 2) is None  # no file source
    True
    """
    try:
        plan = _build_plan(arr)
        return plan if plan is not None and plan.check() else None
    except Exception:  # dask's internals moved or changed: the plain path is always right
        return None


def _build_plan(arr: da.Array) -> _SourcePlan | None:
    """Build :func:`_source_plan`'s plan (None when the graph does not qualify).

    Raises ImportError, AttributeError, TypeError... when dask's internals changed.
    """
    from dask._task_spec import DataNode, GraphNode, Task, TaskRef
    from dask.array.core import getter, getter_inline, getter_nofancy
    from dask.blockwise import Blockwise, blockwise_token
    from dask.layers import ArraySliceDep

    hlg = arr.dask
    steps: dict[str, _Step] = {}
    n_sources = 0

    def visit(name: str) -> bool:
        nonlocal n_sources
        if name in steps:
            return True
        layer = hlg.layers.get(name)
        if (
            not isinstance(layer, Blockwise) or layer.concatenate or layer.new_axes
            or not isinstance(layer.task, Task) or layer.output_blocks is not None
        ):  # fmt: skip
            return False
        task = layer.task
        func = task.func
        if not (
            _pointwise(func) or (layer.io_deps and func in (getter, getter_inline, getter_nofancy))
        ):
            return False
        placeholders = {blockwise_token(i) for i in range(len(layer.indices))}
        if not set(task.dependencies) <= placeholders:
            return False
        out_ind, args = tuple(layer.output_indices), []
        for i, (ref, ind) in enumerate(layer.indices):
            ph = blockwise_token(i)
            if ind is None:  # passed whole: a scalar, or the file array of a source
                if isinstance(ref, TaskRef) and layer.io_deps:  # a source's file array
                    node = hlg.get(ref.key)
                    obj = node.value if isinstance(node, DataNode) else node
                    if "xarray" not in type(obj).__module__:
                        return False
                    args.append((ph, "const", obj))
                elif np.ndim(ref) == 0 and not isinstance(ref, (da.Array, GraphNode, TaskRef)):
                    args.append((ph, "const", ref))
                else:
                    return False
            elif tuple(ind) != out_ind:
                return False
            elif ref in layer.io_deps:
                dep = layer.io_deps[ref]
                if not isinstance(dep, ArraySliceDep) or tuple(dep.chunks) != arr.chunks:
                    return False
                n_sources += 1
                args.append((ph, "slices", None))
            elif visit(ref):
                args.append((ph, "array", ref))
            else:
                return False
        ufunc = _UFUNCS.get(func, func)
        plain = all(isinstance(a, TaskRef) or not isinstance(a, GraphNode) for a in task.args)
        if isinstance(ufunc, np.ufunc) and ufunc.nout == 1 and not task.kwargs and plain:
            operands = tuple(
                (True, a.key) if isinstance(a, TaskRef) else (False, a) for a in task.args
            )
            steps[name] = _Step(task, tuple(args), ufunc, operands)
        else:
            steps[name] = _Step(task, tuple(args))
        return True

    if not visit(arr.name) or not n_sources:
        return None
    return _SourcePlan(arr.name, steps, tuple(arr.shape))


def _plan_read(plan: _SourcePlan, window: tuple[slice, ...], expand: bool) -> np.ndarray[Any, Any]:
    """Read one window through ``plan`` (with a leading time axis added if ``expand``)."""
    block = plan.read(window)
    return block[None] if expand else block


def _read_window(dsk: Mapping[Any, Any], keys: list[Any]) -> np.ndarray[Any, Any]:
    """Compute one window of a lazy source from its own small graph (sync, in the task)."""
    from dask.array.core import concatenate3
    from dask.local import get_sync

    return np.asarray(concatenate3(get_sync(dict(dsk), keys)), dtype="float32")


def _halo_map(
    arr: da.Array,
    grid: tuple[tuple[int, ...], ...],
    model_key: Any,
    *,
    depth: int,
    n_classes: int,
    func: Any,
    plan: _SourcePlan | None = None,
) -> da.Array:
    """Apply ``func(haloed_block, payload)`` to every ``(1, band, y, x)`` block of ``grid``.

    Memory stays flat with the width of the scene, whatever order the scheduler runs the
    blocks in. A source that reads from files (:func:`_file_backed`) is read once per
    block, window plus halo, through a small graph of its own (GDAL's block cache makes
    the re-read halos cheap). Any other source is chunked on ``grid``; each block then
    depends on its own chunk and on *copied* strips (``depth`` px) of its eight
    neighbours, never on views that would pin whole neighbour chunks. With a ``plan``
    (:func:`_source_plan` of the cube's data, ``(band, y, x)`` or ``(time, band, y, x)``)
    each block's window is read through the plan instead of dask's slicing. The result
    is chunked on ``grid`` with ``n_classes`` along axis 1.
    """
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    read = plan is not None or _file_backed(arr)
    tok = tokenize(arr.name, grid, model_key.key, depth, n_classes, func, plan is None)
    strip_name, out_name = f"vitseg-halo-{tok}", f"vitseg-predict-{tok}"
    ny, nx = len(grid[2]), len(grid[3])
    y_off, x_off = np.cumsum((0, *grid[2])), np.cumsum((0, *grid[3]))
    dsk: dict[Any, Any] = {}
    sides = {-1: slice(-depth, None), 0: slice(None), 1: slice(0, depth)}
    for t in range(len(grid[0])):
        for i in range(ny):
            for j in range(nx):
                top = depth if (depth and i > 0) else 0
                left = depth if (depth and j > 0) else 0
                if read:
                    bottom = depth if (depth and i < ny - 1) else 0
                    right = depth if (depth and j < nx - 1) else 0
                    h, w = grid[2][i], grid[3][j]
                    ys = slice(int(y_off[i] - top), int(y_off[i + 1] + bottom))
                    xs = slice(int(x_off[j] - left), int(x_off[j + 1] + right))
                    if plan is not None:
                        timed = len(plan.shape) == 4
                        lead = (slice(t, t + 1),) if timed else ()
                        window = (*lead, slice(0, plan.shape[-3]), ys, xs)
                        reader = functools.partial(_plan_read, plan, window, not timed)
                    else:
                        win = arr[t : t + 1, :, ys, xs]
                        sub = win.__dask_optimize__(win.__dask_graph__(), win.__dask_keys__())
                        reader = functools.partial(_read_window, dict(sub), win.__dask_keys__())
                    dsk[(out_name, t, 0, i, j)] = (
                        _read_task, reader, model_key.key, func, top, left, h, w,
                    )  # fmt: skip
                    continue
                parts: list[list[Any]] = [[None] * 3 for _ in range(3)]
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        ii, jj = i + di, j + dj
                        src = (arr.name, t, 0, ii, jj)
                        if (di, dj) == (0, 0):
                            parts[1][1] = src
                        elif depth and 0 <= ii < ny and 0 <= jj < nx:
                            key = (strip_name, t, i, j, di + 1, dj + 1)
                            dsk[key] = (_strip, src, sides[di], sides[dj])
                            parts[di + 1][dj + 1] = key
                dsk[(out_name, t, 0, i, j)] = (
                    _haloed_task, parts, model_key.key, func, top, left,
                )  # fmt: skip
    deps = [model_key] if read else [arr, model_key]
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=deps)
    chunks = (grid[0], (n_classes,), grid[2], grid[3])
    return da.Array(graph, out_name, chunks=chunks, dtype="float32")


def _read_task(
    reader: Any, payload: Any, func: Any, top: int, left: int, h: int, w: int
) -> np.ndarray[Any, Any]:
    """Read a block with its halo, predict it, return the block's part."""
    with _busy():
        res: np.ndarray[Any, Any] = func(reader(), payload)
    return np.ascontiguousarray(res[..., top : top + h, left : left + w])
