"""Outbound webhook senders: threads that post due messages from the outbox to subscribers.

A sender claims a few due messages (a lease, so another sender leaves them alone), posts each
signed the Standard Webhooks way (`webhook-id`: the message's id, the same on every attempt;
`webhook-timestamp`: this attempt's time; `webhook-signature`: `v1,` HMAC-SHA256 of
`{id}.{timestamp}.{body}`) and records what came of it: a 2xx answer delivers it; any other
answer, a redirect (never followed), a timeout or a refused connection schedules the next
attempt after a backoff (`WebhookOutbox.mark_failed`). Only the first KiB of an answer is read,
for the error shown to admins. Proxy variables of the environment are ignored: a receiver is
reached directly. A sender asked to stop gives back the messages it claimed but had not sent.

Senders run in each server process and in `rca worker` (`RCA_OUTBOUND__SENDERS` each); the
claims make any number of them safe together. Given a digest schedule, a sender also queues
each period's `digest.ready` event when the period ends (`api.digest_schedule`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine

from api import metrics
from api.digest_schedule import DigestSchedule
from rca.config import OutboundSettings
from rca.errors import RcaError
from rca.integrations.signatures import standard_webhook_headers, webhook_secret_key
from rca.store.webhooks import Claim, DeliveryState, RetryPolicy, Webhooks

log = logging.getLogger("rca.webhooks")

BATCH = 10
"""Messages one sender claims at a time."""
MAX_ANSWER_BYTES = 1_024
"""How much of a receiver's answer is read (for the error an admin sees)."""
USER_AGENT = "rca-webhooks/0.1"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _shown(raw: bytes) -> str:
    """A receiver's answer as a short, printable excerpt."""
    text = raw.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in text).strip()[:200]


class WebhookSender:
    """Claims due messages and posts them until stopped; `clock` is the time it goes by."""

    def __init__(
        self,
        webhooks: Webhooks,
        settings: OutboundSettings,
        name: str,
        clock: Callable[[], datetime] = _utc_now,
        batch: int = BATCH,
        digests: DigestSchedule | None = None,
    ) -> None:
        self.webhooks = webhooks
        self.digests = digests
        self.settings = settings
        self.name = name
        self.clock = clock
        self.batch = batch
        # A claim outlasts the slowest batch: connect, send and answer may each take the
        # timeout.
        self.lease = timedelta(seconds=batch * (3 * settings.timeout_s + 1) + 10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    def run_once(self) -> int:
        """Queue the digest if a period just ended, then send the messages due now (one
        batch); how many were claimed."""
        if self.digests is not None:
            try:
                self.digests.tick(self.clock())
            except Exception:  # a digest that cannot be made must not hold up deliveries
                log.exception("webhook sender %s: the digest could not be queued", self.name)
        claims = self.webhooks.claim_due(self.clock(), self.batch, self.lease)
        for index, claim in enumerate(claims):
            if self._stop.is_set():
                self.webhooks.release(claims[index:], self.clock())
                break
            self.send(claim)
        return len(claims)

    def send(self, claim: Claim) -> bool:
        """Post one claimed message and record the outcome; True if it was delivered."""
        delivery = claim.delivery
        body = delivery.payload.encode("utf-8")
        status: int | None = None
        try:
            stamp = int(self.clock().timestamp())
            headers = standard_webhook_headers(
                webhook_secret_key(claim.secret), delivery.id, stamp, body
            )
            headers["content-type"] = "application/json"
            status, answer = self._post(claim.url, body, headers)
        except httpx.TimeoutException:
            error = f"no answer within {self.settings.timeout_s:g} s"
        except httpx.ConnectError as err:
            error = f"cannot connect: {err}"[:300]
        except httpx.HTTPError as err:
            error = f"request failed: {type(err).__name__}: {err}"[:300]
        except RcaError as err:  # a stored secret that is not one
            error = str(err)
        else:
            if 200 <= status < 300:
                self.webhooks.mark_delivered(claim, status, self.clock())
                metrics.webhook_delivery("delivered")
                log.info("webhook %s delivered (HTTP %d)", delivery.id, status)
                return True
            error = f"HTTP {status}" + (f": {answer}" if answer else "")
            if 300 <= status < 400:
                error += " (redirects are not followed)"
        failed = self.webhooks.mark_failed(claim, error, status, self.clock())
        dead = failed is not None and failed.state == DeliveryState.DEAD
        metrics.webhook_delivery("dead" if dead else "failed")
        if failed is not None:
            log.warning(
                "webhook %s to subscription %s failed (attempt %d, %s): %s",
                delivery.id,
                delivery.subscription_id,
                failed.attempts,
                failed.state.value,
                error,
            )
        return False

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """The answer's status and the start of its body, read no further than needed."""
        deadline = time.monotonic() + self.settings.timeout_s
        with self._client.stream("POST", url, content=body, headers=headers) as response:
            read = b""
            for chunk in response.iter_raw(MAX_ANSWER_BYTES):
                read += chunk
                if len(read) >= MAX_ANSWER_BYTES or time.monotonic() > deadline:
                    break
            return response.status_code, _shown(read[:MAX_ANSWER_BYTES])

    def loop(self) -> None:
        """Send due messages until `stop` is called; wait `poll_s` when none are due."""
        while not self._stop.is_set():
            try:
                if self.run_once() < self.batch:
                    self._stop.wait(self.settings.poll_s)
            except Exception:  # the store was briefly unavailable, say: keep going
                log.exception("webhook sender %s: loop error", self.name)
                self._stop.wait(self.settings.poll_s)

    def start(self) -> None:
        """Run the loop on a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.loop, name=self.name, daemon=True)
        self._thread.start()

    def ask_to_stop(self) -> None:
        """Ask the loop to stop (it finishes the message it is sending), without waiting."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to stop (it finishes the message it is sending) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3 * self.settings.timeout_s + 5 if timeout is None else timeout)
            self._thread = None

    def close(self) -> None:
        """Stop, and close the HTTP connections."""
        self.stop()
        self._client.close()


class WebhookSenders:
    """The webhook senders of one process (`settings.senders` of them)."""

    def __init__(
        self, engine: Engine, settings: OutboundSettings, digests: DigestSchedule | None = None
    ) -> None:
        webhooks = Webhooks(engine, RetryPolicy.of(settings))
        prefix = f"{socket.gethostname()}-{os.getpid()}-webhooks"
        digests = digests if digests is not None and digests.on else None
        self.running = [
            WebhookSender(webhooks, settings, f"{prefix}-{n + 1}", digests=digests)
            for n in range(settings.senders)
        ]

    def start(self) -> None:
        """Start every sender."""
        for sender in self.running:
            sender.start()
        if self.running:
            log.info("this process runs %d webhook sender(s)", len(self.running))

    def stop(self) -> None:
        """Stop every sender (each gives back what it had claimed but not sent)."""
        for sender in self.running:
            sender.ask_to_stop()  # all at once, then wait for each
        for sender in self.running:
            sender.close()
