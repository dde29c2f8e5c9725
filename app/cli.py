"""`traders`: serve the API, migrate the database, manage users, record market data."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from app.core.settings import Settings, SettingsError, load_settings
from app.db.config import close_db, init_db, migrate_db


def _with_db(settings: Settings, work: Callable[[], Awaitable[None]]) -> Coroutine[Any, Any, None]:
    async def run() -> None:
        await migrate_db(settings.database_url)
        await close_db()
        await init_db(settings.database_url)
        try:
            await work()
        finally:
            await close_db()

    return run()


def serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from app.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level.lower(),
        ws_ping_interval=20,
        ws_max_size=settings.max_body_bytes,
        ws_per_message_deflate=settings.ws_per_message_deflate,
    )


def engine(settings: Settings, args: argparse.Namespace) -> None:
    """The engine on its own, beside API processes that run with TRADERS_ENGINE=off."""
    from app.bootstrap import build_runtime, engine_running

    async def work() -> None:
        runtime = build_runtime(settings)
        await runtime.bus.start()
        try:
            async with engine_running(runtime) as running:
                logging.getLogger(__name__).info("engine running on %s", running.market.source)
                await asyncio.Event().wait()
        finally:
            await runtime.bus.stop()
            if runtime.llm is not None:
                await runtime.llm.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_with_db(settings, work))


def migrate(settings: Settings, args: argparse.Namespace) -> None:
    async def run() -> None:
        await migrate_db(settings.database_url)
        await close_db()

    asyncio.run(run())
    print(f"database is up to date: {settings.database_url}")


def user_create(settings: Settings, args: argparse.Namespace) -> None:
    from app.services.users import UserExistsError, create_user

    async def work() -> None:
        try:
            user, token = await create_user(args.name)
        except (UserExistsError, ValueError) as exc:
            raise SystemExit(f"error: {exc}") from None
        print(f"created user {user.name} (id {user.id}); its API token, shown only once:")
        print(token)

    asyncio.run(_with_db(settings, work))


def user_token(settings: Settings, args: argparse.Namespace) -> None:
    from app.db.models import User
    from app.services.users import issue_token

    async def work() -> None:
        user = await User.get_or_none(name=args.name)
        if user is None:
            raise SystemExit(f"error: no user {args.name!r}")
        print(await issue_token(user, args.label))

    asyncio.run(_with_db(settings, work))


def data_download(settings: Settings, args: argparse.Namespace) -> None:
    from app.engine.feeds.download import download_candles

    asyncio.run(
        download_candles(
            exchange=args.exchange,
            symbols=args.symbols,
            interval=args.interval,
            since=args.since,
            directory=args.directory,
        )
    )


def schema(settings: Settings, args: argparse.Namespace) -> None:
    from app.api.schema import build_schema

    print(build_schema(settings).as_str())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traders", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the API (and the embedded engine)")
    serve_parser.add_argument("--host", help="default: TRADERS_HOST or 127.0.0.1")
    serve_parser.add_argument("--port", type=int, help="default: TRADERS_PORT or 8000")
    serve_parser.set_defaults(handler=serve)

    commands.add_parser(
        "engine", help="run the engine alone (API processes with TRADERS_ENGINE=off)"
    ).set_defaults(handler=engine)
    commands.add_parser("migrate", help="apply pending migrations").set_defaults(handler=migrate)
    commands.add_parser("schema", help="print the GraphQL schema (SDL)").set_defaults(
        handler=schema
    )

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True
    )
    create = user.add_parser("create", help="create a user and print its API token once")
    create.add_argument("name")
    create.set_defaults(handler=user_create)
    token = user.add_parser("token", help="issue another API token for a user")
    token.add_argument("name")
    token.add_argument("--label", default="cli")
    token.set_defaults(handler=user_token)

    data = commands.add_parser("data", help="market data files").add_subparsers(
        dest="data_command", required=True
    )
    download = data.add_parser("download", help="record candles from an exchange to CSV")
    download.add_argument("--exchange", default="binance")
    download.add_argument("--symbols", nargs="+", required=True)
    download.add_argument("--interval", default="1h")
    download.add_argument("--since", required=True, help="ISO date, e.g. 2024-01-01")
    download.add_argument("--directory", default="data/candles")
    download.set_defaults(handler=data_download)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args.handler(settings, args)


if __name__ == "__main__":
    main()
