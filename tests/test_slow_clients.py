"""A client sending its body a byte at a time is cut off after WHYOPS_BODY_TIMEOUT with a 408 JSON answer."""

import json
import socket
import time

import pytest

from .servers import run_server


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("whyops-impatient"), env={"WHYOPS_BODY_TIMEOUT": "1.5"}) as running:
        yield running


@pytest.mark.parametrize("path", ["/api/events/ingest", "/proxy/v1/chat/completions", "/v1/traces"])
def test_a_body_sent_one_byte_at_a_time_is_answered_408(impatient, path):
    body = json.dumps({"eventType": "user_message", "traceId": "slow", "agentName": "slow"}).encode()
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as client:
        client.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n".encode())
        started, answer = time.monotonic(), b""
        try:
            for byte in body:
                client.sendall(bytes([byte]))
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            pass  # cut off
        while chunk := client.recv(65536):
            answer += chunk
    assert time.monotonic() - started < 6
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"Content-Type: application/json" in head
    refused = json.loads(payload)
    assert "WHYOPS_BODY_TIMEOUT" in refused["error"] and refused["details"][0]["field"] == "body"


def test_a_body_that_arrives_in_time_is_served(impatient):
    body = json.dumps({"eventType": "user_message", "traceId": "prompt", "agentName": "slow"}).encode()
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as client:
        client.sendall(f"POST /api/events/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        time.sleep(1)
        client.sendall(body)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201 ")
