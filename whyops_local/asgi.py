import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (these need Django set up)

from .ingest import IngestFastPath  # noqa: E402

application = ProtocolTypeRouter({"http": IngestFastPath(django_asgi_app)})
