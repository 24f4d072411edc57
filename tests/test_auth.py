"""With WHYOPS_API_KEY set every route needs the key, as Jupyter's token does: API clients send it as a
header, a browser signs in once through the ``?token=`` link the server prints and keeps a cookie."""

import asyncio
import subprocess
import sys
import uuid

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from whyops import WhyOps

from .browser import chromium, needs_chromium
from .servers import ROOT, free_port, run_cli, run_server

KEY = "local-key-Q7"
EVENT = {"eventType": "user_message", "traceId": "keyed", "agentName": "keyed-agent", "content": "hi"}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("whyops-auth"), env={"WHYOPS_API_KEY": KEY}) as running:
        yield running


def sdk_for(server) -> WhyOps:
    return WhyOps(api_key=KEY, agent_name="keyed-agent", agent_metadata={"systemPrompt": "s", "tools": []},
                  analyse_base_url=server.api, proxy_base_url=server.proxy)


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/agents/"), ("GET", "/users/"), ("GET", "/traces/keyed"), ("GET", "/compare/"),
    ("GET", "/api/docs"), ("GET", "/api/openapi.json"), ("GET", "/api/health"), ("GET", "/api/traces"),
    ("GET", "/api/traces/keyed"), ("GET", "/api/agents"), ("GET", "/api/models"), ("GET", "/api/exchanges/1"),
    ("GET", "/api/exchanges/1/request"), ("POST", "/api/events/ingest"), ("POST", "/api/entities/init"),
    ("POST", "/proxy/v1/agents/init"), ("DELETE", "/api/traces/keyed"), ("POST", "/v1/traces"),
    ("GET", "/proxy/v1/models"), ("POST", "/proxy/v1/chat/completions"), ("POST", "/delete-trace"),
])
def test_every_route_answers_401_without_the_key(keyed, method, path):
    answer = httpx.request(method, keyed.url + path, json=EVENT, headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401
    if path.startswith(("/api/docs", "/traces", "/agents", "/users", "/compare", "/delete-trace")) or path == "/":
        assert answer.headers["content-type"].startswith("text/html")
        assert "?token=" in answer.text and KEY not in answer.text
    else:
        assert answer.json()["error"].startswith("Missing or wrong API key")


def test_static_files_stay_open(keyed):
    assert httpx.get(f"{keyed.url}/static/css/base.css").status_code == 200


def test_the_real_sdk_with_the_key_stores_and_reads_with_either_header(keyed):
    sdk = sdk_for(keyed)
    sdk.init_agent_sync()
    trace_id = f"sdk-{uuid.uuid4().hex[:8]}"
    sdk.trace(trace_id).user_message_sync([{"role": "user", "content": "hello"}])
    for header in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
        answer = httpx.get(f"{keyed.api}/traces/{trace_id}", headers=header)
        assert answer.status_code == 200 and len(answer.json()["events"]) == 1
    assert httpx.get(f"{keyed.url}/", headers={"X-API-Key": KEY}).status_code == 200


def test_a_token_link_sets_a_strict_httponly_cookie_and_goes_to_the_clean_address(keyed):
    answer = httpx.get(f"{keyed.url}/agents/?token={KEY}&x=1")
    assert answer.status_code == 302 and answer.headers["location"] == "/agents/?x=1"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and KEY not in cookie
    name, value = cookie.split(";", 1)[0].split("=", 1)
    assert httpx.get(f"{keyed.url}/agents/", cookies={name: value}).status_code == 200
    assert httpx.get(f"{keyed.api}/traces", cookies={name: value}).status_code == 200
    tampered = value[:-1] + ("1" if value.endswith("0") else "0")  # a "0" made "0" again let 1 run in 16 pass it
    assert httpx.get(f"{keyed.url}/agents/", cookies={name: tampered}).status_code == 401
    assert httpx.get(f"{keyed.url}/agents/?token=wrong").status_code == 401


async def _websocket_status(server, cookie: str | None) -> str:
    headers = {"Cookie": cookie} if cookie else {}
    try:
        async with connect(f"ws://127.0.0.1:{server.port}/ws/traces/", origin=server.url,
                           additional_headers=headers, open_timeout=5):
            return "open"
    except InvalidStatus as refused:
        return str(refused.response.status_code)


def test_the_websocket_needs_the_cookie(keyed):
    assert asyncio.run(_websocket_status(keyed, None)) == "403"
    cookie = httpx.get(f"{keyed.url}/?token={KEY}").headers["set-cookie"].split(";", 1)[0]
    assert asyncio.run(_websocket_status(keyed, cookie)) == "open"


@needs_chromium
def test_a_browser_signed_in_by_the_link_loads_pages_and_gets_live_events(keyed):
    with chromium() as driver:
        driver.get(f"{keyed.url}/")
        assert "The key is needed" in driver.page_source
        driver.get(f"{keyed.url}/?token={KEY}")
        assert driver.current_url == f"{keyed.url}/"
        [cookie] = driver.get_cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != KEY
        WebDriverWait(driver, 5).until(
            lambda d: d.find_element(By.ID, "live-indicator").get_attribute("data-state") == "live")
        fresh = f"live-{uuid.uuid4().hex[:8]}"
        sdk_for(keyed).trace(fresh).user_message_sync([{"role": "user", "content": "b"}])
        WebDriverWait(driver, 3, poll_frequency=0.05).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "table.traces tbody tr").get_attribute("data-trace-id") == fresh)


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "whyops_local.cli", "serve", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_serving_beyond_loopback_without_a_key_is_refused_unless_allowed(tmp_path):
    import os

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", "WHYOPS_DATA_DIR": str(tmp_path)}
    env.pop("WHYOPS_API_KEY", None)
    env.pop("WHYOPS_ALLOW_REMOTE", None)
    refused = _serve("--host", "0.0.0.0", "--port", str(free_port()), env=env)
    assert refused.returncode == 2 and "WHYOPS_ALLOW_REMOTE=1" in refused.stderr
    runserver = subprocess.run([sys.executable, "manage.py", "runserver", f"0:{free_port()}", "--noreload"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=60)
    assert runserver.returncode == 2 and "without WHYOPS_API_KEY" in runserver.stderr
    for allowed in ({"WHYOPS_ALLOW_REMOTE": "1"}, {"WHYOPS_API_KEY": KEY}):
        with run_cli("serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path), env=allowed) as served:
            assert served.process.poll() is None
            assert (f"?token={KEY}" in served.output()) == ("WHYOPS_API_KEY" in allowed)
