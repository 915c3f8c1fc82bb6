"""Languages of the dashboard: Simplified Chinese and English, every label from one catalog.

The language comes from the ``lang`` query parameter (the switch), then the ``lingtan_lang``
cookie it sets, then the browser's ``Accept-Language``; Chinese when nothing says otherwise,
because the people on the factory floor read Chinese first. Numbers and dates are formatted
per language in ``dashboard.formatting``.
"""

from __future__ import annotations

from collections.abc import Mapping

from lingtan.kernel.i18n import DEFAULT, LANGS, LOCALES, Lang, catalog, t, term

# the catalog's names, used by every page from here
__all__ = ["CATALOG", "COOKIE", "DEFAULT", "LANGS", "LOCALES", "Lang", "negotiate", "pick", "report_term",
           "request_lang", "t"]

COOKIE = "lingtan_lang"


def _both(key: str) -> tuple[str, str]:
    return catalog("en")[(None, key)], catalog("zh")[(None, key)]


# key → (English, Chinese), read from the catalogs (lingtan/kernel/locale); tests walk it
CATALOG: dict[str, tuple[str, str]] = {key: _both(key) for ctx, key in catalog("en") if ctx is None}


def pick(tag: str | None) -> Lang | None:
    """A language tag ("zh-CN", "en_US", "zh-Hant") → one of ours, or None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGS else None  # type: ignore[return-value]


def negotiate(accept_language: str | None) -> Lang:
    """The first of the browser's languages, by quality, that the dashboard speaks."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        lang = pick(tag)
        if lang:
            return lang
    return DEFAULT


def request_lang(args: Mapping[str, str], cookies: Mapping[str, str], accept_language: str | None,
                 user_language: str | None = None) -> Lang:
    """The switch (``?lang=``), then the remembered choice (cookie), then the signed-in user's
    own setting, then the browser."""
    return (pick(args.get("lang")) or pick(cookies.get(COOKIE)) or pick(user_language)
            or negotiate(accept_language))


# The report tables (lingtan/core/report_formats.py) are written in English, as the downloaded
# files are; on a Chinese page their fixed words are shown in Chinese (the catalog's "report"
# context). Values, notes and factor sources stay as published.
def report_term(text: str, lang: Lang) -> str:
    return term("report", text, lang)
