"""Review: a reviewer's decisions on a draft's suggestions, and finalizing it into a postmortem.

- `decisions`: accept, edit or reject one suggestion against the draft version it was made on
  (`Reviews`), with the audit trail; finalizing a draft into a new postmortem revision.

May import: `rca.domain`, `rca.redaction` (finalized postmortems are redacted), `rca.store`,
`rca.drafting` (the blameless check and the content rules of suggestions), `rca.errors`.
"""

from rca.review.decisions import Reviews

__all__ = ["Reviews"]
