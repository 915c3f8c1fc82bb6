"""Every user-visible label in one keyed gettext catalog per language (Babel's PO format).

``locale/<locale>/LC_MESSAGES/lingtan.po`` holds the texts: the ``msgid`` is a stable key (the
dashboard's ``nav.overview``, the sign-in page's ``signin.title``), or, in the ``report``
context, the English word a downloaded report prints and the page translates. Translators edit
the PO files with any gettext tool; ``tests/dashboard/test_i18n.py`` fails when a key is missing
in either language or the placeholders differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Literal

from babel.messages.pofile import read_po

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"
# Babel locales for numbers and dates, and the catalog folder of each language
LOCALES: dict[Lang, str] = {"zh": "zh_Hans_CN", "en": "en_GB"}
_CATALOG_LOCALE: dict[Lang, str] = {"zh": "zh_CN", "en": "en"}
DOMAIN = "lingtan"

Key = tuple[str | None, str]  # (context, msgid)


@cache
def catalog(lang: Lang) -> Mapping[Key, str]:
    """(context, msgid) → text of one language, read once from its PO file."""
    path = files("lingtan.kernel").joinpath("locale", _CATALOG_LOCALE[lang], "LC_MESSAGES", f"{DOMAIN}.po")
    with path.open("rb") as f:
        po = read_po(f, locale=_CATALOG_LOCALE[lang], domain=DOMAIN)
    return {(m.context, str(m.id)): str(m.string) for m in po if m.id and m.string}


def t(key: str, lang: Lang, **values: object) -> str:
    """The label ``key`` in ``lang``, its ``{placeholders}`` filled. An unknown key is a KeyError:
    a missing label is a bug to find in tests, not a raw key to show a user."""
    text = catalog(lang)[(None, key)]
    return text.format(**values) if values else text


def term(context: str, text: str, lang: Lang) -> str:
    """``text`` (an English word of ``context``, e.g. a report column) in ``lang``; itself when the
    catalog has no translation."""
    return catalog(lang).get((context, text), text)
