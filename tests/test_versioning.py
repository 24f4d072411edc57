import hashlib

from whyops_local.domain.versioning import version_hash


def test_it_matches_the_hosted_hash_of_the_protocol_example():
    assert version_hash({"systemPrompt": "sys", "tools": []}) == "b2639e885c7f4daca9d6a14ec612bb5a"


def test_it_orders_keys_as_the_hosted_service_and_keeps_non_ascii():
    metadata = {
        "description": "Gère les commandes",
        "tools": [{"description": "Look up", "outputSchema": "{}", "name": "search_orders", "inputSchema": '{"a":1}'}],
        "systemPrompt": "Tu es précis.",
    }
    canonical = (
        '{"systemPrompt":"Tu es précis.",'
        '"tools":[{"name":"search_orders","inputSchema":"{\\"a\\":1}","outputSchema":"{}","description":"Look up"}],'
        '"description":"Gère les commandes"}'
    )
    assert version_hash(metadata) == hashlib.sha256(canonical.encode()).hexdigest()[:32]


def test_it_leaves_absent_tool_fields_out():
    with_nulls = {"systemPrompt": "s", "tools": [{"name": "t", "description": None}]}
    assert version_hash(with_nulls) == version_hash({"systemPrompt": "s", "tools": [{"name": "t"}]})
    assert version_hash(with_nulls) != version_hash({"systemPrompt": "s", "tools": [{"name": "t", "description": ""}]})


def test_the_richest_matching_definition_wins_then_the_newest():
    from whyops_local.domain.versioning import Definitions, definition, said_prompt, said_tools

    thin = definition("thin", 4, "Be brief.", [{"name": "a"}, {"name": "b"}])
    rich = definition("rich", 3, "Be brief.", [{"name": "a", "description": "x", "inputSchema": "{}"}, {"name": "b"}])
    other = definition("other", 5, "Be brief.", [{"name": "a"}])
    known = Definitions([thin, rich, other])
    assert known.match("Be brief.", frozenset({"b", "a"})) == "rich"
    assert known.match("Be brief.", None) == "rich"  # the call left its tools out
    assert known.match(None, frozenset({"a"})) == "other"
    assert known.match("Be brief.", frozenset({"a", "c"})) is None  # a real change
    assert known.match(None, None) is None
    assert said_prompt("  ") is None and said_tools([]) is None and said_tools(["a", {"name": "b"}]) == {"a", "b"}
