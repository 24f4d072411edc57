import os

from django.core.asgi import get_asgi_application

from . import datadir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")
datadir.prepare(datadir.path())  # for servers started without manage.py or the CLI (daphne whyops_local.asgi:application)
django_asgi_app = get_asgi_application()

# These need Django set up first.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from .http import daphne_requests  # noqa: E402
from .http.ingest import IngestFastPath  # noqa: E402
from .http.middleware import Guard  # noqa: E402
from .live.routing import websocket_urlpatterns  # noqa: E402
from .proxy.asgi import with_lean_proxy  # noqa: E402
from .storage.retention import start as start_retention  # noqa: E402
from .storage.writer import start as start_writer  # noqa: E402

# Guard first: the key, and no web page of another origin (scheme, host and port) writing or listening in.
application = Guard(ProtocolTypeRouter({
    "http": IngestFastPath(with_lean_proxy(django_asgi_app)),
    "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
}))
daphne_requests.use()
start_writer()
start_retention()
