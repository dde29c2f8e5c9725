"""`traders`: serve the API, migrate the database, manage users, record market data,
backtest a trader."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from app.core.settings import Settings, SettingsError, load_settings
from app.db.config import close_db, init_db, migrate_db

if TYPE_CHECKING:
    from app.domain.trader_spec import TraderSpec

BAR_WIDTH = 40


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
    from app.services.first_run import applies_to

    host, port = args.host or settings.host, args.port or settings.port
    if args.demo:
        if settings.feed not in ("auto", "simulated"):
            raise SystemExit(f"error: --demo runs on the simulated feed, not {settings.feed}")
        settings = settings.model_copy(update={"feed": "simulated"})
    if applies_to(settings.database_url):
        asyncio.run(_with_db(settings, lambda: _welcome(settings, host, port, demo=args.demo)))
    elif args.demo:
        print("no demo traders added (not on SQLite): sign in with a user's token")
    uvicorn.run(
        create_app(settings, freeze_heap=True),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        ws_ping_interval=20,
        ws_max_size=settings.max_body_bytes,
        ws_per_message_deflate=settings.ws_per_message_deflate,
    )


async def _welcome(settings: Settings, host: str, port: int, demo: bool) -> None:
    """On a first run of the embedded database, create the local user (and the demo
    traders) and print the sign-in link; a deployment on PostgreSQL skips this step."""
    from app.core.events import InProcessEventBus
    from app.services.first_run import first_run, sign_in_link
    from app.services.traders import TraderManager

    created = await first_run(settings.database_url, TraderManager(InProcessEventBus()), demo)
    if created is None:
        if demo:
            print("no demo traders added (users exist): sign in with a user's token")
        return
    made = f" and {len(created.traders)} demo traders" if created.traders else ""
    print(f"created the local user {created.user.name!r}{made}")
    print("sign in to the dashboard with this link (it holds the token, shown only once):")
    print(f"  {sign_in_link(host, port, created.token)}", flush=True)


def engine(settings: Settings, args: argparse.Namespace) -> None:
    """The engine on its own, beside API processes that run with TRADERS_ENGINE=off."""
    from app.bootstrap import build_runtime, engine_running
    from app.core.heap import freeze_long_lived

    async def work() -> None:
        runtime = build_runtime(settings)
        await runtime.bus.start()
        try:
            async with engine_running(runtime) as running:
                log = logging.getLogger(__name__)
                log.info("engine running on %s", running.market.source)
                log.info("%d long-lived objects frozen", freeze_long_lived())
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


def _progress_bar(out: TextIO) -> Callable[[int, int], Awaitable[None]]:
    """A one-line progress bar on `out`, redrawn at each new percent."""
    shown = -1

    async def draw(done: int, total: int) -> None:
        nonlocal shown
        percent = done * 100 // total if total else 100
        if percent != shown:
            shown = percent
            bar = "#" * (percent * BAR_WIDTH // 100)
            out.write(f"\r[{bar:<{BAR_WIDTH}}] {percent:3d}% {done}/{total} closes")
            if done == total:
                out.write("\n")
            out.flush()

    return draw


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SystemExit(f"error: {path}: {exc.strerror}") from None


def _backtest_spec(settings: Settings, args: argparse.Namespace) -> TraderSpec:
    """The trader a `traders backtest` names: saved, a template, or filter files."""
    from app.domain.trader_spec import RiskSettings, TraderSpec
    from app.domain.trader_templates import TEMPLATES
    from app.services.backtests import draft_spec

    if args.template is not None:
        if args.template not in TEMPLATES:
            raise SystemExit(f"error: no template {args.template!r}; known: {', '.join(TEMPLATES)}")
        return draft_spec(TEMPLATES[args.template].render(), 0)
    if args.filter is not None:
        return TraderSpec(
            id=uuid.uuid4(),
            owner_id=0,
            name=Path(args.filter).stem,
            interval=args.interval or "1h",
            filter_code=_read(args.filter),
            exit_filter_code=_read(args.exit_filter) if args.exit_filter else "",
            risk=RiskSettings(stop_loss=args.stop_loss, take_profit=args.take_profit),
        )
    from app.db.models import Trader
    from app.services.repositories.traders import spec_of

    found: list[TraderSpec] = []

    async def read() -> None:
        row = await Trader.get_or_none(id=args.trader)
        if row is not None:
            found.append(spec_of(row))

    asyncio.run(_with_db(settings, read))
    if not found:
        raise SystemExit(f"error: no trader {args.trader}")
    return found[0]


def backtest(settings: Settings, args: argparse.Namespace) -> None:
    from app.domain.backtest import BacktestInputError, summary_rows
    from app.domain.enums import BacktestAnalysis
    from app.engine.assembly import fill_model
    from app.engine.backtest.job import BacktestRequest, run_backtest
    from app.engine.feeds.download import to_epoch_ms

    spec = _backtest_spec(settings, args)
    fees = fill_model(settings)
    try:
        start, end = to_epoch_ms(args.from_), to_epoch_ms(args.to)
    except ValueError as exc:
        raise SystemExit(f"error: --from and --to take ISO dates or times: {exc}") from None
    try:
        request = BacktestRequest(
            trader=spec,
            start=start,
            end=end,
            data=args.data or settings.backtest_data,
            symbols=tuple(args.symbols or ()),
            interval=args.interval,
            balance=args.balance or settings.demo_balance,
            fill_model=dataclasses.replace(
                fees,
                taker_fee=fees.taker_fee if args.taker_fee is None else args.taker_fee,
                maker_fee=fees.maker_fee if args.maker_fee is None else args.maker_fee,
            ),
            analysis=BacktestAnalysis(args.analysis),
        )
        document = asyncio.run(
            run_backtest(request, progress=_progress_bar(sys.stderr), workers=args.workers)
        )
    except BacktestInputError as exc:
        raise SystemExit(f"error: {exc.field}: {exc}") from None
    rows = summary_rows(document)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for reason in document["errors"].values():
        print(f"the trader stopped: {reason}")
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=1))
        print(f"result written to {args.json}")
    if args.plot:
        from app.engine.backtest.plot import plot_equity

        plot_equity(document, args.plot, title=f"backtest {args.from_} to {args.to}")
        print(f"equity curve drawn to {args.plot}")
    if document["errors"]:
        sys.exit(1)


def schema(settings: Settings, args: argparse.Namespace) -> None:
    from app.api.schema import build_schema

    print(build_schema(settings).as_str())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traders", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the API (and the embedded engine)")
    serve_parser.add_argument("--host", help="default: TRADERS_HOST or 127.0.0.1")
    serve_parser.add_argument("--port", type=int, help="default: TRADERS_PORT or 8000")
    serve_parser.add_argument(
        "--demo",
        action="store_true",
        help="on the simulated feed; on a first run also start a few demo traders",
    )
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

    run = commands.add_parser(
        "backtest", help="replay a trader over recorded candles, on the live stage code"
    )
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--trader", type=uuid.UUID, help="a saved trader's id")
    which.add_argument("--template", help="a strategy template's key")
    which.add_argument("--filter", help="a file of filter code (a trader of its own)")
    run.add_argument("--exit-filter", help="with --filter: a file of exit filter code")
    run.add_argument("--stop-loss", type=Decimal, help="with --filter: percent")
    run.add_argument("--take-profit", type=Decimal, help="with --filter: percent")
    run.add_argument("--from", dest="from_", required=True, help="ISO date or time (UTC)")
    run.add_argument("--to", required=True, help="ISO date or time (UTC)")
    run.add_argument("--data", help="replay directory (default: TRADERS_BACKTEST_DATA)")
    run.add_argument("--symbols", nargs="+", help="instead of the trader's own")
    run.add_argument("--interval", help="instead of the trader's own")
    run.add_argument("--balance", type=Decimal, help="default: TRADERS_DEMO_BALANCE")
    run.add_argument(
        "--taker-fee", type=Decimal, help="a fraction (default: TRADERS_DEMO_TAKER_FEE)"
    )
    run.add_argument(
        "--maker-fee", type=Decimal, help="a fraction (default: TRADERS_DEMO_MAKER_FEE)"
    )
    run.add_argument(
        "--analysis",
        choices=["rules", "filter"],
        default="rules",
        help="what decides on each signal: the rule engine, or none (filter: every signal "
        "entered with the trader's stop loss and take profit)",
    )
    run.add_argument("--workers", type=int, default=2, help="sandbox worker processes")
    run.add_argument("--json", help="write the full result document to this file")
    run.add_argument("--plot", help="draw the equity curve, trades marked, to this PNG")
    run.set_defaults(handler=backtest)
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
