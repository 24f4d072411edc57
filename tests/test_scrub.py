"""The scrubber of the server's secrets (proxy/scrub.py): whole, in text, and split anywhere across stream chunks."""

import asyncio

from whyops_local.proxy.scrub import Scrubber, secrets_of

KEY = "sk-server-0123456789"


async def _chunks(parts: list[bytes]):
    for part in parts:
        yield part


def streamed(scrubber: Scrubber, parts: list[bytes]) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [chunk async for chunk in scrubber.stream(_chunks(parts))]

    return asyncio.run(collect())


def test_the_secrets_are_the_keys_set_and_the_userinfo_of_the_urls():
    found = secrets_of([KEY, None], ["https://api.openai.com/v1", "http://admin:p%40ss-word@gateway:8080/v1"])
    assert found == [KEY, "admin:p%40ss-word", "p%40ss-word", "p@ss-word"]


def test_a_secret_is_replaced_in_bytes_and_text():
    scrubber = Scrubber([KEY])
    assert scrubber.bytes(f'{{"auth": "Bearer {KEY}"}}'.encode()) == b'{"auth": "Bearer [redacted]"}'
    assert scrubber.text(f"at {KEY}, again {KEY}") == "at [redacted], again [redacted]"


def test_a_secret_split_at_any_point_across_chunks_is_replaced_and_the_rest_passes_as_is():
    scrubber = Scrubber([KEY])
    stream = f"data: {{\"echo\": \"Bearer {KEY}\"}}\n\n".encode()
    for cut in range(1, len(stream)):
        out = streamed(scrubber, [stream[:cut], stream[cut:]])
        assert b"".join(out) == stream.replace(KEY.encode(), b"[redacted]"), cut
        assert all(KEY.encode() not in chunk for chunk in out)


def test_a_chunk_that_cannot_begin_a_secret_is_passed_on_whole_at_once():
    scrubber = Scrubber([KEY])
    assert streamed(scrubber, [b"data: {}\n\n", b"data: [DONE]\n\n"]) == [b"data: {}\n\n", b"data: [DONE]\n\n"]
    assert scrubber.held_back(b'data: {"x": "sk-ser') == len("sk-ser")


def test_without_secrets_nothing_is_touched_and_short_ones_are_left_alone():
    assert not Scrubber([]) and not Scrubber(["abc"])
    assert Scrubber(["abc"]).bytes(b"abcabc") == b"abcabc"
