import pytest

from whyops_local.domain.versioning import version_hash
from whyops_local.models import Agent, AgentVersion

pytestmark = pytest.mark.django_db

SUPPORT = {"systemPrompt": "You are a precise customer support assistant.", "tools": []}


def _init(client, body, path="/api/entities/init", **headers):
    return client.post(path, body, content_type="application/json", headers=headers)


def test_it_creates_an_agent_with_201_and_all_four_fields(client):
    response = _init(client, {"agentName": "support", "metadata": SUPPORT})
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["status"] == "created"
    assert set(body) >= {"agentId", "agentVersionId", "status", "versionHash"}
    assert len(body["versionHash"]) == 32
    assert Agent.objects.get(name="support").id == body["agentId"]


def test_the_same_metadata_again_is_existing_with_200(client):
    first = _init(client, {"agentName": "support", "metadata": SUPPORT}).json()
    again = _init(client, {"agentName": "support", "metadata": SUPPORT})
    assert again.status_code == 200
    assert again.json()["status"] == "existing"
    assert again.json()["agentVersionId"] == first["agentVersionId"]


def test_changed_metadata_makes_a_new_version_and_old_metadata_reuses_the_old_one(client):
    v1 = _init(client, {"agentName": "a", "metadata": SUPPORT}).json()
    v2 = _init(client, {"agentName": "a", "metadata": {**SUPPORT, "systemPrompt": "changed"}})
    assert v2.status_code == 201 and v2.json()["agentVersionId"] != v1["agentVersionId"]
    back = _init(client, {"agentName": "a", "metadata": SUPPORT})
    assert back.status_code == 200
    assert back.json()["agentVersionId"] == v1["agentVersionId"]
    assert list(AgentVersion.objects.filter(agent__name="a").order_by("seq").values_list("seq", flat=True)) == [1, 2]


def test_tools_without_schemas_or_description_are_accepted(client):
    response = _init(client, {"agentName": "a", "metadata": {"systemPrompt": "s", "tools": [{"name": "search"}]}})
    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/proxy/v1/agents/init", "/proxy/agents/init", "/api//entities/init"])
def test_the_fallback_and_double_slash_paths_answer_the_same(client, path):
    response = _init(client, {"agentName": "a", "metadata": SUPPORT}, path=path)
    assert response.status_code == 201
    assert response.json()["versionHash"] == version_hash(SUPPORT)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": SUPPORT}, "agentName"),
        ({"agentName": "", "metadata": SUPPORT}, "agentName"),
        ({"agentName": "x" * 256, "metadata": SUPPORT}, "agentName"),
        ({"agentName": "a"}, "metadata"),
        ({"agentName": "a", "metadata": {"tools": []}}, "metadata.systemPrompt"),
        ({"agentName": "a", "metadata": {"systemPrompt": 3}}, "metadata.systemPrompt"),
        ({"agentName": "a", "metadata": {"systemPrompt": "s", "tools": [{"description": "d"}]}}, "metadata.tools.0.name"),
        ({"agentName": "a", "metadata": {"systemPrompt": "s", "tools": [{"name": "t", "inputSchema": {"type": "object"}}]}},
         "metadata.tools.0.inputSchema"),
        ({"agentName": "a", "metadata": {"systemPrompt": "s", "tools": [{"name": "t", "inputSchema": "{nope"}]}},
         "metadata.tools.0.inputSchema"),
    ],
)
def test_bad_registrations_name_the_field_and_store_nothing(client, body, field):
    response = _init(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "Validation failed"
    assert field in [d["field"] for d in response.json()["details"]]
    assert not Agent.objects.exists()


def test_with_a_server_key_a_request_without_it_gets_401(client, settings):
    settings.WHYOPS_API_KEY = "YOPS-secret"
    assert _init(client, {"agentName": "a", "metadata": SUPPORT}).status_code == 401
    assert _init(client, {"agentName": "a", "metadata": SUPPORT}, Authorization="Bearer wrong").status_code == 401
    assert _init(client, {"agentName": "a", "metadata": SUPPORT}, Authorization="Bearer YOPS-secret").status_code == 201
    assert _init(client, {"agentName": "b", "metadata": SUPPORT}, **{"X-API-Key": "YOPS-secret"}).status_code == 201
