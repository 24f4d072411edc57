"""No web page of another origin can write, use the proxy or listen in: a browser's Origin (scheme, host and
port) or ``Sec-Fetch-Site`` gives it away, and ingest and agent registration take JSON bodies only."""

import http.server
import threading
import time
import uuid
from contextlib import contextmanager

import httpx
import pytest
from selenium.webdriver.support.ui import WebDriverWait

from .browser import chromium, needs_chromium
from .servers import free_port

EVENT = '{{"eventType": "user_message", "traceId": "{trace}", "agentName": "{agent}", "content": "hi"}}'
AGENT = '{{"agentName": "{agent}", "metadata": {{"systemPrompt": "s", "tools": []}}}}'
ELSEWHERE = "http://127.0.0.1:9"  # the same host on another port is another origin


def writes(server, ident: str) -> list[tuple[str, str, str, str]]:
    """(method, url, content type, body) of every state-changing route, each naming ``ident``."""
    event, agent = EVENT.format(trace=ident, agent=ident), AGENT.format(agent=ident)
    return [("POST", f"{server.api}/events/ingest", "application/json", event),
            ("POST", f"{server.api}/entities/init", "application/json", agent),
            ("POST", f"{server.proxy}/v1/agents/init", "application/json", agent),
            ("POST", f"{server.proxy}/agents/init", "application/json", agent),
            ("POST", f"{server.url}/v1/traces", "application/json", '{"resourceSpans": []}'),
            ("DELETE", f"{server.api}/traces/{ident}", "", ""),
            ("POST", f"{server.url}/delete-trace", "application/x-www-form-urlencoded", f"trace_id={ident}")]


def stored(server, ident: str) -> bool:
    trace = httpx.get(f"{server.api}/traces/{ident}").status_code == 200
    agent = httpx.get(f"{server.api}/agents/{ident}").status_code == 200
    return trace or agent


@pytest.mark.parametrize("browser_headers", [{"Origin": ELSEWHERE}, {"Origin": "null"},
                                             {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                             {"Sec-Fetch-Site": "same-site"}])
def test_every_state_changing_route_refuses_a_page_of_another_origin_with_403(server, browser_headers):
    ident = f"xsite-{uuid.uuid4().hex[:8]}"
    for method, url, content_type, body in writes(server, ident):
        answer = httpx.request(method, url, content=body, headers={"Content-Type": content_type, **browser_headers})
        assert answer.status_code == 403, (url, answer.text)
        if "/delete-trace" not in url:  # a page's route answers with a page
            assert answer.json()["details"][0]["field"] == "Origin"
    assert not stored(server, ident)


def test_the_servers_own_pages_and_clients_without_origin_still_write(server):
    ident = f"own-{uuid.uuid4().hex[:8]}"
    own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
    assert httpx.post(f"{server.api}/events/ingest", content=EVENT.format(trace=ident, agent=ident),
                      headers=own).status_code == 201
    assert httpx.post(f"{server.api}/entities/init", content=AGENT.format(agent=ident),
                      headers={"Content-Type": "application/json"}).status_code == 201
    assert httpx.delete(f"{server.api}/traces/{ident}", headers={"Origin": server.url}).status_code == 204


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_ingest_and_agent_registration_take_json_only(server, content_type):
    ident = f"type-{uuid.uuid4().hex[:8]}"
    for url, body in ((f"{server.api}/events/ingest", EVENT), (f"{server.api}/entities/init", AGENT),
                      (f"{server.proxy}/v1/agents/init", AGENT)):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = httpx.post(url, content=body.format(trace=ident, agent=ident), headers=headers)
        assert answer.status_code == 415, (url, answer.text)
        assert answer.json()["details"][0]["field"] == "Content-Type"
    assert not stored(server, ident)
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert httpx.post(f"{server.api}/events/ingest", content=EVENT.format(trace=ident, agent=ident),
                      headers=charset).status_code == 201


@pytest.mark.parametrize("browser_headers", [{"Origin": ELSEWHERE}, {"Sec-Fetch-Site": "cross-site"},
                                             {"Sec-Fetch-Site": "same-site", "Referer": ELSEWHERE + "/"}])
def test_a_page_of_another_origin_cannot_list_models_with_the_servers_key(proxied, fake, browser_headers):
    before = len(fake.requests)
    answer = httpx.get(f"{proxied.proxy}/v1/models", headers=browser_headers)
    assert answer.status_code == 403 and answer.json()["error"]
    assert len(fake.requests) == before
    assert httpx.get(f"{proxied.proxy}/v1/models").status_code == 200  # an SDK's request is relayed


# A page on another port of this host that tries every way a page can send a body without asking first.
ATTACK_PAGE = """<!doctype html><meta charset="utf-8"><title>attack</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" target="sink" enctype="text/plain"></form>
<script>
const event = %(event)s, agent = %(agent)s, server = %(server)s;
const sent = [];
for (const [path, body] of [["/api/events/ingest", event], ["/api/entities/init", agent], ["/proxy/v1/agents/init", agent]]) {
  sent.push(fetch(server + path, {method: "POST", mode: "no-cors", body}).catch(() => null));
  sent.push(fetch(server + path, {method: "POST", mode: "no-cors", body: new Blob([body])}).catch(() => null));
  navigator.sendBeacon(server + path, body);
  navigator.sendBeacon(server + path, new Blob([body], {type: "text/plain"}));
}
sent.push(fetch(server + "/proxy/v1/models", {mode: "no-cors"}).catch(() => null));
// A text/plain form sends "name=value": the name carries the JSON up to its last character.
const form = document.getElementById("form"), input = document.createElement("input");
input.name = event.slice(0, -2); input.value = '"}'; form.appendChild(input);
form.action = server + "/api/events/ingest";
form.submit();
Promise.all(sent).then(() => setTimeout(() => { document.title = "done"; }, 500));
</script>
"""


@contextmanager
def attacker_site(page: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()


@needs_chromium
def test_a_page_on_another_port_stores_nothing_by_fetch_beacon_or_form(proxied, fake):
    import json

    ident = f"page-{uuid.uuid4().hex[:8]}"
    before = len(fake.requests)
    page = ATTACK_PAGE % {"event": json.dumps(EVENT.format(trace=ident, agent=ident)),
                          "agent": json.dumps(AGENT.format(agent=ident)), "server": json.dumps(proxied.url)}
    with attacker_site(page) as site, chromium() as driver:
        driver.get(site)
        WebDriverWait(driver, 15).until(lambda d: d.title == "done")
        time.sleep(1)  # beacons go out after the page asked for them
    assert not stored(proxied, ident)
    assert len(fake.requests) == before
