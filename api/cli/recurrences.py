"""`rca recurrences propose|list`: recurrence proposals from the command line, e.g. for the
history just imported (the service proposes them itself when a draft is finalized)."""

from __future__ import annotations

from typing import Annotated

import typer

from rca.cli.common import settings_of
from rca.domain.similar import SimilarHit
from rca.errors import InvalidArgument
from rca.insights.recurrence import propose_recurrences
from rca.store import Store
from rca.store.recurrences import recurrences_of
from retrieval.service import open_retrieval

recurrences_app = typer.Typer(
    help="Propose and list recurrences between postmortems.", no_args_is_help=True
)


@recurrences_app.command("propose")
def propose_command(
    ctx: typer.Context,
    postmortem_ids: Annotated[
        list[str] | None, typer.Argument(help="Postmortems to look for past ones of.")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every stored postmortem (e.g. after an import).")
    ] = False,
) -> int:
    """Search for past postmortems of the same failure as each given postmortem and store
    the proposals for a reviewer (decided links stay as they are). Needs the search index:
    run it after `rca import` (which indexes)."""
    ids = list(postmortem_ids or [])
    if every == bool(ids):
        raise InvalidArgument("name postmortem ids or give --all (not both)")
    settings = settings_of(ctx)
    store = Store.open(settings)
    retrieval = open_retrieval(settings, store)

    def similar(text: str, k: int) -> list[SimilarHit]:
        return retrieval.search.search(text, k=k).hits

    try:
        if every:
            ids = [pm.id for pm in reversed(store.list_postmortems())]
        added = sum(propose_recurrences(store, similar, ident) for ident in ids)
    finally:
        retrieval.close()
        store.close()
    typer.echo(f"proposed {added} new recurrence links over {len(ids)} postmortems")
    return 0


@recurrences_app.command("list")
def list_command(
    ctx: typer.Context,
    postmortem_id: Annotated[str, typer.Argument(help="A postmortem.")],
) -> int:
    """A postmortem's recurrence links (as the later one and as the past one)."""
    store = Store.open(settings_of(ctx))
    try:
        store.get_postmortem(postmortem_id)  # NotFound: one clear line
        found = recurrences_of(store.engine, postmortem_id)
    finally:
        store.close()
    for link in found:
        flag = "  FLAGGED: came back with fixes still open" if link.flagged else ""
        typer.echo(
            f"{link.postmortem_id} → {link.past_postmortem_id}  {link.state.value:<9}"
            f"  score {link.score:.3f}  {'; '.join(link.reasons)}{flag}"
        )
    if not found:
        typer.echo(f"no recurrence links for {postmortem_id}")
    return 0
