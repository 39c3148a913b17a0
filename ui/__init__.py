"""The Streamlit research UI. Only this package imports streamlit; it talks to `ttdr.api`."""
