"""Credentials: the right one goes upstream, none is ever stored; provider headers are forwarded."""

import anthropic
import httpx
import openai
import pytest

from .proxy_fixtures import read_trace
from .servers import ON_POSTGRES, run_server, shared_services_env

MESSAGES = [{"role": "user", "content": "hi"}]


def stored_bytes(server) -> bytes:
    if ON_POSTGRES:  # every row of every table, as text
        import psycopg

        with psycopg.connect(shared_services_env(server.data_dir)["DATABASE_URL"]) as db:
            tables = [name for name, in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            return b"".join(row.encode() for table in tables for row, in db.execute(f'SELECT t::text FROM "{table}" t'))
    files = [server.sqlite_path, server.sqlite_path.with_name(server.sqlite_path.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_the_clients_own_key_goes_upstream_and_is_never_stored(proxied, fake, trace_id):
    openai_key, anthropic_key = "sk-proj-SECRET-openai-0123456789", "sk-ant-SECRET-anthropic-0123456789"
    api = openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key=openai_key, organization="org-1", project="proj-1",
                        default_headers={"X-Trace-ID": trace_id, "X-Agent-Name": "creds"})
    api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    sent = fake.requests[-1].headers
    assert sent["authorization"] == f"Bearer {openai_key}"
    assert (sent["openai-organization"], sent["openai-project"]) == ("org-1", "proj-1")
    assert not {"x-trace-id", "x-agent-name"} & set(sent)
    claude = anthropic.Anthropic(base_url=proxied.proxy, api_key=anthropic_key,
                                 default_headers={"X-Trace-ID": trace_id, "anthropic-beta": "context-1m-2025-08-07"})
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=10, messages=MESSAGES) as stream:
        stream.until_done()
    sent = fake.requests[-1].headers
    # current Anthropic SDKs send the key as a bearer token, older ones as x-api-key
    assert anthropic_key in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    assert sent["anthropic-beta"] == "context-1m-2025-08-07" and sent["anthropic-version"]
    assert len(read_trace(proxied, trace_id, 4)["events"]) == 4
    stored = stored_bytes(proxied)
    assert b"SECRET" not in stored
    assert b"[redacted]" in stored


@pytest.fixture(scope="module")
def keyed(fake_upstream, tmp_path_factory):
    env = {"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1", "WHYOPS_ANTHROPIC_BASE_URL": fake_upstream.url,
           "OPENAI_API_KEY": "sk-SERVER-openai", "ANTHROPIC_API_KEY": "sk-SERVER-anthropic",
           "WHYOPS_API_KEY": "whyops-local-key"}
    with run_server(tmp_path_factory.mktemp("whyops-keyed"), env=env) as running:
        yield running


def test_the_servers_keys_replace_the_clients_and_whyops_api_key_is_required(keyed, fake, trace_id):
    api = openai.OpenAI(base_url=f"{keyed.proxy}/v1", api_key="whyops-local-key", default_headers={"X-Trace-ID": trace_id})
    api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-SERVER-openai"
    claude = anthropic.Anthropic(base_url=keyed.proxy, api_key="whyops-local-key")
    claude.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=MESSAGES)
    assert fake.requests[-1].headers["x-api-key"] == "sk-SERVER-anthropic"
    assert "authorization" not in fake.requests[-1].headers
    refused = httpx.post(f"{keyed.proxy}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES},
                         headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    stored = stored_bytes(keyed)
    assert b"SERVER" not in stored and b"whyops-local-key" not in stored


@pytest.fixture(scope="module")
def keyed_without_provider_keys(fake_upstream, tmp_path_factory):
    env = {"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1", "WHYOPS_API_KEY": "whyops-local-key"}
    with run_server(tmp_path_factory.mktemp("whyops-keyed-bare"), env=env) as running:
        yield running


@pytest.mark.parametrize("authorization", ["Bearer whyops-local-key", "bearer whyops-local-key",
                                           "BEARER  whyops-local-key", "bEaReR whyops-local-key"])
def test_the_whyops_key_never_goes_upstream_however_bearer_is_spelled(keyed_without_provider_keys, fake, authorization):
    answer = httpx.post(f"{keyed_without_provider_keys.proxy}/v1/chat/completions",
                        json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers={"Authorization": authorization})
    assert answer.status_code == 200
    assert "whyops-local-key" not in str(fake.requests[-1].headers)


def test_a_web_page_of_another_site_cannot_use_the_proxy(proxied, fake):
    before = len(fake.requests)
    answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", content=b'{"model": "gpt-4o-mini", "messages": []}',
                        headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
    assert answer.status_code == 403
    assert len(fake.requests) == before


def test_upstream_cookies_go_back_to_their_client_and_to_no_later_call(proxied, fake):
    """The proxy keeps no cookie jar: one agent's provider cookies must not ride along on another's calls."""
    first = httpx.post(f"{proxied.proxy}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
    assert first.headers["set-cookie"].startswith("__cf_bm=fake-")
    httpx.post(f"{proxied.proxy}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
    assert "cookie" not in fake.requests[-1].headers


def test_upstream_sees_the_clients_headers_without_any_of_the_proxys_own(proxied, fake):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", proxied.port)  # sends no User-Agent of its own
    connection.request("POST", "/proxy/v1/chat/completions", body=b'{"model": "gpt-4o-mini", "messages": []}',
                       headers={"Content-Type": "application/json"})
    assert connection.getresponse().status == 200
    assert "user-agent" not in fake.requests[-1].headers


def test_two_upstream_cookies_stay_two_headers(proxied, fake):
    answer = httpx.post(f"{proxied.proxy}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
    cookies = answer.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith("__cf_bm=fake-") and cookies[0].endswith("; path=/")
    assert cookies[1].startswith("_cfuvid=fake-") and cookies[1].endswith("; path=/; HttpOnly")


SERVER_KEY = "sk-server-SECRET-0123456789abcdef"
PASSWORD = "an7hropic-SECRET-pass"


@pytest.fixture(scope="module")
def secretive(fake_upstream, tmp_path_factory):
    """A server with its own OpenAI key, whose Anthropic base URL carries credentials and refuses connections."""
    from .servers import free_port

    env = {"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1", "OPENAI_API_KEY": SERVER_KEY,
           "WHYOPS_ANTHROPIC_BASE_URL": f"http://admin:{PASSWORD}@127.0.0.1:{free_port()}"}
    with run_server(tmp_path_factory.mktemp("whyops-keyed"), env=env) as running:
        yield running


def stored_exchange(server, trace: dict) -> tuple[dict, bytes]:
    exchange = trace["events"][0]["exchangeId"]
    return (httpx.get(f"{server.api}/exchanges/{exchange}").json(),
            httpx.get(f"{server.api}/exchanges/{exchange}/response").content)


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_echoing_the_server_key_hands_it_to_neither_the_client_nor_the_database(
        secretive, fake, trace_id, stream):
    """The streamed echo splits the key across two writes upstream: it is scrubbed all the same."""
    body = {"model": "gpt-4o-mini-echo", "messages": MESSAGES, "stream": stream}
    answer = httpx.post(f"{secretive.proxy}/v1/chat/completions", json=body, headers={"X-Trace-ID": trace_id})
    assert fake.requests[-1].headers["authorization"] == f"Bearer {SERVER_KEY}"  # it did go upstream
    assert SERVER_KEY.encode() in fake.sent[-1]
    assert answer.status_code == 200
    assert b"SECRET" not in answer.content and "SECRET" not in str(answer.headers)
    assert b"Bearer [redacted]" in answer.content
    if not stream:
        assert answer.headers["x-echo-authorization"] == "Bearer [redacted]"
    trace = read_trace(secretive, trace_id, 2)
    assert [e["eventType"] for e in trace["events"]] == ["user_message", "llm_response"]
    assert "SECRET" not in str(trace)
    exchange, response = stored_exchange(secretive, trace)
    assert response == answer.content
    assert "SECRET" not in str(exchange)


def test_credentials_in_an_upstream_url_are_kept_out_of_its_error_message(secretive, trace_id):
    answer = httpx.post(f"{secretive.proxy}/v1/messages", headers={"X-Trace-ID": trace_id},
                        json={"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": MESSAGES})
    assert answer.status_code == 502
    message = answer.json()["error"]["message"]
    assert "Could not reach the upstream http://[redacted]@127.0.0.1:" in message
    assert "SECRET" not in answer.text
    trace = read_trace(secretive, trace_id, 2)
    assert "SECRET" not in str(trace) and "[redacted]" in trace["events"][1]["content"]["message"]
    assert "SECRET" not in str(stored_exchange(secretive, trace))
