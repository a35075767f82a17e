"""Actor commands, one module per command."""
