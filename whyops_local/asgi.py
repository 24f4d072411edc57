import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up)

from whyops_local.proxy.asgi import with_lean_proxy  # noqa: E402

application = ProtocolTypeRouter({"http": with_lean_proxy(django_asgi_app)})
