"""The Litestar application: explicit controllers, one guard, one error shape, a lifespan that
owns the engine and the Redis client."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from distnet.benefits.routes import BenefitController, PointsController
from distnet.calendar.routes import CalendarController
from distnet.cards.routes import CardController
from distnet.closure.routes import ClosureController
from distnet.commissions.routes import CommissionController
from distnet.console.routes import console_router
from distnet.console.web import console_aware, template_config
from distnet.db import make_engine, make_sessionmaker, replica_set, resolve_database_url, resolve_redis_url
from distnet.events.routes import WebhookController
from distnet.keys.routes import KeyController, KeyRecoveryController
from distnet.kit import pg
from distnet.kit.auth import authorize
from distnet.kit.contract import publish
from distnet.kit.http import DEPENDENCIES
from distnet.kit.logs import request_id_middleware
from distnet.kit.metrics import record_request
from distnet.kit.problems import EXCEPTION_HANDLERS
from distnet.kit.retry import retry_middleware
from distnet.kit.unit_of_work import close_sessions_middleware
from distnet.ledger.routes import LedgerController
from distnet.network.routes import DistributorController
from distnet.notifications.routes import NotificationController
from distnet.ops import OpsController
from distnet.orders.routes import OrderController, SellerOrderController
from distnet.payout_accounts.routes import PayoutAccountController
from distnet.payouts.routes import PayoutRunController, RepaymentController
from distnet.personal_data.routes import PersonalDataController
from distnet.profile.routes import ProfileController
from distnet.ranks.routes import RankController
from distnet.reports.routes import ReportController
from distnet.risk.routes import CONTROLLERS as RISK_CONTROLLERS
from distnet.settings import Settings, get_settings
from distnet.settlement.routes import SettlementController
from distnet.tax.routes import TaxController

CONTROLLERS: list[type] = [
    OpsController,
    DistributorController,
    CardController,
    SettlementController,
    PayoutRunController,
    RepaymentController,
    PayoutAccountController,
    TaxController,
    ReportController,
    WebhookController,
    OrderController,
    SellerOrderController,
    PersonalDataController,
    KeyController,
    KeyRecoveryController,
    CommissionController,
    LedgerController,
    RankController,
    BenefitController,
    PointsController,
    *RISK_CONTROLLERS,
    NotificationController,
    ClosureController,
    ProfileController,
    CalendarController,
]


def create_app(
    settings: Settings | None = None, *, database_url: str | None = None, redis_url: str | None = None
) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db_url = database_url or resolve_database_url(settings)
        engine = make_engine(
            db_url, pool_size=settings.database.pool_size, time_zone=settings.business.time_zone
        )
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # the same pool, for reads marked AUTOCOMMIT (kit/unit_of_work): no BEGIN, no COMMIT
        app.state.autocommit_sessionmaker = make_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # a pool whose statements use generic plans, each statement its own transaction unless
        # the handler opens one (kit/unit_of_work ONE_STATEMENT: the single order)
        one_statement = make_engine(
            db_url,
            pool_size=settings.database.pool_size,
            time_zone=settings.business.time_zone,
            generic_plans=True,
        )
        pg.share_outages(engine, one_statement)
        app.state.one_statement_sessionmaker = make_sessionmaker(
            one_statement.execution_options(isolation_level="AUTOCOMMIT")
        )
        app.state.replicas = replica_set(settings)
        app.state.settings = settings
        app.state.redis = aioredis.from_url(redis_url or resolve_redis_url(settings))
        try:
            yield
        finally:
            await app.state.redis.aclose()
            if app.state.replicas is not None:
                await app.state.replicas.dispose()
            await one_statement.dispose()
            await engine.dispose()

    app = Litestar(
        route_handlers=[*CONTROLLERS, console_router(), _docs_assets()],
        dependencies=DEPENDENCIES,
        before_request=authorize,  # the role check (kit/auth), before dependencies and body
        exception_handlers=console_aware(dict(EXCEPTION_HANDLERS)),
        template_config=template_config(settings),
        middleware=[
            functools.partial(request_id_middleware, done=record_request),  # ids, access metrics
            retry_middleware,
            close_sessions_middleware,
        ],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="distnet", version="1", path="/schema", render_plugins=[_swagger()]
        ),
        request_max_body_size=8 * 1024 * 1024,
        # logging is kit.logs' (structlog, JSON lines with the request id): Litestar's default
        # configuration would replace the root handler with its own queue handler and format
        logging_config=None,
    )
    publish(app)
    return app


_ASSETS = "/schema/assets"


def _docs_assets():
    """Swagger UI's files, served from the ``swagger-ui-py`` package: the docs work offline and
    the page loads nothing from another host. Under /schema, which the role guard leaves public."""
    import swagger_ui

    static = Path(swagger_ui.__file__).parent / "static"
    return create_static_files_router(
        path=_ASSETS, directories=[static], include_in_schema=False, opt={"public": True}
    )


def _swagger() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        path="/swagger",
        js_url=f"{_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{_ASSETS}/favicon-32x32.png'>",
    )
