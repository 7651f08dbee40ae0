"""``switchboard hooks``: the providers' webhooks (delivery status, inbound SMS) in, ``provider_status`` events out.

Importing this package needs nothing beyond the switchboard; the ASGI app (``hooks.app``)
needs the web extra (Starlette, uvicorn).
"""
