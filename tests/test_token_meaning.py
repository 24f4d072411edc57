"""Every count means one thing everywhere: a trace mixing providers adds up, step by step, in the API and on the page."""

import re
from decimal import Decimal

import anthropic
import httpx
import openai
from whyops import WhyOps

from .browser import chromium, needs_chromium, wait_ready
from .proxy_fixtures import read_trace

SEED_USAGE = {"promptTokens": 1200, "completionTokens": 240, "totalTokens": 9940,
              "cacheReadTokens": 8200, "cacheCreationTokens": 300}
# The fake upstream's usages: OpenAI 120 prompt tokens of which 100 cached, 12 out; Anthropic 25 uncached,
# 100 cache reads, 50 cache writes of which 30 for an hour, 15 out. Prices per million: gpt-4o-mini $0.15
# input, $0.075 cached, $0.60 output; claude-sonnet-4-5 $3, $0.30 read, $3.75 5-minute and $6 1-hour writes, $15.
OPENAI = {"input": 20, "cacheRead": 100, "cacheWrite": 0, "cacheWrite1h": 0, "output": 12, "reasoning": 0}
ANTHROPIC = {"input": 25, "cacheRead": 100, "cacheWrite": 50, "cacheWrite1h": 30, "output": 15, "reasoning": 0}
SDK = {"input": 1200, "cacheRead": 8200, "cacheWrite": 300, "cacheWrite1h": 0, "output": 240, "reasoning": 0}
COSTS = [Decimal("20") * Decimal("0.15") + 100 * Decimal("0.075") + 12 * Decimal("0.6"),
         25 * 3 + 100 * Decimal("0.3") + 20 * Decimal("3.75") + 30 * 6 + 15 * 15,
         1200 * 3 + 8200 * Decimal("0.3") + 300 * Decimal("3.75") + 240 * 15]
COSTS = [cost / 1_000_000 for cost in COSTS]


def _mixed_trace(proxied, trace_id: str) -> dict:
    headers = {"X-Trace-ID": trace_id, "X-Agent-Name": "mixed-agent", "X-External-User-Id": f"user-{trace_id}"}
    openai.OpenAI(base_url=f"{proxied.proxy}/v1", api_key="sk-x", max_retries=0, default_headers=headers) \
        .chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    anthropic.Anthropic(base_url=proxied.proxy, api_key="sk-ant", max_retries=0, default_headers=headers) \
        .messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    read_trace(proxied, trace_id, 4)
    sdk = WhyOps(api_key="k", agent_name="mixed-agent", agent_metadata={"systemPrompt": "s", "tools": []},
                 analyse_base_url=proxied.api, proxy_base_url=proxied.proxy)
    sdk.trace(trace_id).llm_response_sync("anthropic/claude-sonnet-4-5", "anthropic", "Done.", usage=SEED_USAGE)
    return read_trace(proxied, trace_id, 5)


def test_a_mixed_trace_counts_each_bucket_once_and_its_steps_add_up(proxied, fake, trace_id):
    trace = _mixed_trace(proxied, trace_id)
    calls = [e for e in trace["events"] if e["eventType"] == "llm_response"]
    assert [e["tokens"] for e in calls] == [OPENAI, ANTHROPIC, SDK]
    assert [Decimal(str(e["costUsd"])) for e in calls] == COSTS
    assert calls[2]["metadata"]["usage"] == SEED_USAGE  # the usage as reported stays beside
    summed = {key: sum(e["tokens"][key] for e in trace["events"]) for key in OPENAI}
    assert trace["tokens"] == summed == {"input": 1245, "cacheRead": 8400, "cacheWrite": 350, "cacheWrite1h": 30,
                                         "output": 267, "reasoning": 0}
    assert Decimal(str(trace["costUsd"])) == sum(COSTS) == Decimal("0.0113877")

    head = httpx.get(f"{proxied.url}/traces/{trace_id}?partial=head").text
    shown = dict(re.findall(r'data-total="(input|cacheRead|cacheWrite|output)">([\d,]+)<', head))
    assert shown == {"input": "1,245", "cacheRead": "8,400", "cacheWrite": "350", "output": "267"}
    assert 'href="#cost-breakdown"' in head and 'id="cost-breakdown"' in head
    user = httpx.get(f"{proxied.api}/users/user-{trace_id}").json()["totals"]
    assert user["tokens"] == trace["tokens"] and Decimal(str(user["costUsd"])) == sum(COSTS)
    page = httpx.get(f"{proxied.url}/users/user-{trace_id}/").text
    assert dict(re.findall(r"<dt>(Input|Cache read|Cache write|Output)</dt><dd>([\d,]+)</dd>", page)) == {
        "Input": "1,245", "Cache read": "8,400", "Cache write": "350", "Output": "267"}
    for event, tokens in zip(calls, (OPENAI, ANTHROPIC, SDK), strict=True):
        panel = httpx.get(f"{proxied.url}/traces/{trace_id}?step={event['stepId']}&partial=panel").text
        cell = re.search(r'class="num step-tokens">(.*?)</td>', panel, re.S).group(1)
        shown = re.sub(r"<[^>]+>", "", re.sub(r'<span class="muted">.*?</span>', "", cell))  # "(30 1 h)" apart
        counts = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", shown)]
        assert counts == [tokens["input"], tokens["cacheRead"], tokens["cacheWrite"], tokens["output"]]


def test_a_steps_panel_shows_each_priced_bucket_with_its_price_and_source(proxied, fake, trace_id):
    trace = _mixed_trace(proxied, trace_id)
    anthropic_call = [e for e in trace["events"] if e["eventType"] == "llm_response"][1]
    panel = httpx.get(f"{proxied.url}/traces/{trace_id}?step={anthropic_call['stepId']}&partial=panel").text
    rows = re.findall(r'<tr data-bucket="(\w+)"><td>.*?</td>\s*<td class="num">([\d,]+)</td><td class="num">([^<]+)</td>'
                      r'<td class="num">([^<]+)</td>', panel, re.S)
    assert rows == [("input", "25", "$3.00", "$0.0000750"), ("cacheRead", "100", "$0.30", "$0.0000300"),
                    ("cacheWrite", "20", "$3.75", "$0.0000750"), ("cacheWrite1h", "30", "$6.00", "$0.000180"),
                    ("output", "15", "$15.00", "$0.000225")]
    assert re.search(r'data-total="breakdown">\$0.000585<', panel)
    assert "Prices: genai-prices " in panel and "anthropic/claude-sonnet-4-5" in panel
    reported = panel[panel.index('class="usage-reported"'):panel.index('class="raw"')]
    assert "ephemeral_1h_input_tokens" in reported  # the provider's own usage object, to check the buckets by

    head = httpx.get(f"{proxied.url}/traces/{trace_id}?partial=head").text
    summed = head[head.index('id="cost-breakdown"'):]
    assert "anthropic/claude-sonnet-4-5" in summed and "openai/gpt-4o-mini" in summed
    # Both Anthropic calls' input summed: 25 + 1,200 tokens at $3.
    assert re.search(r'<tr data-bucket="input"><td>Input \(uncached\)</td>\s*<td class="num">1,225</td>'
                     r'<td class="num">\$3.00</td><td class="num">\$0.00368</td>', summed)
    # $0.0000177 for OpenAI; $0.000585 + $0.010785 for Anthropic, shown to three significant digits.
    assert re.findall(r'data-total="breakdown">\$([\d.]+)<', summed) == ["0.0000177", "0.0114"]


@needs_chromium
def test_the_trace_cost_opens_its_breakdown_in_the_browser(proxied, fake, trace_id):
    from selenium.webdriver.common.by import By

    _mixed_trace(proxied, trace_id)
    with chromium() as driver:
        driver.get(f"{proxied.url}/traces/{trace_id}")
        wait_ready(driver)
        breakdown = driver.find_element(By.ID, "cost-breakdown")
        assert breakdown.get_attribute("open") is None
        driver.find_element(By.CSS_SELECTOR, 'a[href="#cost-breakdown"]').click()
        assert breakdown.get_attribute("open") is not None
        totals = [e.text for e in breakdown.find_elements(By.CSS_SELECTOR, '[data-total="breakdown"]')]
        assert totals == ["$0.0000177", "$0.0114"]
