"""The incremental SSE parser: events split anywhere across chunks come out whole and in order."""

from whyops_local.proxy.sse import SSEEvent, SSEParser

STREAM = (b"event: message_start\ndata: {\"a\": 1}\n\n"
          b": a comment\n\n"
          b"data: line one\ndata: line two\n\n"
          b"event: ping\r\ndata:no-space\r\n\r\n"
          b"data: [DONE]\n\n")
EXPECTED = [SSEEvent("message_start", '{"a": 1}'), SSEEvent("message", "line one\nline two"),
            SSEEvent("ping", "no-space"), SSEEvent("message", "[DONE]")]


def test_it_parses_a_whole_stream_in_one_chunk():
    assert SSEParser().feed(STREAM) == EXPECTED


def test_it_gives_the_same_events_whatever_the_chunk_boundaries():
    for size in (1, 2, 3, 7, 13):
        parser = SSEParser()
        events = []
        for start in range(0, len(STREAM), size):
            events += parser.feed(STREAM[start:start + size])
        assert events == EXPECTED, size


def test_it_waits_for_the_blank_line_before_giving_an_event():
    parser = SSEParser()
    assert parser.feed(b"data: x\n") == []
    assert parser.feed(b"\n") == [SSEEvent("message", "x")]


def test_it_does_not_split_a_crlf_across_chunks_into_two_line_ends():
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r\n") == [SSEEvent("message", "x")]


def test_it_keeps_utf8_split_between_chunks():
    data = "data: héllo\n\n".encode()
    parser = SSEParser()
    assert parser.feed(data[:8]) + parser.feed(data[8:]) == [SSEEvent("message", "héllo")]


def test_close_flushes_an_event_without_its_final_blank_line():
    parser = SSEParser()
    assert parser.feed(b"data: last") == []
    assert parser.close() == [SSEEvent("message", "last")]
