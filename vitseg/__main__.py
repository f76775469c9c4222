"""Run vitseg experiments from the command line.

An experiment is one YAML file, params/<experiment>.yaml. 'vitseg run' executes its
notebooks in order with papermill and writes the executed copies, figures, tables and
maps to reports/<experiment>/. Notebooks that are up to date are skipped, so a run
that stopped goes on where it stopped.

Examples
--------
  vitseg run params/demo.yaml
  vitseg run params/demo.yaml --only 04_train --force
  vitseg run params/ci.yaml --report-dir reports/try --set seed=1
"""

from __future__ import annotations

import argparse
import sys

from vitseg.errors import NotebookFailedError, ParamsError, VitsegError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_OTHER", "EXIT_USAGE", "main"]

#: Exit codes of the ``vitseg`` command.
EXIT_OK = 0
EXIT_FAILED = 1  # a notebook raised (NotebookFailedError)
EXIT_USAGE = 2  # bad command line or parameters (argparse, ParamsError)
EXIT_OTHER = 3  # any other VitsegError, e.g. a corrupt manifest.json in the report folder
EXIT_INTERRUPTED = 130  # Ctrl-C

_EPILOG = """exit status:
  0    every notebook ran or was up to date
  1    a notebook failed (its executed copy up to the failure is kept)
  2    bad command line or parameters (nothing was executed)
  3    another vitseg error (the message says what to fix)
  130  interrupted (finished notebooks are kept)
"""


def _parser() -> argparse.ArgumentParser:
    from vitseg import __version__

    parser = argparse.ArgumentParser(
        prog="vitseg",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vitseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_p = sub.add_parser(
        "run",
        help="execute an experiment's notebooks with papermill",
        description="Execute the notebooks of params/<experiment>.yaml in order with papermill.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_p.add_argument("params", help="the experiment file, e.g. params/demo.yaml")
    run_p.add_argument(
        "--only", action="append", default=None, metavar="NN_name",
        help="run only this notebook (repeatable), e.g. --only 04_train",
    )  # fmt: skip
    run_p.add_argument(
        "--force", action="store_true",
        help="re-execute notebooks whose inputs did not change since their last run",
    )  # fmt: skip
    run_p.add_argument(
        "--report-dir", default=None, metavar="DIR",
        help="write the report here instead of reports/<experiment> (relative to the repository root)",
    )  # fmt: skip
    run_p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
        help="set a 'common' key over the file's value (YAML value), e.g. --set stac_source=http://127.0.0.1:8000",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``vitseg`` command line; return the process exit code.

    Parameters
    ----------
    argv
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 ok, 1 a notebook failed, 2 bad command line or parameters, 3 another
        :class:`~vitseg.errors.VitsegError`, 130 interrupted. Errors are printed to stderr
        as one ``vitseg: error: ...`` message, without a traceback.

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    vitseg ...
    0
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print("vitseg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        from vitseg.runner import parse_overrides, run_experiment

        run_experiment(
            args.params, only=args.only, force=args.force, report_dir=args.report_dir,
            overrides=parse_overrides(args.overrides),
        )  # fmt: skip
    except ParamsError as exc:
        print(f"vitseg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotebookFailedError as exc:
        print(f"vitseg: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except VitsegError as exc:
        print(f"vitseg: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_OTHER
    except KeyboardInterrupt:
        print("vitseg: interrupted; finished notebooks are kept, re-run to go on", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
