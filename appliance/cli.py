"""The command line: ``headless-meeting-bot serve | doctor | worker | --version``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import trio

from appliance import __version__, logs

log = logging.getLogger(__name__)

PLUGIN_PATH_ENV = "HMB_PLUGIN_PATH"


def plugin_path(env: Mapping[str, str] | None = None) -> list[Path]:
    """Where third-party plugins installed beside the appliance are, in order.

    ``HMB_PLUGIN_PATH`` lists folders (laid out by ``pip install --target``) and wheel
    files, separated by ``:``; a folder's own ``*.whl`` files follow it. Unset, the
    one-file binary looks in ``plugins/`` beside itself, when that folder exists.
    """
    env = os.environ if env is None else env
    raw = env.get(PLUGIN_PATH_ENV)
    if raw is None:
        beside = Path(sys.executable).resolve().parent / "plugins"
        frozen = getattr(sys, "frozen", False)
        entries = [beside] if frozen and beside.is_dir() else []
    else:
        entries = [Path(part) for part in raw.split(os.pathsep) if part]
    found: list[Path] = []
    for entry in entries:
        found.append(entry)
        if entry.is_dir():
            found.extend(sorted(entry.glob("*.whl")))
    return found


def add_plugin_path(env: Mapping[str, str] | None = None) -> list[Path]:
    """Put :func:`plugin_path` on ``sys.path``, where the plugin manager's entry-point
    scan (``importlib.metadata``) and imports find them.

    Appended, not prepended: a plugin's copy of a library the appliance bundles never
    replaces the bundled one. PyInstaller's binary ignores ``PYTHONPATH``, hence this.

    Limitation: a plugin's compiled extensions must be built for this Python (3.11,
    x86-64 Linux), and a wheel file only works for pure-Python plugins (zipimport);
    install others with ``pip install --target``.
    """
    entries = plugin_path(env)
    for entry in entries:
        if str(entry) not in sys.path:
            sys.path.append(str(entry))
    importlib.invalidate_caches()
    return entries


def _serve(args: argparse.Namespace) -> int:
    from appliance.config import ConfigError, Settings
    from appliance.drivers import check_driver
    from appliance.errors import ApplianceError
    from appliance.supervisor.supervisor import serve

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"headless-meeting-bot: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    add_plugin_path()
    try:
        check_driver(settings.driver)
    except ApplianceError as exc:
        print(f"headless-meeting-bot: {exc.message}", file=sys.stderr)
        return 2

    on_ready = None
    if args.demo:
        from appliance.demo import start_demo_meeting

        on_ready = start_demo_meeting
    trio.run(lambda: serve(settings, on_ready=on_ready))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from appliance import doctor

    if args.probe_sdk:
        return doctor.probe_sdk()
    add_plugin_path()
    return doctor.main(probe=not args.quick)


def _worker(args: argparse.Namespace) -> int:
    from appliance.worker.main import main as worker_main

    return worker_main(args.fd, args.name, args.driver)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headless-meeting-bot",
        description="Send bots into Zoom meetings and stream what they hear.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the appliance (REST + WebSocket)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="also start a simulated demo meeting (sim driver only)",
    )
    serve.set_defaults(run=_serve)

    doctor = commands.add_parser(
        "doctor",
        help="check what the appliance needs on this host and say what to fix",
    )
    doctor.add_argument(
        "--quick",
        action="store_true",
        help="do not load the Zoom SDK in a child process to check its libraries",
    )
    # Internal: the child process that loads the SDK for the check above.
    doctor.add_argument("--probe-sdk", action="store_true", help=argparse.SUPPRESS)
    doctor.set_defaults(run=_doctor)

    worker = commands.add_parser(
        "worker", help="internal: one meeting's worker process, started by serve"
    )
    worker.add_argument("--fd", type=int, required=True)
    worker.add_argument("--name", required=True, help="for logs until it joins")
    worker.add_argument("--driver", required=True)
    worker.set_defaults(run=_worker)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))
