"""The bus pages' routes, one module per page group."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bus.web.routes import apps, delayed, failed, login, ops, overview, queues


def bus_routes() -> list[BaseRoute]:
    return [*overview.ROUTES, *apps.ROUTES, *queues.ROUTES, *failed.ROUTES, *delayed.ROUTES, *ops.ROUTES, *login.ROUTES]
