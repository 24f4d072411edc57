import re

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

_SLASHES = re.compile(r"/{2,}")


def collapse_slashes(path: str) -> str:
    """``/api//events/ingest`` -> ``/api/events/ingest``: SDKs join a base URL that ends in "/" with a
    path that starts with one (docs/whyops-protocol.md §1). Shared by the ASGI fast paths and the middleware."""
    return _SLASHES.sub("/", path) if "//" in path else path


class CollapseSlashesMiddleware:
    """Answer ``/api//events/ingest`` like ``/api/events/ingest`` (see collapse_slashes)."""

    sync_capable = async_capable = True  # no thread hop for async views

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        collapsed = collapse_slashes(request.path_info)
        # Only the SDK-facing routes: page URLs carry trace and user ids, which may hold "//".
        if collapsed.startswith(("/api/", "/proxy/")):
            request.path_info = collapsed
        return self.get_response(request)
