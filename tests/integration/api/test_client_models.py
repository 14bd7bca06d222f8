"""The Python client's typed answers know every field the API documents: a field added to a
response schema and not to meshclient's TypedDict fails here, not in a user's type checker."""

from __future__ import annotations

from typing import Any

import pytest

import meshclient
from tests.integration.api.client import API, ApiClient

pytestmark = pytest.mark.integration

# The client's type of each answer, by the API's schema name where the two differ.
CLIENT_TYPES = {
    "Agent": meshclient.Agent,
    "AgentMetrics": meshclient.AgentMetrics,
    "AgentType": meshclient.AgentTypeDefinition,
    "AgentTypeCreate": meshclient.AgentTypeDefinition,
    "Approval": meshclient.Approval,
    "AuditEvent": meshclient.AuditEvent,
    "Budget": meshclient.Budget,
    "ConfidenceChange": meshclient.ConfidenceChange,
    "ConfidenceHistory": meshclient.ConfidenceHistory,
    "HistoryEntry": meshclient.HistoryEntry,
    "Key": meshclient.ApiKey,
    "KeyCreated": meshclient.CreatedKey,
    "MemoryItem": meshclient.MemoryItem,
    "MemoryPolicy": meshclient.MemoryPolicy,
    "ModelConfig": meshclient.ModelConfig,
    "Network": meshclient.Network,
    "NetworkConfig": meshclient.NetworkConfig,
    "PlannedSubtask": meshclient.PlannedSubtask,
    "Provider": meshclient.Provider,
    "Rating": meshclient.Rating,
    "ScoreParts": meshclient.ScoreParts,
    "Step": meshclient.Step,
    "Subtask": meshclient.Subtask,
    "Task": meshclient.Task,
    "TaskProgress": meshclient.TaskSummary,
    "TaskSummary": meshclient.TaskBrief,
    "ToolServer": meshclient.ToolServer,
    "Usage": meshclient.Usage,
    "Webhook": meshclient.Webhook,
}


@pytest.fixture
def schemas(client: ApiClient) -> dict[str, Any]:
    return client.get(f"{API}/openapi.json").get_json()["components"]["schemas"]


@pytest.mark.parametrize("schema", sorted(CLIENT_TYPES))
def test_the_clients_type_has_every_field_of_the_answer(
    schemas: dict[str, Any], schema: str
) -> None:
    typed = CLIENT_TYPES[schema]
    known = typed.__required_keys__ | typed.__optional_keys__

    missing = set(schemas[schema].get("properties", {})) - known

    assert not missing, f"meshclient.{typed.__name__} lacks {sorted(missing)} of {schema}"
