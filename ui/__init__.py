"""The Streamlit incident UI; it reads through analyzer.source only."""
