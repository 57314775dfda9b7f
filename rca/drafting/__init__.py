"""Drafting: an incident in, a draft of checked, cited suggestions out.

The pipeline (`pipeline.Drafter`) runs its stages in order; each stage lives in one module:

- `findings`: what code establishes before any model is asked (candidate triggers, first
  errors, candidate conditions and chain steps, the merged timeline);
- `evidence`: which evidence a model sees within a token budget, digests of past postmortems;
- `context`: the prompt context the questions share; `questions`: the questions and the answer
  schemas the model fills in;
- `checks` and `validation`: an answer turned into supported claims, or dropped with a reason;
  `steering` and `links`: what no suggestion may hold (links and domains in any form, asking
  to hand over credentials or disable a safeguard, words to the model or the report's writer);
- `proposals`: candidate factors and actions once the root causes are drafted, from the
  remediation library (`remedies`, data in `remedies.yaml`), measured gaps and past incidents
  (`precedents`);
- `asking`: the questions asked, stage by stage; `compose`: the draft composed from the checked
  claims or their fallbacks, `action_plan`: its factors and actions, linked to the causes;
- `assembly`: claims into suggestions and the causal chain; `followups`: unfinished actions of
  similar past incidents; `blameless`: blaming language flagged; `baseline`: the retrieval-only
  drafter that every model must beat.

May import: `rca.domain`, `rca.llm`, `rca.redaction`, `rca.ports`, `rca.errors`, `prompts`.
Never the store or an index: history comes in through the `History` port.
"""

from rca.drafting.context import DraftingOptions
from rca.drafting.pipeline import PROMPT, Drafter, Progress

__all__ = ["PROMPT", "Drafter", "DraftingOptions", "Progress"]
