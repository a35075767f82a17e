"""JSON Schema of the camactor actor keywords, shipped as package data."""
