"""Storing repeated content once: pure helpers for the content store (storage/content.py).

A proxied call resends its whole history, so a request body is mostly the trace's previous request
body: it is stored as the bytes it shares with that one at its start and end, and the bytes between.
Its headers and its response are mostly another call's too: headers are stored as what changed
(``changes``), a body compressed with a like body as zstd's dictionary (``squeeze(data, like)``).
Messages are stored once per trace and referenced by id; an event's ids are kept as runs
(``[first, count]``), since a growing history references the same ids in order, call after call.
"""

import hashlib
from typing import Any

import orjson
import zstandard

_MAGIC = b"\x28\xb5\x2f\xfd"  # every zstd frame starts with it
_compressor = zstandard.ZstdCompressor(level=3)
_decompressor = zstandard.ZstdDecompressor()
# Smaller payloads gain nothing worth a frame header.
_WORTH_COMPRESSING = 96


def _dictionary(like: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(like, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def squeeze(data: bytes, like: bytes = b"") -> bytes:
    """``data`` zstd-compressed when that makes it smaller, else as is (told apart by the frame's magic).
    With ``like`` (bytes that ``data`` shares much with), what they share costs a few bytes: a chat
    response against the trace's first one, ~280 -> ~25 (bench/storage.py). ~20 us either way."""
    if len(data) >= _WORTH_COMPRESSING or data.startswith(_MAGIC) or (like and data):
        compressor = zstandard.ZstdCompressor(level=3, dict_data=_dictionary(like)) if like else _compressor
        packed = compressor.compress(data)
        if len(packed) < len(data) or data.startswith(_MAGIC):
            return packed
    return data


def unsqueeze(data: bytes, like: bytes = b"") -> bytes:
    """What ``squeeze(data, like)`` was given, from what it returned (and the same ``like``)."""
    if not data.startswith(_MAGIC):
        return data
    return (zstandard.ZstdDecompressor(dict_data=_dictionary(like)) if like else _decompressor).decompress(data)


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _common_prefix(a: bytes, b: bytes, limit: int) -> int:
    low, high = 0, limit  # a[:low] == b[:low]; found by halving (each comparison a memcmp)
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle:len(a) - low] == b[len(b) - middle:len(b) - low]:
            low = middle
        else:
            high = middle - 1
    return low


def split(base: bytes, body: bytes) -> tuple[int, int, bytes]:
    """``(prefix, suffix, middle)`` with ``body == base[:prefix] + middle + base[len(base) - suffix:]``."""
    limit = min(len(base), len(body))
    prefix = _common_prefix(base, body, limit)
    suffix = _common_suffix(base, body, limit - prefix)
    return prefix, suffix, body[prefix:len(body) - suffix]


def join(base: bytes, prefix: int, suffix: int, middle: bytes) -> bytes:
    return base[:prefix] + middle + base[len(base) - suffix:]


def common_prefix(a: list, b: list) -> list:
    for position, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return a[:position]
    return a[:min(len(a), len(b))]


def runs(ids: list[int]) -> list[list[int]]:
    """``[[first, count], ...]`` covering ``ids`` in order."""
    found: list[list[int]] = []
    for value in ids:
        if found and found[-1][0] + found[-1][1] == value:
            found[-1][1] += 1
        else:
            found.append([value, 1])
    return found


def ids_of(found: list[list[int]]) -> list[int]:
    return [value for first, count in found for value in range(first, first + count)]


def changes(base: dict, value: dict) -> list:
    """``value`` in its order as its entries that ``base`` holds alike, by their key's place among
    ``base``'s keys sorted (PostgreSQL's jsonb keeps a dict's keys in an order of its own), and
    ``[key, value]`` for the others: a call's headers are another call's but for a few values."""
    position = {key: n for n, key in enumerate(sorted(base))}
    # Only text is compared: JSON's 1, 1.0 and true are equal in Python.
    return [position[key] if isinstance(item, str) and isinstance(base.get(key), str) and item == base[key]
            else [key, item] for key, item in value.items()]


def changed(base: dict, found: list) -> dict:
    """The ``value`` that ``changes(base, value)`` was given."""
    keys = sorted(base)
    whole: dict = {}
    for entry in found:
        if isinstance(entry, int):
            whole[keys[entry]] = base[keys[entry]]
        else:
            whole[entry[0]] = entry[1]
    return whole


def patch(base: dict, value: dict, ordered: bool = True) -> dict | None:
    """``value`` as a JSON merge patch (RFC 7386) of ``base``: the entries that differ, dicts that both
    hold patched in turn, ``None`` for a key ``value`` lacks. ``None`` when no patch gives ``value``
    back exactly: a null that ``base`` does not hold (a patch's null removes), or (``ordered``) keys in
    an order that ``patched`` would not keep (PostgreSQL's jsonb keeps an order of its own anyway).
    Values are compared as JSON text: Python's 1, 1.0 and true are equal.
    """
    if ordered and not _keeps_order(base, value):
        return None
    found: dict = {} if base.keys() == value.keys() else {key: None for key in base if key not in value}
    for key, item in value.items():
        was = base.get(key, _MISSING)
        kind = type(item)
        if kind is type(was):
            if kind is dict:
                inner = patch(was, item, ordered)
                if inner is None:
                    return None
                if inner:
                    found[key] = inner
                continue
            if item == was if kind in _SCALARS else _same(was, item):
                continue
        if item is None:
            return None
        found[key] = item
    return found


def patched(base: dict, found: dict) -> dict:
    """The ``value`` that ``patch(base, value)`` was given."""
    whole = dict(base)
    for key, item in found.items():
        if item is None:
            whole.pop(key, None)
        elif isinstance(item, dict) and isinstance(whole.get(key), dict):
            whole[key] = patched(whole[key], item)
        else:
            whole[key] = item
    return whole


def _keeps_order(base: dict, value: dict) -> bool:
    """Whether ``patched`` would give ``value``'s keys in their order: ``base``'s that stay, then the new ones."""
    if base.keys() == value.keys():  # the usual case: the same keys
        return list(base) == list(value)
    return [key for key in base if key in value] + [key for key in value if key not in base] == list(value)


_MISSING = object()
_SCALARS = frozenset({str, int, bool, type(None)})  # equal in Python only when equal as JSON, for one type


def _same(a: Any, b: Any) -> bool:
    try:  # a float (-0.0 == 0.0) or a list, as JSON text
        return orjson.dumps(a) == orjson.dumps(b)
    except TypeError:  # what orjson cannot write (integers beyond 64 bits): told apart, stored again
        return False
