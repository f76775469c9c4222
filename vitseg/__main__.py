"""Command line: ``python -m vitseg run params/<experiment>.yaml [--only NN_name]``."""

from __future__ import annotations

import argparse
import sys

from vitseg.errors import VitsegError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the vitseg command line; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m vitseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute an experiment's notebooks with papermill")
    run_p.add_argument("params", help="params/<experiment>.yaml")
    run_p.add_argument(
        "--only", action="append", default=None, metavar="NN_name",
        help="run only this notebook (repeatable), e.g. --only 04_train",
    )  # fmt: skip
    run_p.add_argument(
        "--force", action="store_true",
        help="re-execute notebooks whose inputs did not change since their last run",
    )  # fmt: skip
    run_p.add_argument("--report-dir", default=None, help="override reports/<experiment>")
    run_p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
        help="set a 'common' key over the file's value (YAML value), e.g. --set stac_source=http://127.0.0.1:8000",
    )  # fmt: skip
    args = parser.parse_args(argv)

    from vitseg.runner import parse_overrides, run_experiment

    try:
        run_experiment(
            args.params, only=args.only, force=args.force, report_dir=args.report_dir,
            overrides=parse_overrides(args.overrides),
        )  # fmt: skip
    except VitsegError as exc:
        print(f"vitseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vitseg: interrupted; finished notebooks are kept, re-run to go on", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
