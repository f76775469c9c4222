"""Check that every figure a run saved is shown inline in its executed notebooks.

    .venv/bin/python scripts/check_figures.py reports/ci

Counts the image outputs of ``<report>/executed/NN_*.ipynb`` per notebook and the PNG
files under ``<report>/figures``; prints both and exits 1 when they differ (a figure saved
but not displayed, or displayed twice). ``make notebooks-ci`` runs it on a fresh report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(report: str) -> int:
    """Print the counts; return 0 when inline figures equal saved PNGs, else 1."""
    root = Path(report)
    total = 0
    for nb in sorted((root / "executed").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        n = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        print(f"  {nb.stem:<18} {n:3d} inline figures")
        total += n
    saved = len(list((root / "figures").glob("*.png")))
    print(f"  {'all notebooks':<18} {total:3d} inline, {saved} PNG files in {root / 'figures'}")
    if total != saved:
        print("check_figures: inline figures and saved PNGs differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "reports/ci"))
