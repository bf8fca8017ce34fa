"""The ``selfdesc`` command line: ``selfdesc <command> [<subcommand>] [options]``.

Every user error (bad file, unknown feature, missing weights) is printed on one line as
``selfdesc: error: ...`` with exit status 2; nothing is printed as a traceback.

Exit status: 0 done (also a training run that reached its ``--max-minutes``), 2 a user error,
130 / 143 a run stopped cleanly by SIGINT (Ctrl-C) / SIGTERM (``selfdesc train`` saves a
checkpoint first: continue with ``--resume``).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable, Sequence

from selfdesc.errors import SelfdescError, StopRequested

Handler = Callable[[argparse.Namespace], int]


#: command modules of ``selfdesc.cli``, in the order a user needs them (help order); each
#: defines ``register(subparsers)``
COMMAND_MODULES: list[str] = [
    "train_cmd",
    "extract_cmd",
    "pairs_cmd",
    "match_cmd",
    "sfm_cmd",
    "eval_cmd",
    "train_matcher_cmd",
    "export_cmd",
    "features_cmd",
    "demo_cmd",
    "data_cmd",
    "stylize_cmd",
    "index_cmd",
    "onnx_cmd",
]


def _add_commands(parser: argparse.ArgumentParser) -> None:
    import importlib

    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"selfdesc.cli.{name}").register(sub)


def build_parser() -> argparse.ArgumentParser:
    from selfdesc import __version__

    parser = argparse.ArgumentParser(
        prog="selfdesc",
        description="Self-supervised local image features: learn, extract, match, evaluate.\n\n"
        "first steps:\n  selfdesc demo\n  selfdesc <command> --help   (each command shows an example)",
        epilog="exit status: 0 done, 2 a user error (one line: the file and the problem), "
        "130/143 a run stopped by Ctrl-C/SIGTERM (selfdesc train saves a checkpoint first: continue with --resume)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"selfdesc {__version__}")
    _add_commands(parser)
    return parser


def _one_line(exc: BaseException) -> str:
    """The message of a user error on one line. An error raised in a DataLoader worker comes back
    as ``Caught <Error> in DataLoader worker ...`` plus the worker's traceback, whose last line
    is ``<module>.<Error>: <message>``: the message is taken from there."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) > 1 and lines[0].startswith("Caught ") and "worker" in lines[0]:
        return lines[-1].split(": ", 1)[-1]
    return lines[0]


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """Warnings as one line (``selfdesc: warning: ...``), without the source line Python adds."""
    return f"selfdesc: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous_format = warnings.formatwarning
    warnings.formatwarning = _warning_line
    try:
        return int(args.handler(args) or 0)
    except SelfdescError as exc:
        print(f"selfdesc: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file-system failure the up-front checks could not foresee (disk full, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"selfdesc: error: {where}{exc.strerror or str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except MemoryError:
        print("selfdesc: error: out of memory; pass a smaller --resize-max, --max-keypoints or batch size", file=sys.stderr)
        return 2
    except StopRequested as stop:
        print(f"selfdesc: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("selfdesc: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous_format


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
