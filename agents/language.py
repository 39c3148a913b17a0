"""The run's language in the agent: the report's fixed phrases, the plan's templates, and
which of the model's texts are in the run's language at all.

The default model is a small English one, so a German run cannot count on it to write German:
everything the agent assembles itself (the summary heading, the notes, a neutral outline, the
key questions it makes for sections) comes from the table here, and a query or plan line the
model wrote in another language is left out, so the searches stay in the question's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ttdr.language import LANGUAGES, detect_language, language_name, output_language

if TYPE_CHECKING:
    from agents.context import ResearchContext


@dataclass(frozen=True)
class Phrases:
    summary: str
    no_summary: str
    unsupported: str  # under a section no retrieved source supports
    reading_note: str  # {cited} of {total} sentences cite a source
    outline: tuple[tuple[str, str], ...]  # the neutral outline: (title, key question of {q})
    outline_question: str  # the key question of a section taken from a page heading {title}
    section_question: str  # ... of a planned section without one: {q!r}, {topic}


PHRASES: dict[str, Phrases] = {
    "en": Phrases(
        summary="Summary",
        no_summary="(No summary was generated.)",
        unsupported="*No retrieved source supports this section yet; it reflects the model's "
        "own knowledge.*",
        reading_note="*{cited} of {total} sentences of this report cite a retrieved source [n]; "
        "the others come from the model's own knowledge and were not checked against a source.*",
        outline=(
            (
                "Background and definitions",
                "What background and definitions does a reader need for: {q}",
            ),
            ("How it works", "What are the mechanisms or methods behind: {q}"),
            ("Evidence and comparisons", "What evidence and comparisons bear on: {q}"),
            (
                "Limitations and open questions",
                "What limitations and open questions remain for: {q}",
            ),
        ),
        outline_question="What does {title} say about: {q}",
        section_question="What should a report on {q!r} say about {topic}?",
    ),
    "de": Phrases(
        summary="Zusammenfassung",
        no_summary="(Es wurde keine Zusammenfassung erstellt.)",
        unsupported="*Keine abgerufene Quelle stützt diesen Abschnitt bisher; er gibt das "
        "eigene Wissen des Modells wieder.*",
        reading_note="*{cited} von {total} Sätzen dieses Berichts zitieren eine abgerufene "
        "Quelle [n]; die übrigen stammen aus dem eigenen Wissen des Modells und wurden nicht an "
        "einer Quelle geprüft.*",
        outline=(
            (
                "Hintergrund und Begriffe",
                "Welchen Hintergrund und welche Begriffe braucht man für: {q}",
            ),
            ("Wie es funktioniert", "Welche Mechanismen oder Methoden stehen hinter: {q}"),
            ("Belege und Vergleiche", "Welche Belege und Vergleiche gibt es zu: {q}"),
            ("Grenzen und offene Fragen", "Welche Grenzen und offenen Fragen bleiben bei: {q}"),
        ),
        outline_question="Was sagt {title} zu: {q}",
        section_question="Was sollte ein Bericht zu {q!r} über {title} sagen?",
    ),
    "fr": Phrases(
        summary="Résumé",
        no_summary="(Aucun résumé n'a été produit.)",
        unsupported="*Aucune source récupérée n'étaye encore cette section ; elle reflète les "
        "connaissances propres du modèle.*",
        reading_note="*{cited} des {total} phrases de ce rapport citent une source récupérée "
        "[n] ; les autres viennent des connaissances propres du modèle et n'ont pas été "
        "vérifiées auprès d'une source.*",
        outline=(
            ("Contexte et définitions", "Quel contexte et quelles définitions faut-il pour : {q}"),
            ("Fonctionnement", "Quels mécanismes ou méthodes se trouvent derrière : {q}"),
            ("Données et comparaisons", "Quelles données et comparaisons éclairent : {q}"),
            (
                "Limites et questions ouvertes",
                "Quelles limites et questions ouvertes subsistent pour : {q}",
            ),
        ),
        outline_question="Que dit {title} sur : {q}",
        section_question="Que devrait dire un rapport sur {q!r} à propos de {topic} ?",
    ),
    "es": Phrases(
        summary="Resumen",
        no_summary="(No se generó ningún resumen.)",
        unsupported="*Ninguna fuente recuperada respalda todavía esta sección; refleja el "
        "conocimiento propio del modelo.*",
        reading_note="*{cited} de {total} frases de este informe citan una fuente recuperada "
        "[n]; las demás provienen del conocimiento propio del modelo y no se contrastaron con "
        "ninguna fuente.*",
        outline=(
            ("Contexto y definiciones", "Contexto y definiciones necesarios para: {q}"),
            ("Cómo funciona", "Mecanismos o métodos detrás de: {q}"),
            ("Pruebas y comparaciones", "Pruebas y comparaciones sobre: {q}"),
            ("Limitaciones y preguntas abiertas", "Limitaciones y preguntas abiertas sobre: {q}"),
        ),
        outline_question="Lo que dice {title} sobre: {q}",
        section_question="Lo que un informe sobre {q!r} debería decir de {topic}.",
    ),
    "it": Phrases(
        summary="Sintesi",
        no_summary="(Non è stata generata alcuna sintesi.)",
        unsupported="*Nessuna fonte recuperata sostiene ancora questa sezione; riflette le "
        "conoscenze proprie del modello.*",
        reading_note="*{cited} frasi su {total} di questo rapporto citano una fonte recuperata "
        "[n]; le altre provengono dalle conoscenze proprie del modello e non sono state "
        "verificate su una fonte.*",
        outline=(
            ("Contesto e definizioni", "Quale contesto e quali definizioni servono per: {q}"),
            ("Come funziona", "Quali meccanismi o metodi ci sono dietro: {q}"),
            ("Prove e confronti", "Quali prove e confronti riguardano: {q}"),
            ("Limiti e questioni aperte", "Quali limiti e questioni aperte restano per: {q}"),
        ),
        outline_question="Che cosa dice {title} su: {q}",
        section_question="Che cosa dovrebbe dire un rapporto su {q!r} riguardo a {topic}?",
    ),
    "nl": Phrases(
        summary="Samenvatting",
        no_summary="(Er is geen samenvatting gemaakt.)",
        unsupported="*Nog geen opgehaalde bron ondersteunt deze sectie; ze geeft de eigen "
        "kennis van het model weer.*",
        reading_note="*{cited} van de {total} zinnen van dit rapport citeren een opgehaalde "
        "bron [n]; de rest komt uit de eigen kennis van het model en is niet aan een bron "
        "getoetst.*",
        outline=(
            ("Achtergrond en definities", "Welke achtergrond en definities zijn nodig voor: {q}"),
            ("Hoe het werkt", "Welke mechanismen of methoden zitten achter: {q}"),
            ("Bewijs en vergelijkingen", "Welk bewijs en welke vergelijkingen zijn er voor: {q}"),
            ("Beperkingen en open vragen", "Welke beperkingen en open vragen blijven er bij: {q}"),
        ),
        outline_question="Wat zegt {title} over: {q}",
        section_question="Wat zou een rapport over {q!r} moeten zeggen over {topic}?",
    ),
    "pt": Phrases(
        summary="Resumo",
        no_summary="(Nenhum resumo foi gerado.)",
        unsupported="*Nenhuma fonte recuperada sustenta ainda esta seção; ela reflete o "
        "conhecimento próprio do modelo.*",
        reading_note="*{cited} de {total} frases deste relatório citam uma fonte recuperada "
        "[n]; as demais vêm do conhecimento próprio do modelo e não foram verificadas numa "
        "fonte.*",
        outline=(
            ("Contexto e definições", "Que contexto e definições são precisos para: {q}"),
            ("Como funciona", "Que mecanismos ou métodos estão por trás de: {q}"),
            ("Evidências e comparações", "Que evidências e comparações existem sobre: {q}"),
            (
                "Limitações e questões em aberto",
                "Que limitações e questões em aberto restam para: {q}",
            ),
        ),
        outline_question="O que diz {title} sobre: {q}",
        section_question="O que um relatório sobre {q!r} deveria dizer sobre {topic}?",
    ),
}

# The words that make a question a question in each language, beside the English ones of
# agents/evidence.py: left out of the queries made of a question's key terms. Words that are
# also English content words ("comment", "come", "also") are not listed.
QUESTION_WORDS = frozenset(
    # de
    "wie was warum weshalb wieso welche welcher welches welchen wann wer wen wem womit "  # noqa: SIM905
    "wodurch funktioniert funktionieren gibt eine einer eines einem einen sind wird werden "
    "wurde wurden kann können nicht oder aber auch durch über unter zwischen erkläre erklären "
    "beschreibe unterschied "
    # fr
    "pourquoi quel quelle quels quelles quand combien fonctionne fonctionnent est-ce "
    "qu'est-ce sont dans pour avec entre expliquer différence "
    # es
    "cómo qué porqué cuál cuáles cuándo dónde quién funciona funcionan para explica "
    "diferencia están "
    # it
    "perché quale quali quando funzionano sono della delle degli nella spiega differenza "
    # nl
    "hoe wat waarom welke wanneer waar wie werkt werken zijn wordt worden voor tussen "
    "uitleggen verschil "
    # pt
    "como porque porquê qual quais quando onde quem funcionam são está estão explique "
    "diferença "
    # the words of the key questions above that the agent makes for sections
    "sagt sagen sollte bericht devrait rapport debería informe dovrebbe rapporto zegt "
    "zeggen moeten rapport diz deveria dizer relatório".split()
)


def phrases(language: str | None) -> Phrases:
    """The run's phrases; English for a language ttdr has none for."""
    return PHRASES[output_language(language)]


def settle_language(ctx: ResearchContext, question: str) -> str:
    """The language the run writes in. Its config has the question's language from when the
    API opened the run; a context made without the API gets it here, once."""
    if ctx.config.language is None:
        ctx.config = ctx.config.with_question_language(question)
    return output_language(ctx.config.language)


def fallback_note(language: str | None) -> str | None:
    """What the run says once when its language has no phrases here, else None."""
    if language in LANGUAGES:
        return None
    return (
        f"The question is in {language_name(language)} ({language}), which ttdr has no report "
        f"phrases for: the plan and report headings are in English (supported: "
        f"{', '.join(LANGUAGES)}); the searches still use the question's own words."
    )


def written_in(text: str, language: str) -> bool:
    """Whether a text the model wrote (a query, a plan line) is in the run's language. English
    runs take everything: the default model writes English, and an English query the detector
    calls foreign is more often names and identifiers than another language."""
    if language == "en":
        return True
    detected = detect_language(text)
    return detected.code == language
