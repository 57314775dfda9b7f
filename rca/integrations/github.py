"""GitHub `deployment_status` webhooks: a deploy that happened becomes a change event.

GitHub names the event in the `X-GitHub-Event` header and sends `deployment_status`,
`deployment`, `repository` and `sender` in the body; unknown keys are dropped, missing or
malformed required ones are a pydantic ValidationError naming the field (e.g.
`deployment.sha`).

Which deployment states are recorded:

| state | action | why |
|---|---|---|
| success | change | the new version is live |
| failure, error | change | a failed deploy may have half-rolled out, and is often the trigger |
| pending, queued, in_progress | ignore | nothing has changed yet; the final state will follow |
| inactive | ignore | an older deploy superseded by a newer one, which is recorded itself |

The `ping` event (sent when the webhook is set up) and every other event are ignored, with
the reason. The service is the repository's name unless the deployment's `payload` object has
a string `service`. Everything GitHub sends is untrusted text: kept as data (links are not
followed), stripped of control characters and clipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rca.domain.values import Timestamp
from rca.integrations.text import clip, http_url, line

SUMMARY_CHARS = 1_000
"""A change summary longer than this is clipped."""
NAME_CHARS = 100
"""A service, environment, ref or login longer than this is clipped."""
URL_CHARS = 2_000
"""A link longer than this is dropped (a clipped link would point somewhere else)."""
RECORDED_STATES = frozenset({"success", "failure", "error"})
"""Deployment states that are recorded as a change."""

# ---------------------------------------------------------------------------------------------
# The payload, as GitHub sends it


class _Lenient(BaseModel):
    """What another tool sends: frozen once read, unknown keys dropped (tools add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


_Id = Annotated[int, Field(ge=0, le=2**63 - 1)]


class GitHubUser(_Lenient):
    """A GitHub account (a person, a bot or an app)."""

    login: str | None = None
    """The account's handle."""


class GitHubDeploymentStatus(_Lenient):
    """One state a deployment reached."""

    id: _Id
    """GitHub's id of this status."""
    state: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    """pending, queued, in_progress, success, failure, error or inactive."""
    environment: str | None = None
    """The environment deployed to."""
    target_url: str | None = None
    """A link added to the status (older name of `log_url`)."""
    log_url: str | None = None
    """A link to the deployment's output."""
    environment_url: str | None = None
    """A link to the deployed environment."""
    description: str | None = None
    """A short description of the state."""
    created_at: Timestamp
    """When the state was reached."""
    creator: GitHubUser | None = None
    """Who set the state."""


class GitHubDeployment(_Lenient):
    """The deployment the status belongs to."""

    id: _Id
    """GitHub's id of the deployment."""
    sha: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{7,64}$")]
    """The commit deployed (hex)."""
    ref: str | None = None
    """The branch, tag or sha asked for."""
    environment: str | None = None
    """The environment deployed to."""
    description: str | None = None
    """A short description of the deployment."""
    payload: dict[str, Any] | str | None = None
    """Whatever the deployer attached (an object, or a string in older deployments)."""
    url: str | None = None
    """The deployment in GitHub's API."""
    created_at: Timestamp | None = None
    """When the deployment was created."""
    creator: GitHubUser | None = None
    """Who created the deployment."""


class GitHubRepository(_Lenient):
    """The repository deployed from."""

    full_name: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
    ]
    """`owner/name`."""
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
    """The repository's name."""


class DeploymentStatusPayload(_Lenient):
    """The body of a `deployment_status` delivery."""

    action: str | None = None
    """`created`."""
    deployment_status: GitHubDeploymentStatus
    """The state reached."""
    deployment: GitHubDeployment
    """The deployment it belongs to."""
    repository: GitHubRepository
    """The repository deployed from."""
    sender: GitHubUser | None = None
    """Who caused the delivery."""


# ---------------------------------------------------------------------------------------------
# What rca makes of it


@dataclass(frozen=True)
class GitHubChange:
    """One GitHub delivery, translated: a change event to record, or why it is ignored."""

    action: Literal["change", "ignore"]
    """record a change event, or ignore the delivery."""
    reason: str | None = None
    """Why the delivery is ignored; None otherwise."""
    external_id: str | None = None
    """`github:<owner/name>:<deployment id>:<status id>`; the same on every redelivery."""
    kind: Literal["deploy"] = "deploy"
    """What kind of change this is."""
    service: str | None = None
    """The service changed: the deployment payload's `service`, else the repository name."""
    at: datetime | None = None
    """When the deployment reached the state (with its offset)."""
    summary: str | None = None
    """One line: what was deployed where, and how it ended."""
    version: str | None = None
    """The commit sha deployed (the ref when there is no sha)."""
    link: str | None = None
    """An http(s) link to the deploy's output or the deployment, kept as data, never fetched."""
    actor: str | None = None
    """Who deployed: the status creator, else the sender, else the deployment's creator."""
    state: str | None = None
    """The deployment state recorded: success, failure or error."""
    environment: str | None = None
    """The environment deployed to."""


def translate(
    payload: Mapping[str, Any] | str | bytes | DeploymentStatusPayload, event_header: str
) -> GitHubChange:
    """What to do with one delivery (the parsed or raw JSON body), given its `X-GitHub-Event`
    header; ValidationError when a `deployment_status` body is malformed."""
    event = event_header.strip().lower()
    if event == "ping":
        return GitHubChange(action="ignore", reason="ping: GitHub checking the webhook")
    if event != "deployment_status":
        name = line(event_header, NAME_CHARS) or "(none)"
        return GitHubChange(action="ignore", reason=f"event {name} is not used")
    if isinstance(payload, DeploymentStatusPayload):
        body = payload
    elif isinstance(payload, str | bytes):
        body = DeploymentStatusPayload.model_validate_json(payload)
    else:
        body = DeploymentStatusPayload.model_validate(payload)
    status, deployment = body.deployment_status, body.deployment
    state = status.state.strip().lower()
    if state not in RECORDED_STATES:
        reason = f"deployment state {line(state, NAME_CHARS)} is not a finished deploy"
        return GitHubChange(action="ignore", reason=reason)
    environment = line(status.environment or deployment.environment, NAME_CHARS)
    return GitHubChange(
        action="change",
        external_id=f"github:{body.repository.full_name}:{deployment.id}:{status.id}",
        service=_service(body),
        at=status.created_at,
        summary=_summary(body, state, environment),
        version=line(deployment.sha, NAME_CHARS) or line(deployment.ref, NAME_CHARS),
        link=_first_url(status.target_url, status.log_url, deployment.url),
        actor=_actor(body),
        state=state,
        environment=environment,
    )


def _service(body: DeploymentStatusPayload) -> str:
    extra = body.deployment.payload
    named = extra.get("service") if isinstance(extra, dict) else None
    if isinstance(named, str):
        service = line(named, NAME_CHARS)
        if service:
            return service
    return body.repository.name


def _summary(body: DeploymentStatusPayload, state: str, environment: str | None) -> str:
    deployment = body.deployment
    ref = line(deployment.ref, NAME_CHARS)
    sha = line(deployment.sha[:7], 7)
    what = f"{ref} ({sha})" if ref and ref != deployment.sha else (sha or "a commit")
    summary = f"Deployed {what} to {environment or 'an unnamed environment'}: {state}"
    description = line(body.deployment_status.description or deployment.description, 800)
    if description:
        summary += f" - {description}"
    return clip(summary, SUMMARY_CHARS)


def _actor(body: DeploymentStatusPayload) -> str | None:
    for user in (body.deployment_status.creator, body.sender, body.deployment.creator):
        login = line(user.login, NAME_CHARS) if user else None
        if login:
            return login
    return None


def _first_url(*values: str | None) -> str | None:
    """The first http(s) link as sent; others (other schemes, spaces, too long) are skipped."""
    return next((url for value in values if (url := http_url(value, URL_CHARS))), None)
