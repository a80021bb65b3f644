"""The command line: ``headless-meeting-bot serve | worker | --version``."""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from appliance import __version__, logs

log = logging.getLogger(__name__)


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
