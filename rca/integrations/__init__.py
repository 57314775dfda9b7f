"""What other tools send, turned into rca's own records: pure translations with no I/O.

| tool | module | becomes |
|---|---|---|
| Alertmanager webhook (version 4) | `alertmanager` | alerts of one notification group |
| PagerDuty v3 webhook | `pagerduty` | an incident opened, timeline events, its resolution |
| GitHub `deployment_status` webhook | `github` | a change event (a deploy) |
| Slack export or `conversations.history` | `slack` | chat messages |
| signatures (PagerDuty, GitHub) | `signatures` | a verified body, or a refusal |
| (shared) | `text` | untrusted text made one clipped line; plain http(s) links |

Storing what they produce, and deciding which incident it belongs to, is the store's and the
API's work (`rca.store.integrations`, `api.routes_hooks`).
"""
