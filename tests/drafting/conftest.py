"""Fixtures of the drafting tests: a scripted model behind litellm's real custom-provider path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rca.llm import ScriptedModel, register_provider
from rca.testing import fake_analyst


@pytest.fixture
def fake() -> Iterator[ScriptedModel]:
    model = ScriptedModel(reply=fake_analyst)
    register_provider("fake", model)
    yield model
