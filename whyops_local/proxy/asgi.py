"""Serving the proxy routes with a lean Django handler, beside the full one for everything else.

Through the full handler every call pays for the page middleware (each ``MiddlewareMixin`` runs its
hooks on a worker thread in async mode: two thread hops per middleware) and for a fresh
thread-sensitive executor. That is several milliseconds per call on a small machine, more than the
proxy may add. The proxy views are async, CSRF-exempt and leave the database to the writer
process, so they need none of it.
"""

import asyncio

from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

from ..http.middleware import collapse_slashes

# Served by the full handler: agent registration is a synchronous database view.
_FULL_HANDLER_SUFFIXES = ("/agents/init",)


class ProxyHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)

    async def __call__(self, scope, receive, send) -> None:
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send) -> None:
        """ASGIHandler.handle without the request_started and request_finished signals.

        Their receivers are synchronous (reset_queries, close_old_connections), so each signal is
        a hop to a worker thread and back, ~0.5 ms a call together (measured); the proxy views use
        no database connection in this process. A client that hangs up cancels the view, as there.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                await self.send_response(error_response, send)
                return
            serving = asyncio.ensure_future(self._serve(request, send))
            hung_up = asyncio.ensure_future(self.listen_for_disconnect(receive))
            await asyncio.wait([serving, hung_up], return_when=asyncio.FIRST_COMPLETED)
            serving.cancel()  # if the client hung up first
            hung_up.cancel()
            await asyncio.gather(hung_up, return_exceptions=True)
            try:
                await serving
            except asyncio.CancelledError:
                pass
        finally:
            body_file.close()

    async def _serve(self, request, send) -> None:
        response = await self.run_get_response(request)
        await self.send_response(response, send)


def with_lean_proxy(django_app):
    """An ASGI app sending proxy calls to a ``ProxyHandler`` and the rest to ``django_app``."""
    proxy_app = ProxyHandler()

    async def app(scope, receive, send) -> None:
        path = collapse_slashes(scope["path"])
        if path.startswith("/proxy/") and not path.endswith(_FULL_HANDLER_SUFFIXES):
            return await proxy_app({**scope, "path": path}, receive, send)
        return await django_app(scope, receive, send)

    return app
