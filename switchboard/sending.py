"""One notification request, end to end: validate, claim, choose recipients, render, send, record.

The handler is an ``async def``: the bus rides it on the worker's event loop, ``concurrency``
sends in flight per process without a thread each (``in_flight``). Two round trips to Redis per
send besides the bus's own, both on the loop's asyncio connection: before the provider call, the
claim with the suppression and channel-state lookups, the per-recipient counts and the admission to a
provider (circuits and rate limits); after it, the record with its outcome event and the
provider's success for its circuit. The rarer steps (retries, suppressions, stopped channels,
failures for a circuit, waits for a provider's rate) use the blocking client on a thread.

Each channel sends through a chain of providers: a failure another provider may not have
(see ``failover``) goes on to the next one in the same attempt, each try recorded.

Outcomes map onto the bus: a passing provider failure raises ``RetryLater`` (the bus retries
with backoff, at least as long as the provider asked); what can never succeed is recorded,
announced (``<channel>_failed`` with a ``reason``) and raises ``Reject`` when an operator can
act on it (the bus keeps the job in its failed list, and ``switchboard deliveries retry``
sends it again once the cause is fixed); a provider's final "no" about a recipient is a
delivery outcome, recorded and announced, and that recipient alone is suppressed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bus import Bus, Reject, RetryLater
from bus.backend.connection import is_cluster
from bus.backoff import exponential
from bus.pipeline.rider import ride_in_progress
from switchboard import callbacks
from switchboard.addresses import address_of
from switchboard.admission import Admission, Candidate
from switchboard.channel_states import ChannelStates, Stopped, sender_scope, stopped_in
from switchboard.channels import Channel
from switchboard.circuits import CircuitChange, Circuits
from switchboard.consent import Consent, ConsentCheck
from switchboard.deliveries import Claim, Deliveries, Reason, Status, Suppressions, claim_of
from switchboard.digesting import Digester
from switchboard.errors import (
    AmbiguousProviderError,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    TemplateError,
    TransientProviderError,
)
from switchboard.events import EVENTS, InvalidNotification, Notification, SendEmail, SendPush, SendSms, parse_event
from switchboard.failover import Outcome, Try, circuit_failure, fails_over, outcome_of
from switchboard.in_flight import CallSlots
from switchboard.privacy import mask, mask_text, recipient_digest
from switchboard.providers import EmailMessage, Provider, ProviderResult, PushMessage, PushResult, SmsMessage
from switchboard.send_limits import Checked, SendLimits
from switchboard.settings import SwitchboardSettings
from switchboard.standing import RateWaits
from switchboard.templating import RenderedMessage, TemplateStore

log = logging.getLogger("switchboard.sending")

Message = EmailMessage | SmsMessage | PushMessage
PROBE_WAIT = 5.0
"""Seconds a send waits while another worker probes its stopped channel."""
INLINE_WAIT = 10.0
"""A send over its provider's rate waits in the worker for at most this long, in all (the
worker takes no more jobs than it has room for, so the rest wait in the queue, spending no
attempt); beyond that it goes back to the bus to wait there (a retry)."""
LONGEST_PAUSE = 0.5
"""The longest a waiting send sleeps before asking again: the pauses double from the wait the
provider's rate asked for, so many waiting sends ask a few times each, not all the time."""


@dataclass(slots=True)
class Request:
    """A validated notification and the identities it is tracked by."""

    notification: Notification
    channel: Channel
    request_id: str
    delivery_id: str
    attributes: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    """Recipients left out of the message because they are suppressed or over their limit (cc and bcc)."""
    rendered: RenderedMessage | None = None
    consent: Consent | None = None
    """Its category and whose preferences it depends on (None: no category, always sent)."""
    tries: list[Try] = field(default_factory=list)
    """Each provider's part in this attempt, in order (recorded with its outcome)."""
    answered: str | None = None
    """The provider whose answer counts as a success for its circuit, with the outcome's writes."""


class Sender:
    """Turns ``send_*`` events into provider calls, with every outcome recorded and announced."""

    def __init__(
        self,
        *,
        bus: Bus,
        settings: SwitchboardSettings,
        templates: TemplateStore,
        providers: Mapping[Channel, Sequence[Provider[Any]]],
        deliveries: Deliveries,
        suppressions: Suppressions,
        channel_states: ChannelStates,
        consent: ConsentCheck,
        digester: Digester,
        circuits: Circuits,
        limits: SendLimits,
        waits: RateWaits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.templates = templates
        self.providers = providers
        """Each channel's providers in failover order."""
        self.deliveries = deliveries
        self.suppressions = suppressions
        self.channel_states = channel_states
        self.consent = consent
        self.digester = digester
        self.circuits = circuits
        self.limits = limits
        self.waits = waits
        self.clock = clock
        self.calls = CallSlots(settings.concurrency)
        """``concurrency``: provider calls in flight (the worker rides a few more, see ``in_flight``)."""

    # --- the pipeline ------------------------------------------------------------
    async def handle(self, event_type: str, attributes: dict[str, Any], *, collect: bool = True) -> None:
        """The bus handler for one ``send_*`` event, on the worker's event loop (``collect=False``:
        a digest's own send)."""
        try:
            notification = parse_event(event_type, attributes)
        except InvalidNotification as exc:
            await asyncio.to_thread(self._invalid, event_type, attributes, exc)
            raise Reject(str(exc)) from None
        if await self._delay_until_due(notification, attributes):
            return
        # Only a digest template's event needs Redis here: the rest skip the thread hop.
        digest = collect and self.digester.is_digest(notification)
        if digest and await asyncio.to_thread(self.digester.collect, notification, attributes):
            return
        request = self._request(notification, attributes)
        request.consent = self.consent.of(notification)
        everyone = notification.all_recipients()
        digests = [recipient_digest(r) for r in everyone]
        hold = self.limits.hold_until(notification, attributes, self.clock())
        refusal = self.limits.country_refusal(notification)
        claim, suppressed, stopped, checked = await self._claim(request, digests, goes=hold is None and not refusal)
        handed_over = False
        try:
            if claim is Claim.DONE:
                log.info("delivery %s already decided; not sending again", request.delivery_id)
                return
            if claim is Claim.BUSY:
                raise RetryLater(
                    f"delivery {request.delivery_id} is being sent by another worker", self.deliveries.stale_after
                )
            if claim is Claim.CONFLICT:
                await self._conflict(request)
                return
            if request.consent is not None and request.consent.everyone_refused:
                await self._finish(request, Status.OPTED_OUT, error="the recipient opted out of this category")
                return
            if hold is not None:
                await asyncio.to_thread(self._hold, request, hold)
                return
            if checked is None:  # not held: refused for its country
                await self._finish(request, Status.FAILED, reason=Reason.COUNTRY, error=refusal)
                return
            if checked.refused:
                await asyncio.to_thread(self.limits.note_refused, checked)
            refused = {recipient_digest(r) for r in request.consent.refused} if request.consent else set()
            recipients = self._recipients(request, everyone, digests, suppressed | checked.limited | refused)
            if not recipients:
                if checked.limited:
                    await self._rate_limited(request, checked)
                else:
                    await self._finish(request, Status.SUPPRESSED, error="every recipient is suppressed")
                return
            probing = await self._wait_while_stopped(request, stopped)
            message = await self._message(request, recipients)
            handed_over = True
        finally:
            if not handed_over:
                await self._release_probe(checked)
        await self._send(request, message, probing, checked.admission)

    async def _release_probe(self, checked: Checked | None) -> None:
        """A send admitted as a recovering provider's probe that stopped before the provider call
        gives the probe back (another send probes at once)."""
        admission = checked.admission if checked is not None else None
        if admission is not None and admission.probe is not None and admission.provider is not None:
            await asyncio.to_thread(self.circuits.release_probe, admission.provider, admission.probe)

    async def _claim(
        self, request: Request, digests: list[str], *, goes: bool
    ) -> tuple[Claim, set[str], list[Stopped], Checked | None]:
        """Claim the delivery, and look up its recipients' suppressions, their preferences and its
        channel's state, and (for a send that ``goes`` now) count it per recipient and admit it to a
        provider, in one round trip."""
        n = request.notification
        scopes = self._scopes(request)
        looked_up = consent_at = consented = 0
        read: Callable[[list[Any]], Checked] | None = None

        def queue(pipe: Any) -> None:
            nonlocal looked_up, consent_at, consented, read
            self.deliveries.queue_claim(
                pipe,
                request.delivery_id,
                self.clock(),
                self._initial_record(request, digests),
                fingerprint=n.fingerprint(),
            )
            looked_up = len(pipe)
            self.suppressions.queue_lookup(pipe, request.channel, digests)
            self.channel_states.queue_lookup(pipe, scopes)
            consent_at = len(pipe)
            consented = self.consent.queue(pipe, request.consent, request.channel)
            if goes:
                read = self.limits.queue(pipe, n, request.delivery_id, n.all_recipients())

        replies = await self._round_trip(queue)
        request.consent = self.consent.answered(request.consent, replies[consent_at : consent_at + consented])
        suppressed = self.suppressions.found(digests, replies[looked_up])
        stopped = stopped_in(scopes, replies[looked_up + 1])
        return claim_of(replies[0]), suppressed, stopped, read(replies) if read is not None else None

    async def _round_trip(self, queue: Callable[[Any], None]) -> list[Any]:
        """The commands ``queue`` puts on a pipeline, sent on the loop's asyncio connection with
        those of the other sends in flight (on a cluster, the blocking client's pipeline on a
        thread: it routes commands across slots)."""
        if is_cluster(self.deliveries.redis):
            blocking = self.deliveries.redis.pipeline(transaction=False)
            queue(blocking)
            replies: list[Any] = await asyncio.to_thread(blocking.execute)
            return replies
        pipe = self.bus.async_redis.pipeline(transaction=False)
        queue(pipe)
        return await self.bus.round_trips.execute(pipe)

    def _scopes(self, request: Request) -> list[str]:
        """The channel states a request depends on: its channel, and for email its sender."""
        n = request.notification
        if isinstance(n, SendEmail):
            sender = address_of(n.from_ or self.settings.default_sender)
            return [request.channel.value, sender_scope(request.channel.value, sender)]
        return [request.channel.value]

    def _request(self, notification: Notification, attributes: dict[str, Any]) -> Request:
        request_id = notification.idempotency_key or str(attributes.get("bus_id") or "")
        if not request_id:
            raise Reject("the event has neither an idempotency_key nor a bus_id")
        channel = notification.CHANNEL
        return Request(notification, channel, request_id, f"{channel}:{request_id}", attributes)

    def _initial_record(self, request: Request, digests: list[str]) -> dict[str, str]:
        """The record's first fields; ``digests``: of ``all_recipients()``, in order (worked out once)."""
        n = request.notification
        everyone = n.all_recipients()
        return {
            "channel": request.channel.value,
            "template": n.template or "",
            "locale": n.locale or "",
            "recipients": ",".join(mask(r) for r in everyone),
            "recipient_digests": ",".join(digests),
            "request_id": request.request_id,
            "idempotency_key": n.idempotency_key or "",
            "bus_id": str(request.attributes.get("bus_id") or ""),
            "source": str(request.attributes.get("bus_app_hostname") or ""),
        }

    def _recipients(self, request: Request, everyone: list[str], digests: list[str], suppressed: set[str]) -> list[str]:
        """Who the message goes to: ``to`` without the suppressed (or opted-out) ones (nobody left: not
        sent), and for email cc and bcc without theirs (recorded as dropped)."""
        allowed = [r for r, d in zip(everyone, digests, strict=True) if d not in suppressed]
        request.dropped = [r for r, d in zip(everyone, digests, strict=True) if d in suppressed]
        addressed = set(request.notification.recipients())
        if not any(r in addressed for r in allowed):
            return []
        if request.dropped:
            log.info("delivery %s: %d suppressed recipient(s) left out", request.delivery_id, len(request.dropped))
        return allowed

    async def _wait_while_stopped(self, request: Request, stopped: list[Stopped]) -> list[str]:
        """The stopped scopes this send probes (their probe time came and this worker took the
        probe); a scope still stopped, or probed by another worker, makes the send wait."""
        probing: list[str] = []
        now = self.clock()
        for state in stopped:
            if now < state.probe_after:
                await self._retry_later(request, f"{state.scope} stopped: {state.reason}", state.probe_after - now)
            if not await asyncio.to_thread(self.channel_states.take_probe, state.scope):
                await self._retry_later(request, f"{state.scope} is being probed by another worker", PROBE_WAIT)
            probing.append(state.scope)
        return probing

    async def _delay_until_due(self, notification: Notification, attributes: dict[str, Any]) -> bool:
        """A ``send_at`` in the future: hand the event to delayed publish, same request id."""
        send_at = notification.send_at
        if send_at is None or send_at.timestamp() <= self.clock() or "bus_delayed_until" in attributes:
            return False
        fields = notification.to_attributes()
        fields.setdefault("idempotency_key", str(attributes.get("bus_id") or ""))
        await asyncio.to_thread(self.bus.publish_at, send_at, notification.EVENT_TYPE, fields)
        log.info("%s scheduled for %s", notification.EVENT_TYPE, send_at.isoformat())
        return True

    def _hold(self, request: Request, until: datetime) -> None:
        """Quiet hours: recorded ``held`` (not an attempt), then published again when they end."""
        n = request.notification
        now = self.clock()
        pipe = self.deliveries.redis.pipeline(transaction=False)
        self.deliveries.queue_finish(
            pipe,
            request.delivery_id,
            request.channel,
            now,
            Status.HELD.value,
            held_until=until.isoformat(),
            error=f"held through quiet hours ({self.settings.quiet_hours.window}) until {until.isoformat()}",
        )
        self.deliveries.queue_uncount(pipe, request.delivery_id)
        pipe.execute()
        fields = n.to_attributes()
        fields["idempotency_key"] = request.request_id
        self.bus.publish_at(until, n.EVENT_TYPE, fields)
        log.info("delivery %s held through quiet hours until %s", request.delivery_id, until.isoformat())

    async def _rate_limited(self, request: Request, checked: Checked) -> None:
        """Every recipient had their share of messages in the limit's window: refused, recorded."""
        limit = checked.limit
        shown = ", ".join(f"{c.recipient} ({c.count}/{c.limit})" for c in checked.refused)
        window = f"{limit.window:g} s" if limit is not None else "the window"
        scope = limit.scope if limit is not None else request.channel.value
        error = f"over the per-recipient limit of {scope} in {window}: {shown}"
        log.info("delivery %s: %s", request.delivery_id, error)
        await self._finish(request, Status.RATE_LIMITED, reason=Reason.RATE_LIMITED, error=error)

    # --- rendering -----------------------------------------------------------------
    async def _message(self, request: Request, recipients: list[str]) -> Message:
        n = request.notification
        unsubscribe_url = self.consent.unsubscribe_url(request.consent, request.channel)
        data = {**n.data, "unsubscribe_url": unsubscribe_url}
        try:
            rendered = self.templates.render(request.channel, n.template, data, n.locale) if n.template else None
        except TemplateError as exc:
            await self._finish(request, Status.STALLED, reason=Reason.TEMPLATE, error=str(exc))
            raise Reject(f"template: {exc}") from None
        request.rendered = rendered
        if isinstance(n, SendEmail):
            sender = n.from_ or self.settings.default_sender
            if not self.settings.sender_allowed(sender):
                error = f"sender {sender} is not allowed by the settings"
                await self._finish(request, Status.FAILED, reason=Reason.SENDER, error=error)
                raise Reject(f"sender {sender} is not allowed (see [switchboard] senders)")
            addressed = {str(a) for a in n.to}
            kept = set(recipients)
            return EmailMessage(
                to=[r for r in recipients if r in addressed],
                subject=(rendered.subject if rendered else n.subject) or "",
                text=rendered.text if rendered else n.text,
                html=rendered.html if rendered else n.html,
                from_email=sender,
                cc=[str(a) for a in n.cc if str(a) in kept],
                bcc=[str(a) for a in n.bcc if str(a) in kept],
                reply_to=str(n.reply_to) if n.reply_to else None,
                headers={**n.headers, **self.consent.headers(unsubscribe_url)},
                categories=list(n.categories),
                custom_args=callbacks.custom_args(request.delivery_id),
            )
        if isinstance(n, SendSms):
            return SmsMessage(
                to=recipients[0],
                body=(rendered.body if rendered else n.body) or "",
                status_callback=callbacks.status_callback(self.settings, request.delivery_id),
            )
        if not isinstance(n, SendPush):  # pragma: no cover - the three channels are all there are
            raise Reject(f"no message for {type(n).__name__}")
        return PushMessage(
            tokens=tuple(recipients) if n.to else (),
            topic=n.topic,
            title=rendered.title if rendered else n.title,
            body=rendered.body if rendered else n.body,
            data=dict(n.data_payload),
            image=n.image,
        )

    # --- sending -------------------------------------------------------------------
    async def _send(self, request: Request, message: Message, probing: list[str], admission: Admission) -> None:
        """Through the provider admitted; after a failure that allows it, on through the next ones
        of the channel's chain, in the same attempt."""
        chain = self.providers[request.channel]
        start, last = 0, None
        next_admission: Admission | None = admission
        while True:
            admitted = await self._admitted(request, start, next_admission)
            request.tries += [Try(name, Outcome.CIRCUIT_OPEN) for name in admitted.skipped]
            if not admitted.go:  # every circuit from ``start`` on is open
                if last is None:
                    await self._unavailable(request, admitted.wait)
                else:
                    await self._failed(request, *last, probing)
                return
            index = start + len(admitted.skipped)
            provider = chain[index]
            try:
                result = await self._call(request, provider, message)
            except ProviderError as exc:
                error = mask_text(str(exc), request.notification.all_recipients())
                request.tries.append(Try(provider.name, outcome_of(exc), error, exc.code))
                await asyncio.to_thread(self._judge, request, provider.name, exc, admitted.probe)
                last = (provider.name, exc)
                timeout_too = self.settings.channel(request.channel).failover_on_timeout
                if index + 1 < len(chain) and fails_over(exc, failover_on_timeout=timeout_too):
                    log.warning(
                        "delivery %s: %s failed (%s): trying the next provider",
                        request.delivery_id,
                        provider.name,
                        error,
                    )
                    start, next_admission = index + 1, None
                    continue
                await self._failed(request, provider.name, exc, probing)
                return
            request.tries.append(Try(provider.name, Outcome.SENT))
            if admitted.probe is None:
                self._answered(request, provider.name, None)  # no I/O: counted with the outcome's writes
            else:
                await asyncio.to_thread(self._answered, request, provider.name, admitted.probe)
            await self._resume(probing)
            await self._sent(request, provider.name, result)
            return

    async def _admitted(self, request: Request, start: int, admission: Admission | None) -> Admission:
        """The provider admitted from ``start`` on in the chain. Over its rate, the send waits here
        and asks again, each pause twice the last (jittered, so waiting sends spread out), up to
        INLINE_WAIT in all; then it goes back to the bus to wait there."""
        candidates = self.limits.candidates[request.channel][start:]
        if admission is None:
            admission = await asyncio.to_thread(self.limits.gate.admit, candidates)
        waited, waits = 0.0, 0
        while admission.verdict == "wait" and admission.provider is not None:
            pause = min(LONGEST_PAUSE, max(admission.wait, 0.005) * 2**waits) * random.uniform(1.0, 1.5)
            waits += 1
            if waited + pause > INLINE_WAIT:
                await asyncio.to_thread(self._wait_later, request, admission.provider, pause)
            waited += pause
            await asyncio.sleep(pause)
            admission = await asyncio.to_thread(self._readmit, admission.provider, candidates)
        return admission

    def _readmit(self, waited_for: str, candidates: Sequence[Candidate]) -> Admission:
        """Count the wait for ``waited_for``'s rate and ask for admission again, in one round trip."""
        pipe = self.deliveries.redis.pipeline(transaction=False)
        self.waits.queue_count(pipe, waited_for)
        token = self.limits.gate.queue_admit(pipe, candidates)
        return self.limits.gate.admission(candidates, token, pipe.execute()[-1])

    def _wait_later(self, request: Request, provider: str, delay: float) -> None:
        """Waited long enough here: back to the bus, waiting there, without spending an attempt."""
        error = f"{provider} is at its rate limit: waiting {delay:.2f}s"
        pipe = self.deliveries.redis.pipeline(transaction=False)
        self.waits.queue_count(pipe, provider)
        self.deliveries.queue_update(pipe, request.delivery_id, self.clock(), status=Status.RETRYING.value, error=error)
        self.deliveries.queue_uncount(pipe, request.delivery_id)
        pipe.execute()
        raise RetryLater(error, delay)

    async def _unavailable(self, request: Request, wait: float) -> None:
        channel = request.channel.value
        error = f"every {channel} provider's circuit is open (the first is probed in {wait:.1f}s)"
        await self._retry_later(request, error, wait, reason=Reason.PROVIDERS_UNAVAILABLE)

    def _judge(self, request: Request, provider: str, exc: ProviderError, probe: str | None) -> None:
        """What a failure means for the provider's circuit (shared by every worker)."""
        failed = circuit_failure(exc)
        if failed is None:
            return
        if not failed:
            self._answered(request, provider, probe)
            return
        alone = len(self.providers[request.channel]) == 1
        if isinstance(exc, ProviderConfigurationError) and alone and probe is None:
            return  # a channel of one provider stops (and is probed) on its own: see _stop
        self._announce(self.circuits.record_failure(provider, exc, probe))

    def _answered(self, request: Request, provider: str, probe: str | None) -> None:
        """The provider answered: a probe's answer closes its circuit now; any other counts as a
        success with the outcome's own writes."""
        if probe is not None:
            self._announce(self.circuits.record_success(provider, probe))
        else:
            request.answered = provider

    def _announce(self, change: CircuitChange | None) -> None:
        """``provider_circuit_opened`` / ``_closed``: published by the one caller that changed it."""
        if change is None or change.state not in ("opened", "closed"):
            return
        event = {"provider": change.provider, "state": change.state, "at": _iso(self.clock())}
        if change.reason:
            event["reason"] = change.reason
        self.bus.publish(f"provider_circuit_{change.state}", event)

    async def _failed(self, request: Request, provider: str, exc: ProviderError, probing: list[str]) -> None:
        """The attempt ends in ``provider``'s failure (no failover, or none left)."""
        error = mask_text(str(exc), request.notification.all_recipients())
        if isinstance(exc, AmbiguousProviderError):
            await self._resume(probing)  # the provider took the request: our configuration works
            await self._ambiguous(request, provider, error, exc.code)
        elif isinstance(exc, TransientProviderError):
            await self._retry_later(request, error, exc.retry_after or 0.0, code=exc.code)
        elif isinstance(exc, PermanentProviderError):
            await self._resume(probing)
            await self._refused(request, provider, exc)
        elif isinstance(exc, ProviderConfigurationError):
            if exc.sender or len(self.providers[request.channel]) == 1:
                await self._stop(request, provider, exc)
            else:  # its circuit is open: the next attempt goes through the other providers
                await self._retry_later(
                    request, f"configuration: {error}", 0.0, code=exc.code, reason=Reason.CONFIGURATION
                )

    async def _call(self, request: Request, provider: Provider[Any], message: Message) -> ProviderResult:
        """The provider call, in an OpenTelemetry CLIENT span when an SDK records (provider, channel,
        outcome, retry count: never a recipient or a secret)."""
        ride = ride_in_progress()
        attributes = {
            "switchboard.provider": provider.name,
            "switchboard.channel": request.channel.value,
            "switchboard.retry": ride.attempt if ride is not None else 0,
        }
        async with self.calls.slot():  # waiting for a slot is not part of the call's span
            with self.bus.tracer.client(f"{provider.name} send", attributes) as note:
                try:
                    result = await provider.asend(message)
                except AmbiguousProviderError:
                    note("switchboard.outcome", "unknown")
                    raise
                except TransientProviderError:
                    note("switchboard.outcome", "transient")
                    raise
                except PermanentProviderError:
                    note("switchboard.outcome", "refused")
                    raise
                except ProviderConfigurationError:
                    note("switchboard.outcome", "configuration")
                    raise
                note("switchboard.outcome", result.status)
                return result

    async def _refused(self, request: Request, provider: str, exc: PermanentProviderError) -> None:
        error = mask_text(str(exc), request.notification.all_recipients())
        if not exc.recipient_problem:
            await self._finish(
                request, Status.FAILED, reason=Reason.REFUSED, error=error, error_code=exc.code, provider=provider
            )
            raise Reject(f"{provider} refused the message: {error}")
        if exc.recipients:
            await asyncio.to_thread(self._suppress, request.channel, list(exc.recipients), error, exc.code)
        else:
            error += " (the provider did not say which recipient: nobody was suppressed)"
        await self._finish(
            request, Status.FAILED, reason=Reason.RECIPIENT, error=error, error_code=exc.code, provider=provider
        )

    async def _stop(self, request: Request, provider: str, exc: ProviderConfigurationError) -> None:
        """Our configuration was refused: stop the channel (or just the sender) until probed."""
        error = mask_text(str(exc), request.notification.all_recipients())
        scope = sender_scope(request.channel.value, exc.sender) if exc.sender else request.channel.value
        delay = self.settings.retry.configuration_delay
        if await asyncio.to_thread(self.channel_states.stop, scope, error, delay=delay, provider=provider):
            log.error(
                "%s STOPPED: %s refused our configuration: %s (probed again in %.0fs)", scope, provider, error, delay
            )
        await self._retry_later(request, f"configuration: {error}", delay, code=exc.code, reason=Reason.CONFIGURATION)

    async def _resume(self, probing: list[str]) -> None:
        for scope in probing:
            if await asyncio.to_thread(self.channel_states.resume, scope):
                log.warning("%s resumed: the provider accepted the probe", scope)

    async def _ambiguous(self, request: Request, provider: str, error: str, code: str | None) -> None:
        """The provider had the request but never answered: retried ``ambiguous_retries`` times at
        most (each may send a second copy), then recorded ``unknown``."""
        record = await asyncio.to_thread(self.deliveries.get, request.delivery_id)
        tries = int(record.fields.get("ambiguous", "0") or 0) if record else 0
        if tries >= self.settings.retry.ambiguous_retries:
            error = f"{error} (it may have been sent; not tried again, to send no second copy)"
            await self._finish(
                request, Status.UNKNOWN, reason=Reason.TIMEOUT, error=error, error_code=code, provider=provider
            )
            return
        await asyncio.to_thread(self.deliveries.update, request.delivery_id, self.clock(), ambiguous=tries + 1)
        await self._retry_later(request, f"{error} (it may have been sent: trying once more)", 0.0, code=code)

    async def _sent(self, request: Request, provider: str, result: ProviderResult) -> None:
        if isinstance(result, PushResult) and result.failed:
            await self._sent_in_part(request, provider, result)
            return
        await self._finish(
            request,
            Status.ACCEPTED,
            provider=provider,
            provider_message_id=result.message_id,
            segments=result.segments,
            clear=("error", "error_code", "reason", "code"),
        )

    async def _sent_in_part(self, request: Request, provider: str, result: PushResult) -> None:
        """A push some tokens refused: each token's outcome recorded, the gone ones suppressed,
        the ones that failed for a passing reason sent again as a follow-up of their own."""
        tokens = request.notification.all_recipients()
        if result.unregistered:
            unregistered = list(result.unregistered)
            await asyncio.to_thread(
                self._suppress, request.channel, unregistered, "unregistered device token", "UNREGISTERED"
            )
        if result.retry_targets:
            await asyncio.to_thread(self._retry_push_targets, request, result)
        targets = [
            {
                "target": mask(o.target),
                "outcome": _push_outcome(o.target, result),
                "error": mask_text(str(o.error), tokens),
            }
            if o.error is not None
            else {"target": mask(o.target), "outcome": "accepted"}
            for o in result.outcomes
        ]
        error = "; ".join(mask_text(str(o.error), tokens) for o in result.failed)
        status = Status.PARTIAL if result.delivered else Status.FAILED
        await self._finish(
            request,
            status,
            provider=provider,
            provider_message_id=result.message_id,
            reason=Reason.RECIPIENT if not result.delivered else None,
            error=error,
            targets=targets,
        )

    def _retry_push_targets(self, request: Request, result: PushResult) -> None:
        """Tokens that failed for a passing reason get a follow-up request of their own."""
        if not isinstance(request.notification, SendPush):
            return
        follow_up = request.notification.model_copy(
            update={"to": list(result.retry_targets), "idempotency_key": f"{request.request_id}:retry"}
        )
        delay = result.retry_after or self.settings.retry.base_delay
        self.bus.publish_in(delay, SendPush.EVENT_TYPE, follow_up.to_attributes())

    async def _retry_later(
        self, request: Request, error: str, delay: float, code: str | None = None, reason: Reason | None = None
    ) -> None:
        """Try again later (after at least ``delay``), or give up once the attempt budget is spent."""
        record = await asyncio.to_thread(self.deliveries.get, request.delivery_id)
        attempts = record.attempts if record else 1
        retry = self.settings.retry
        if attempts > retry.max_retries:
            await self._finish(
                request,
                Status.STALLED,
                reason=reason or Reason.RETRIES_EXHAUSTED,
                error=f"gave up after {attempts} attempts: {error}",
                error_code=code,
            )
            raise Reject(f"gave up after {attempts} attempts: {error}")
        backoff = exponential(retry.base_delay, attempts, retry.max_delay)
        await asyncio.to_thread(
            self.deliveries.finish,
            request.delivery_id,
            request.channel,
            self.clock(),
            Status.RETRYING.value,
            error=error,
            error_code=code,
            tries=_stored([t.to_json() for t in request.tries]) if request.tries else None,
        )
        raise RetryLater(error, max(delay, backoff))

    def _suppress(self, channel: Channel, recipients: list[str], reason: str, code: str | None) -> None:
        for recipient in recipients:
            self.suppressions.add(channel, recipient_digest(recipient), mask(recipient), reason, self.clock(), code)
            log.info("suppressed %s on %s: %s", mask(recipient), channel, reason)

    # --- what cannot be sent as given ---------------------------------------------------
    def _invalid(self, event_type: str, attributes: dict[str, Any], exc: InvalidNotification) -> None:
        """An event that does not fit its schema (from a publisher without our client): recorded
        and announced with every bad field, so whoever published it learns of it."""
        model = EVENTS.get(event_type)
        if model is None:
            return
        key = attributes.get("idempotency_key")
        idempotency_key = key if isinstance(key, str) and 0 < len(key) <= 200 else None
        request_id = idempotency_key or str(attributes.get("bus_id") or "")
        if not request_id:
            return
        delivery_id = f"{model.CHANNEL}:{request_id}"
        now = self.clock()
        initial = {
            "channel": model.CHANNEL.value,
            "request_id": request_id,
            "idempotency_key": idempotency_key or "",
            "bus_id": str(attributes.get("bus_id") or ""),
            "source": str(attributes.get("bus_app_hostname") or ""),
        }
        if self.deliveries.claim(delivery_id, now, initial, fingerprint="invalid") is not Claim.NEW:
            return  # redelivered: recorded and announced already
        event = {
            "delivery_id": delivery_id,
            "request_id": request_id,
            "idempotency_key": idempotency_key,
            "bus_id": attributes.get("bus_id"),
            "status": Status.FAILED.value,
            "reason": Reason.INVALID.value,
            "error": str(exc),
            "errors": exc.errors,
            "finished_at": _iso(now),
        }

        def record(pipe: Any) -> None:
            self.deliveries.queue_finish(
                pipe, delivery_id, model.CHANNEL, now, Status.FAILED.value, reason=Reason.INVALID, error=str(exc)
            )

        self.bus.publish_with(record, f"{model.CHANNEL}_failed", {k: v for k, v in event.items() if v is not None})

    async def _conflict(self, request: Request) -> None:
        """The idempotency key was used before for another message: this one is not sent."""
        bus_id = str(request.attributes.get("bus_id") or "")
        conflict = Request(
            request.notification,
            request.channel,
            request.request_id,
            f"{request.delivery_id}:conflict:{bus_id}",
            request.attributes,
        )
        await asyncio.to_thread(
            self.deliveries.claim,
            conflict.delivery_id,
            self.clock(),
            self._initial_record(conflict, [recipient_digest(r) for r in request.notification.all_recipients()]),
            fingerprint="conflict",
        )
        error = f"idempotency key {request.request_id!r} was used before for a different message; not sent"
        log.warning("delivery %s: %s", request.delivery_id, error)
        await self._finish(conflict, Status.FAILED, reason=Reason.IDEMPOTENCY_CONFLICT, error=error)

    # --- recording and announcing ------------------------------------------------------
    async def _finish(self, request: Request, status: Status, **fields: Any) -> None:
        """Record the outcome and announce it, in one round trip."""
        now = self.clock()
        outcome = "sent" if status in (Status.ACCEPTED, Status.PARTIAL) else "failed"
        n = request.notification
        rendered = request.rendered
        if rendered is not None:
            fields.setdefault("rendered_locale", rendered.locale)
            fields.setdefault("template_version", rendered.version)
        if request.dropped:
            fields["dropped_recipients"] = [mask(r) for r in request.dropped]
        if request.tries:
            fields["tries"] = [t.to_json() for t in request.tries]
        event: dict[str, Any] = {
            "delivery_id": request.delivery_id,
            "request_id": request.request_id,
            "idempotency_key": n.idempotency_key,
            "bus_id": request.attributes.get("bus_id"),
            "status": status.value,
            "reason": fields.get("reason"),
            "template": n.template,
            "category": request.consent.category if request.consent else None,
            "locale": fields.get("rendered_locale") or n.locale,
            "template_version": fields.get("template_version"),
            "recipients": [mask(r) for r in n.all_recipients()],
            "dropped_recipients": fields.get("dropped_recipients"),
            "provider": fields.get("provider"),
            "provider_message_id": fields.get("provider_message_id"),
            "targets": fields.get("targets"),
            "tries": fields.get("tries"),
            "error": fields.get("error"),
            "error_code": fields.get("error_code"),
            "finished_at": _iso(now),
        }
        stored = {k: _stored(v) for k, v in fields.items()}

        answered = request.answered

        def record(pipe: Any) -> None:
            self.deliveries.queue_finish(pipe, request.delivery_id, request.channel, now, status.value, **stored)
            if answered is not None:
                self.circuits.queue_success(pipe, answered)

        await self.bus.apublish_with(
            record, f"{request.channel}_{outcome}", {k: v for k, v in event.items() if v not in (None, [], "")}
        )


def _push_outcome(target: str, result: PushResult) -> str:
    if target in result.unregistered:
        return "unregistered"
    if target in result.unknown:
        return "unknown"
    if target in result.retry_targets:
        return "retried"
    return "failed"


def _stored(value: Any) -> Any:
    """A field as a record stores it (lists and dicts as JSON text; ``clear`` passes through)."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat()
