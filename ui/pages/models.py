"""Models: the active model, its family and device, the cache, and which presets it holds."""

from __future__ import annotations

import streamlit as st

from ttdr.api import check_model, list_models, model_decoding, runtime_device
from ttdr.config import Settings
from ui import icons
from ui.safe_markdown import escape_markdown

STATE_LABELS = {
    "ready": "downloaded",
    "will_download": "not downloaded (fetched on first use)",
    "missing": "not in the cache",
    "invalid": "cannot be used",
}
STATE_ICONS = {
    "ready": icons.READY,
    "will_download": icons.DOWNLOAD,
    "missing": icons.ERROR,
    "invalid": icons.ERROR,
}


settings = Settings()
st.title("Models")
active = check_model(settings.model, settings.model_cache)

st.subheader("Active model")
label = f"{STATE_ICONS[active.state]} {STATE_LABELS[active.state]}"
st.markdown(f"**{escape_markdown(settings.model)}** — {label}")
if active.state == "ready":
    st.caption(escape_markdown(active.message))
elif active.state == "will_download":
    st.info(escape_markdown(active.message))
else:
    st.error(escape_markdown(active.message))
facts = {
    "Family": active.family or "unknown",
    "Decoding": model_decoding(settings.model, active.family),
    "Device": runtime_device(settings),
    "Model cache": str(settings.model_cache),
}
for name, value in facts.items():
    st.markdown(f"**{name}:** {escape_markdown(value)}")
st.caption(
    "Change the model with the TTDR_MODEL setting, or per run on New research; the device "
    "with TTDR_DEVICE."
)

st.subheader("Presets")
rows = [
    {
        "name": entry.name + (" (default)" if entry.default else ""),
        "family": entry.family,
        "decoding": entry.decoding,
        "downloaded": STATE_LABELS[check_model(entry.name, settings.model_cache).state],
        "location": str(entry.folder),
        "about": entry.description,
    }
    for entry in list_models(settings.model_cache)
]
# A static table renders Markdown in its cells: folder names like Fast_dLLM_v2_7B are escaped.
st.table(
    [{key: escape_markdown(value) for key, value in row.items()} for row in rows], hide_index=True
)
st.caption(
    "No model hub is reachable from ttdr: put a downloaded checkpoint folder at its location, "
    "or give any local checkpoint folder of a known family as the model."
)
