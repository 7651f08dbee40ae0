"""Providers and limits: each provider's circuit (reset by hand once its cause is fixed), its
rate limit and the sends that waited for it; each per-recipient limit and whom it refused lately.

Recipients are shown masked, as stored; provider settings never show a credential.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import dashboard_of
from bus.web.confirm import confirm_page, confirmed
from switchboard.standing import chained, provider_standings, recipient_limits, refused_recipients
from switchboard.web.board import Board, board_of


def providers_context(board: Board) -> dict[str, Any]:
    settings = board.settings
    standings = provider_standings(settings, board.deliveries.redis, board.deliveries.keys)
    limits = refused_recipients(recipient_limits(settings, board.templates), board.recipient_limits)
    return {
        "title": "Providers and limits",
        "providers": [s.to_json() for s in standings],
        "limits": [{"limit": limit, "refused": refused} for limit, refused in limits],
        "burst": settings.rate_limits.burst,
        "chains": {c.value: list(settings.provider_chain(c)) for c in settings.live_channels()},
        "failover_on_timeout": {c.value: settings.channel(c).failover_on_timeout for c in settings.live_channels()},
        "quiet_hours": settings.quiet_hours,
        "allowed_countries": settings.sms.allowed_countries,
    }


async def providers(request: Request) -> Response:
    context = await run_in_threadpool(providers_context, board_of(request))
    return dashboard_of(request).render(request, "sb_providers.html", context)


async def reset(request: Request) -> Response:
    board, dash = board_of(request), dashboard_of(request)
    form = await request.form()
    provider = str(form.get("provider") or "")
    back = str(request.url_for("sb_providers").path)
    if provider not in chained(board.settings):
        return dash.redirect(request, back, flash="No channel sends through that provider.", level="error")
    if not confirmed(form):
        return confirm_page(
            dash,
            request,
            form,
            title=f"Close the circuit of {provider}?",
            message=f"Every worker sends through {provider} again at once, without waiting for a probe.",
            details=["Do it once the cause (credentials, an outage) is fixed."],
            button="Close the circuit",
            cancel=back,
        )
    await run_in_threadpool(board.circuits.reset, provider)
    return dash.redirect(request, back, flash=f"The circuit of {provider} is closed.")


ROUTES = [
    Route("/switchboard/providers", providers, name="sb_providers"),
    Route("/switchboard/providers/reset", reset, methods=["POST"], name="sb_providers_reset"),
]
