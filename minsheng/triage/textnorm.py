"""Text normalisation and tokenisation for raw Chinese request text.

Everything the triage models read passes through :func:`normalize` first, so that a ticket typed on a phone
(full-width digits, stray control characters, 100,000 pasted characters) looks the same as one typed by an
operator. :func:`tokenize` wraps jieba; jieba is imported and its dictionary loaded only on first use, never at
import time.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_MAX_CHARS",
    "has_cjk",
    "normalize",
    "to_halfwidth",
    "tokenize",
    "truncate",
]

#: Requests longer than this carry no extra signal for classification (the subject is stated early), and cutting
#: them keeps prediction time bounded for pasted documents.
DEFAULT_MAX_CHARS = 3000

_WHITESPACE = re.compile(r"\s+")
_HALFWIDTH: dict[int, str] = {0x3000: " ", **{code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_INVISIBLE = re.compile(
    r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\ue000-\uf8ff]"
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_jieba_lock = threading.Lock()
_jieba: Any = None


def to_halfwidth(text: str) -> str:
    """Map full-width ASCII (``ＡＢＣ１２３，``) and the ideographic space to their half-width forms."""
    return text.translate(_HALFWIDTH)


def truncate(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Keep the first ``max_chars`` characters (the title and the start of the detail carry the subject)."""
    if max_chars <= 0:
        return ""
    return text if len(text) <= max_chars else text[:max_chars]


def normalize(text: object, *, max_chars: int | None = DEFAULT_MAX_CHARS, lower: bool = True) -> str:
    """Return a clean, comparable form of ``text``.

    Accepts anything (``None`` and non-strings become ``""`` or ``str(x)``) because ticket fields come from
    spreadsheets and forms. Truncates *before* the character-level work so cost stays bounded.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if max_chars is not None:
        # Cut generously first so that NFKC and the regexes never see a huge input, then cut exactly.
        text = text[: max_chars * 2 + 16]
    text = unicodedata.normalize("NFKC", text.translate(_HALFWIDTH))
    # Control and format characters (zero-width spaces, BOMs, bidi marks) break n-grams without carrying meaning;
    # lone surrogates would make later encoding fail.
    text = _INVISIBLE.sub("", _CONTROL.sub(" ", text))
    text = _WHITESPACE.sub(" ", text).strip()
    if lower:
        text = text.lower()
    if max_chars is not None:
        text = truncate(text, max_chars)
    return text


def has_cjk(text: str) -> bool:
    """True when ``text`` contains at least one CJK ideograph."""
    return _CJK.search(text) is not None


def _get_jieba() -> Any:
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                logging.getLogger("jieba").setLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def tokenize(text: str, *, drop_space: bool = True) -> list[str]:
    """Segment ``text`` into words with jieba (precise mode, HMM for unknown words).

    ``text`` is expected to be normalised already. Whitespace-only tokens are dropped.
    """
    if not text:
        return []
    jieba = _get_jieba()
    tokens: Iterable[str] = jieba.lcut(text, HMM=True)
    if drop_space:
        return [t for t in tokens if t.strip()]
    return list(tokens)
