"""Models: the active model, its family and device, the cache, and which presets it holds."""

from __future__ import annotations

import streamlit as st

from backends.llm.families import FAMILIES
from backends.llm.registry import model_statuses, pick_device, pick_dtype
from ttdr.config import Settings
from ttdr.models import DEFAULT_MODEL
from ui import icons
from ui.model_check import check_model
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


def decoding(family_name: str | None) -> str:
    if family_name not in FAMILIES:
        return "unknown"
    return FAMILIES[family_name].facts.describe()


settings = Settings()
st.title("Models")
active = check_model(settings.model, settings.model_cache)
device = pick_device(settings.device)
dtype = (
    str(pick_dtype(device)).removeprefix("torch.") if settings.dtype == "auto" else settings.dtype
)

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
    "Decoding": decoding(active.family),
    "Device": f"{device} ({settings.device} requested) · weights {dtype}",
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
        "name": s.preset.name + (" (default)" if s.preset.name == DEFAULT_MODEL else ""),
        "family": s.preset.family,
        "decoding": decoding(s.preset.family),
        "downloaded": STATE_LABELS[check_model(s.preset.name, settings.model_cache).state],
        "location": str(s.folder),
        "about": s.preset.description,
    }
    for s in model_statuses(settings.model_cache)
]
# A static table renders Markdown in its cells: folder names like Fast_dLLM_v2_7B are escaped.
st.table(
    [{key: escape_markdown(value) for key, value in row.items()} for row in rows], hide_index=True
)
st.caption(
    "No model hub is reachable from ttdr: put a downloaded checkpoint folder at its location, "
    "or give any local checkpoint folder of a known family as the model."
)
