"""Model text as Markdown, rendered to HTML that is safe to put in a page (pure, no Django).

Two layers: mistune escapes any raw HTML in the source (a model's ``<script>`` shows as text), and
nh3 (ammonia) then keeps only the tags Markdown itself makes and links with a harmless scheme, so a
``[x](javascript:...)`` or ``data:`` link loses its target. Images are dropped: the viewer loads
nothing from elsewhere, and a remote image would tell its host the page was opened.
"""

from functools import lru_cache

import mistune
import nh3

TAGS = {"p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
        "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}, "code": {"class"}}
URL_SCHEMES = {"http", "https", "mailto"}

_render = mistune.create_markdown(escape=True, plugins=["strikethrough", "table", "url"])


@lru_cache(maxsize=4096)  # long runs repeat the same answers and tool texts
def to_html(text: str) -> str:
    return nh3.clean(str(_render(text)), tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow")
