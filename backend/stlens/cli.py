"""The ``stlens`` command: ``serve`` the dashboard, ``worker`` (its job runner), ``train``, ``export-dataset``.

A subcommand's module is imported only when that subcommand runs, so ``stlens serve`` does not
pay for the training code and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # the settings import pydantic and torch: only when a command runs
    from fastapi import FastAPI

    from .config import ServerSettings

T = TypeVar("T")

# name -> (module, function adding its arguments, function running it, help)
DELEGATED = {
    "train": (
        "stlens.synth.train",
        "add_train_arguments",
        "run_train",
        "train the built-in models on the synthetic world",
    ),
    "worker": (
        "stlens.queue.worker",
        "add_worker_arguments",
        "run_worker",
        "run visualisations from a Redis queue, for API nodes started with --workers external",
    ),
    "natural-clips": (
        "stlens.analysis.natural_clips",
        "add_natural_clips_arguments",
        "run_natural_clips",
        "cut a clips file (natural_clips of a model file: its class pictures' eigenclips) from videos",
    ),
    "export-dataset": (
        "stlens.synth.export",
        "add_export_arguments",
        "run_export",
        "write the synthetic world's clips to disk",
    ),
}


def add_model_arguments(parser: argparse.ArgumentParser, model_file_help: str) -> None:
    """The flags that choose the models and where they run, the same for ``serve`` and ``worker``
    (who must agree on them: they compute the same content ids)."""
    parser.add_argument("--models", metavar="FILE.toml", help=model_file_help)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where models run (default auto)")
    parser.add_argument(
        "--include-heavy", action="store_true", default=None, help="also offer the zoo's full-size models (GPU)"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def start_up(args: argparse.Namespace, command: str, make: Callable[[ServerSettings], T]) -> T | None:
    """Log at the asked level, read the settings (flags over ``STLENS_*`` over defaults) and
    ``make`` what the command runs from them; None, after saying why on stderr, for bad settings,
    a bad model file or a missing device (no traceback)."""
    from .config import ServerSettings

    given = {k: v for k, v in vars(args).items() if k in ServerSettings.model_fields and v is not None}
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return make(ServerSettings(**given))
    except ValueError as exc:
        print(f"stlens {command}: {exc}", file=sys.stderr)
        return None


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags override ``STLENS_*`` environment variables, which override the defaults."""
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--redis-url", help="use this Redis instead of starting an embedded one")
    parser.add_argument("--data-dir", help="where the embedded Redis keeps its data (default ./var)")
    parser.add_argument(
        "--workers",
        choices=["in-process", "external"],
        help="in-process (default): this server optimises; external: `stlens worker` processes do, via Redis",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        metavar="ADDRESSES",
        help="comma-separated proxy addresses or networks whose X-Forwarded-For is believed (default: none)",
    )
    parser.add_argument(
        "--public-url", help="where people reach this server (e.g. https://lens.example.org); share links use it"
    )
    parser.add_argument(
        "--allowed-hosts", metavar="NAMES", help="extra host names this server answers to, comma-separated ('*': any)"
    )
    add_model_arguments(parser, "a model file whose models join the built-in ones")


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .api import create_app
    from .api.connections import uvicorn_config
    from .datafolder import DataFolder

    def make(settings: ServerSettings) -> tuple[ServerSettings, FastAPI]:
        folder = DataFolder(settings.data_dir)
        folder.acquire()  # not writable, or another server's: exit 2 before anything starts
        return settings, create_app(settings, folder)

    started = start_up(args, "serve", make)
    if started is None:
        return 2
    settings, app = started
    server = uvicorn.Server(uvicorn_config(app, settings, log_level=args.log_level))
    try:
        server.run()
    except KeyboardInterrupt:  # the server stopped cleanly on Ctrl-C and raised it again, as uvicorn.run
        pass
    return 0 if server.started else 3  # 3: the app failed to start, as uvicorn.run says it


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stlens", description="Spacetime Lens: see what video network units respond to."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="start the dashboard and the API")
    add_serve_arguments(serve)
    serve.set_defaults(run=run_serve)
    chosen = argv[0] if argv else None
    for name, (module_name, add_arguments, run, help_text) in DELEGATED.items():
        sub = commands.add_parser(name, help=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            getattr(module, add_arguments)(sub)
            sub.set_defaults(run=getattr(module, run))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
