"""Small valid documents written for the tests, to copy and break."""

from __future__ import annotations

import copy
from typing import Any

_POSTMORTEM: dict[str, Any] = {
    "id": "pm-test-queue-2025",
    "incident_id": "inc-test-queue-2025",
    "title": "Order emails delayed by a stuck consumer group",
    "date": "2025-04-09",
    "severity": "SEV3",
    "services": ["notifications-worker", "kafka-events"],
    "summary": "Order confirmation emails arrived up to 50 minutes late. A consumer deploy "
    "added a synchronous template fetch per message, halving throughput.",
    "impact": "About 18,000 customers received confirmations late; no emails were lost.",
    "trigger": "Deploy of notifications-worker 4.2.0.",
    "root_causes": ["Per-message template fetch had no cache and no latency budget."],
    "contributing_factors": [
        {"text": "Consumer lag had no alert, only a dashboard.", "category": "monitoring"},
        {"text": "Load tests ran with a warm template cache.", "category": "process"},
    ],
    "causal_chain": [
        {"id": "n1", "kind": "root_cause", "text": "Template fetch per message"}
        | {"leads_to": ["n2"]},
        {"id": "n2", "kind": "trigger", "text": "4.2.0 deployed", "leads_to": ["n3"]},
        {"id": "n3", "kind": "symptom", "text": "Consumer lag grows to 2M", "leads_to": ["n4"]},
        {"id": "n4", "kind": "impact", "text": "Emails up to 50 minutes late", "leads_to": []},
    ],
    "detection": "A customer support ticket, 35 minutes in.",
    "resolution": "Rolled back to 4.1.3; lag drained in 15 minutes.",
    "timeline": [
        {"at": "2025-04-09T08:00:00Z", "text": "4.2.0 deployed"},
        {"at": "2025-04-09T08:35:00+02:00", "text": "Support ticket about late emails"},
    ],
    "action_items": [
        {
            "text": "Cache templates in the worker",
            "kind": "prevent",
            "priority": "must",
            "owner": "messaging",
            "status": "open",
        },
        {"text": "Alert on consumer lag above 10 minutes", "kind": "detect"},
    ],
    "lessons": {
        "went_well": ["Rollback took 3 minutes."],
        "went_wrong": ["Nobody was paged."],
        "lucky": [],
    },
    "tags": ["queue", "deploy"],
}

_INCIDENT: dict[str, Any] = {
    "id": "inc-test-queue-2025",
    "title": "Order emails delayed",
    "severity": "SEV3",
    "services": ["notifications-worker"],
    "started_at": "2025-04-09T08:01:00Z",
    "detected_at": "2025-04-09T08:36:00Z",
    "mitigated_at": "2025-04-09T08:55:00Z",
    "resolved_at": "2025-04-09T09:10:00Z",
    "summary": "Customers report late order emails.",
    "alerts": [
        {
            "id": "a1",
            "at": "2025-04-09T08:36:00Z",
            "source": "prometheus",
            "name": "ConsumerLagHigh",
            "labels": {"group": "order-emails"},
            "text": "lag 2,000,000 > 100,000",
        }
    ],
    "timeline": [
        {
            "id": "t1",
            "at": "2025-04-09T08:00:00Z",
            "kind": "deploy",
            "actor": "shipyard",
            "text": "notifications-worker 4.2.0 rolled out",
        }
    ],
    "logs": [
        {
            "id": "l1",
            "at": "2025-04-09T08:02:00Z",
            "source": "notifications-worker",
            "text": "WARN template fetch took 480ms",
        }
    ],
    "chat": [
        {"id": "c1", "at": "2025-04-09T08:40:00Z", "author": "oncall", "text": "lag is climbing"}
    ],
    "tags": ["queue"],
}


def postmortem_data(**changes: Any) -> dict[str, Any]:
    """A fresh copy of a valid postmortem document, with top-level changes applied."""
    data = copy.deepcopy(_POSTMORTEM)
    data.update(changes)
    return data


def incident_data(**changes: Any) -> dict[str, Any]:
    """A fresh copy of a valid incident document, with top-level changes applied."""
    data = copy.deepcopy(_INCIDENT)
    data.update(changes)
    return data
