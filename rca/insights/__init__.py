"""Learning across incidents: measures over the incidents and postmortems rca holds.

| module | holds |
|---|---|
| `facts` | what a postmortem says that the measures count, kept in step with it |
| `report` | the insights report: its parts, and the definition of every measure |
| `measures` | computing the report for a date range, service and severity |
| `recurrence` | proposing which earlier postmortems a postmortem may repeat, and why |
| `recurrence_rates` | recurrence rate by service and failure mode, and the list |
| `digest` | what a window brought: incidents, postmortems, action items, recurrences |
| `digest_window` | a digest's window as people write it (`7d`, a date, a time) |
| `digest_render` | a digest as Markdown and as an HTML page |

May import: `rca.domain`, `rca.store`, `rca.drafting` (its failure-mode library), `rca.redaction`,
`rca.errors`.
"""
