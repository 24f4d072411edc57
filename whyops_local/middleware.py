import re

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

_SLASHES = re.compile(r"/{2,}")


class CollapseSlashesMiddleware:
    """Answer ``/api//events/ingest`` like ``/api/events/ingest``: SDKs join a base URL that ends in
    "/" with a path that starts with one (protocol section 1)."""

    sync_capable = async_capable = True  # no thread hop for async views

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if "//" in request.path_info:
            collapsed = _SLASHES.sub("/", request.path_info)
            # Only the SDK-facing routes: page URLs carry trace and user ids, which may hold "//".
            if collapsed.startswith(("/api/", "/proxy/")):
                request.path_info = collapsed
        return self.get_response(request)
