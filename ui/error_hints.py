"""What a user can do about a failed run, by the kind of error the store recorded."""

from __future__ import annotations

HINTS = {
    "RetrievalUnavailableError": (
        "Web search could not be reached and no local documents could answer. Start the "
        "research again with **Local documents only** and a documents folder, or with "
        "**Auto** once some documents are indexed."
    ),
    "ModelUnavailableError": "The model could not be found or loaded: see the **Models** page.",
    "DocsPathError": "A documents path does not exist: check the paths and start again.",
}


def hint_for(error: str | None) -> str | None:
    """Errors are stored as `TypeName: message`; the type name picks the hint."""
    if not error:
        return None
    return HINTS.get(error.split(":", 1)[0].strip())
