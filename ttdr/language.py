"""A run's language: the languages ttdr writes, and the question's language, detected offline.

Detection is py3langid (a naive-Bayes model over byte n-grams that ships inside its wheel, so
it needs no download and no network). Restricted to the languages people commonly research
in, it tells short questions apart far better than over all of its 97: unrestricted, "Wie
funktioniert git rebase?" reads as Luxembourgish and "Tides" as Estonian. Below
`MIN_CONFIDENCE` there is too little text to tell, and the answer is English, which is also
what a query made of names and identifiers ("git rebase --onto") usually is.

The fixed phrases of a report that the core renders itself (its references list) live here
too; the agent's own phrases are in agents/language.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, get_args

# The languages ttdr has a report skeleton for; a question in any other is written in English.
Language = Literal["en", "de", "fr", "es", "it", "nl", "pt"]
LanguageSetting = Literal["auto", "en", "de", "fr", "es", "it", "nl", "pt"]
LANGUAGES: tuple[str, ...] = get_args(Language)
DEFAULT_LANGUAGE = "en"
NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ru": "Russian",
    "pl": "Polish",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "cs": "Czech",
    "tr": "Turkish",
    "ro": "Romanian",
    "hu": "Hungarian",
    "el": "Greek",
    "uk": "Ukrainian",
    "ar": "Arabic",
    "he": "Hebrew",
    "hi": "Hindi",
    "ja": "Japanese",
    "zh": "Chinese",
    "ko": "Korean",
    "id": "Indonesian",
    "vi": "Vietnamese",
}
DETECTED = tuple(NAMES)  # what the detector chooses among
MIN_CONFIDENCE = 0.5
# What a setting may also say for a language: its English or its own name.
_ALIASES = {
    "english": "en",
    "german": "de",
    "deutsch": "de",
    "french": "fr",
    "français": "fr",
    "francais": "fr",
    "spanish": "es",
    "español": "es",
    "espanol": "es",
    "italian": "it",
    "italiano": "it",
    "dutch": "nl",
    "nederlands": "nl",
    "portuguese": "pt",
    "português": "pt",
    "portugues": "pt",
}
REFERENCES = {
    "en": ("References", "No sources were cited."),
    "de": ("Quellen", "Es wurden keine Quellen zitiert."),
    "fr": ("Références", "Aucune source n'a été citée."),
    "es": ("Referencias", "No se citó ninguna fuente."),
    "it": ("Riferimenti", "Non è stata citata alcuna fonte."),
    "nl": ("Bronnen", "Er zijn geen bronnen geciteerd."),
    "pt": ("Referências", "Nenhuma fonte foi citada."),
}


@dataclass(frozen=True)
class Detection:
    code: str  # an ISO 639-1 code of `DETECTED`
    confidence: float

    @property
    def supported(self) -> bool:
        return self.code in LANGUAGES


def normalise_language(value: object) -> object:
    """`"DE"`, `" German "` or `"Deutsch"` as `"de"`; anything else unchanged, for the
    validator to refuse with the allowed values."""
    if not isinstance(value, str):
        return value
    key = value.strip().lower()
    return _ALIASES.get(key, key)


@functools.cache
def _identifier():
    # Loading the model takes about a second; one process detects many times.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(DETECTED))
    return identifier


def detect_language(text: str) -> Detection:
    """The language `text` is written in; English when it is too short or mixed to tell."""
    if not any(ch.isalpha() for ch in text):
        return Detection(DEFAULT_LANGUAGE, 0.0)
    code, confidence = _identifier().classify(text)
    if confidence < MIN_CONFIDENCE:
        return Detection(DEFAULT_LANGUAGE, round(confidence, 3))
    return Detection(code, round(confidence, 3))


def output_language(code: str | None) -> str:
    """The language a run writes in: its own when ttdr has phrases for it, else English."""
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def language_name(code: str | None) -> str:
    return NAMES.get(code or "", code or NAMES[DEFAULT_LANGUAGE])


def references_heading(code: str | None) -> tuple[str, str]:
    """The references list's heading, and what it says when nothing was cited."""
    return REFERENCES[output_language(code)]
