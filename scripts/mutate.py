"""Small AST mutation tester for vitseg (no network, no config files); see docs/mutation.md.

usage: python scripts/mutate.py MODULE TEST... [--only 3,7,10-20] [--timeout S]
                                [--deselect NODEID] [--out FILE]

Run from the repository root (or from a copy of it). Copies ``vitseg/``, ``tests/`` and
``pyproject.toml`` to a temporary directory, writes one mutant at a time there (the tree it
is run from is never touched) and runs ``pytest -x -q -p no:cacheprovider TESTS MODULE``
(so MODULE's doctests count too) in a forked child of a process that imported the heavy
libraries once. The unmutated module is written back after every mutant, also when the run
is interrupted (Ctrl-C, SIGTERM), and the temporary directory is removed at the end.

Prints one line per mutant (``#index kind killed|survived|timeout seconds``), the diff of
each survivor and a ``TOTAL`` line; ``--only`` re-runs chosen mutant indices (stable while
the module's source does not change). A mutant whose tests run past ``--timeout`` seconds
counts as killed (``timeout``).
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, TextIO

CMP: dict[type, type] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BIN: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
BOOL: dict[type, type] = {ast.And: ast.Or, ast.Or: ast.And}


def _skipped(tree: ast.AST) -> set[int]:
    """Return the ids of nodes not to mutate: docstrings, annotations, f-strings, ``__all__``."""
    skip: set[int] = set()

    def mark(n: ast.AST | None) -> None:
        if n is not None:
            skip.update(id(m) for m in ast.walk(n))

    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = n.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                mark(body[0])
        if isinstance(n, ast.arg):
            mark(n.annotation)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(n.returns)
        if isinstance(n, ast.AnnAssign):
            mark(n.annotation)
        if isinstance(n, ast.JoinedStr):
            mark(n)
        if isinstance(n, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets
        ):
            mark(n)
    return skip


def sites(tree: ast.AST) -> list[tuple[int, str]]:
    """Return (node index in ``ast.walk`` order, mutation kind) for every mutation."""
    skip = _skipped(tree)
    out: list[tuple[int, str]] = []
    for i, n in enumerate(ast.walk(tree)):
        if id(n) in skip:
            continue
        if isinstance(n, ast.Compare):
            out += [(i, f"cmp{j}") for j, op in enumerate(n.ops) if type(op) in CMP]
        elif isinstance(n, (ast.BinOp, ast.AugAssign)) and type(n.op) in BIN:
            out.append((i, "bin"))
        elif isinstance(n, ast.BoolOp):
            out.append((i, "bool"))
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.Not, ast.Invert)):
            out.append((i, "unary"))
        elif isinstance(n, ast.Constant) and isinstance(n.value, bool):
            out.append((i, "bool_const"))
        elif isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            out.append((i, "num"))
        elif (
            isinstance(n, ast.Return)
            and n.value is not None
            and not (isinstance(n.value, ast.Constant) and n.value.value is None)
        ):
            out.append((i, "return_none"))
    return out


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, new: ast.AST) -> None:
        self.target, self.new = target, new

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return self.new
        return super().generic_visit(node)


def mutate(tree: ast.AST, index: int, kind: str) -> str:
    """Return the source of ``tree`` with mutation ``kind`` applied at node ``index``."""
    t = copy.deepcopy(tree)
    n: Any = list(ast.walk(t))[index]
    if kind.startswith("cmp"):
        j = int(kind[3:])
        n.ops[j] = CMP[type(n.ops[j])]()
    elif kind == "bin":
        n.op = BIN[type(n.op)]()
    elif kind == "bool":
        n.op = BOOL[type(n.op)]()
    elif kind == "unary":
        t = _Replace(n, n.operand).visit(t)
    elif kind == "bool_const":
        n.value = not n.value
    elif kind == "num":
        n.value = n.value + 1
    elif kind == "return_none":
        n.value = None
    return ast.unparse(ast.fix_missing_locations(t))


def run_tests(tmp: str, args: list[str], timeout: float) -> str:
    """Run pytest on ``args`` in a forked child inside ``tmp``; return the outcome."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.chdir(tmp)
            sys.path.insert(0, tmp)
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import pytest

            rc = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *args]))
        except BaseException:
            rc = 99
        os._exit(rc)
    t0 = time.time()
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
                return "survived" if rc == 0 else ("killed" if rc == 1 else f"error{rc}")
            if time.time() - t0 > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "timeout"
            time.sleep(0.05)
    except BaseException:  # interrupted: do not leave the child running
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
        raise


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _parse_only(text: str) -> set[int]:
    only: set[int] = set()
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        only.update(range(int(a), int(b or a) + 1))
    return only


def main() -> None:
    """Mutate MODULE once per site and report which mutants the TESTS kill."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("module", help="e.g. vitseg/change.py")
    p.add_argument("tests", nargs="+", help="the module's own test files")
    p.add_argument("--only", default="", help="mutant indices, e.g. 3,7,10-20")
    p.add_argument("--timeout", type=float, default=120, help="seconds per mutant")
    p.add_argument("--out", default=None, help="write the report here (default stdout)")
    p.add_argument("--deselect", action="append", default=[], help="pytest node id to skip")
    ns = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    sys.dont_write_bytecode = True
    signal.signal(signal.SIGTERM, _sigterm)
    import geopandas  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyproj  # noqa: F401
    import rasterio  # noqa: F401
    import rioxarray  # noqa: F401
    import scipy  # noqa: F401
    import shapely  # noqa: F401
    import torch
    import xarray  # noqa: F401

    torch.set_num_threads(1)
    with open(ns.module, encoding="utf-8") as f:
        src = f.read()
    tree = ast.parse(src)
    todo = sites(tree)
    only = _parse_only(ns.only)
    args = [*ns.tests, ns.module, *(f"--deselect={d}" for d in ns.deselect)]
    base = ast.unparse(tree)
    out: TextIO = open(ns.out, "w", encoding="utf-8") if ns.out else sys.stdout
    tmp = tempfile.mkdtemp(prefix="vitseg-mut-")
    target = os.path.join(tmp, ns.module)
    counts: dict[str, int] = {}
    start = time.time()
    try:
        for d in ("vitseg", "tests"):
            shutil.copytree(d, os.path.join(tmp, d), ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy("pyproject.toml", tmp)
        with open(target, "w", encoding="utf-8") as f:
            f.write(base)
        if not only and run_tests(tmp, args, 600) != "survived":
            sys.exit("baseline run fails: fix the tests first")
        print(f"# {ns.module}: {len(todo)} mutation sites", file=out, flush=True)
        seen: set[str] = set()
        for k, (i, kind) in enumerate(todo):
            if only and k not in only:
                continue
            code = mutate(tree, i, kind)
            if code == base or code in seen:
                continue
            seen.add(code)
            t0 = time.time()
            try:
                with open(target, "w", encoding="utf-8") as f:
                    f.write(code)
                res = run_tests(tmp, args, ns.timeout)
            finally:  # the unmutated module is back before anything else happens
                with open(target, "w", encoding="utf-8") as f:
                    f.write(base)
            counts[res] = counts.get(res, 0) + 1
            print(f"#{k} {kind} {res} {time.time() - t0:.1f}s", file=out, flush=True)
            if res == "survived":
                diff = difflib.unified_diff(base.splitlines(), code.splitlines(), lineterm="", n=1)
                print("\n".join(list(diff)[2:]), file=out, flush=True)
        total = sum(counts.values())
        print(f"TOTAL {total} {counts} {time.time() - start:.0f}s", file=out, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
