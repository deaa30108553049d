"""Linkage with 110 and peer hotlines (issue 16, section 3; docs/INTEGRATIONS.md, "Partners").

- `registry`: the partners (code, endpoint, shared secret, categories taken and sent, ack minutes);
- `inbound`: a partner's signed transfer becomes a ticket through the intake writer, once per incident id;
- `outbound`: the engine subscriber that sends our transfers and reports back to the partner that sent a ticket,
  through the outbox (channel ``partner``, `notify.partner.PartnerSender`, retried by the worker);
- `callbacks`: a partner's acknowledgement and results onto the ticket's timeline, each recorded once;
- `deadlines`: an unacknowledged transfer warns, then escalates (called by the worker's pass).
"""

from __future__ import annotations

from minsheng.config import Settings
from minsheng.notify.channels import Sender
from minsheng.notify.partner import PARTNER, PartnerSender
from minsheng.services.partners.outbound import PartnerReporter
from minsheng.services.partners.registry import resolver
from minsheng.services.ticket_core import EngineCore
from minsheng.storage.db import Database


def install(engine: EngineCore, senders: dict[str, Sender], db: Database, settings: Settings) -> None:
    """Plug the partners into a platform being built: the engine subscriber and the outbox sender."""
    engine.subscribers.append(PartnerReporter())
    senders[PARTNER] = PartnerSender(resolver(db), timeout=settings.send_timeout_seconds)
