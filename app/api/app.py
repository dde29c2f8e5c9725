"""The ASGI application: GraphQL (HTTP and websockets), health probes, the dashboard at `/`,
and the process runtime.

`create_app` builds everything from settings; the lifespan migrates and connects the
database, starts the event bus and, when embedded, the engine, and stops them in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from tortoise.connection import get_connection

from app.api.body_limit import BodySizeLimit
from app.api.prometheus import metrics
from app.api.schema import build_schema
from app.api.view import GraphQLView
from app.bootstrap import build_runtime, engine_running
from app.core.heap import freeze_long_lived
from app.core.settings import Settings
from app.db.config import close_db, init_db, migrate_db
from app.services.backtests import BacktestRunner
from app.web.dashboard import dashboard_mount

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await get_connection("default").execute_query("SELECT 1")
    except Exception:  # any failure means "not ready"; the reason goes to the log only
        logger.warning("not ready: the database does not answer", exc_info=True)
        return JSONResponse({"status": "unavailable", "database": "unavailable"}, 503)
    return JSONResponse({"status": "ready", "database": "ok"})


def create_app(settings: Settings, *, migrate: bool = True, freeze_heap: bool = False) -> Starlette:
    """The app; `freeze_heap`: once started, what its process holds is frozen out of the
    garbage collector's passes (`app.core.heap`: a process's entry point asks for it)."""
    runtime = build_runtime(settings)
    view = GraphQLView(build_schema(settings), runtime)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Each part is stopped in reverse, also when a later one fails to start: a left-open
        # database connection (aiosqlite's thread) would keep the failed process from exiting.
        async with AsyncExitStack() as started:
            started.push_async_callback(close_db)
            if migrate:
                await migrate_db(settings.database_url)
                await close_db()
            await init_db(settings.database_url)
            started.push_async_callback(runtime.bus.stop)
            await runtime.bus.start()
            if runtime.llm is not None:
                started.push_async_callback(runtime.llm.close)
            runtime.backtests = BacktestRunner(
                runtime.bus,
                settings.backtest_concurrency,
                lease_seconds=settings.backtest_lease_seconds,
            )
            started.push_async_callback(runtime.backtests.close)
            await runtime.backtests.start()
            if settings.engine == "embedded":
                engine = await started.enter_async_context(engine_running(runtime))
                logger.info("engine embedded; market data source: %s", engine.market.source)
            if freeze_heap:
                logger.info("%d long-lived objects frozen", freeze_long_lived())
            yield

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            dashboard_mount(),
        ],
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
