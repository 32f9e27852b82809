"""Schema checks and isolation rules: each turns the inventory into located Diagnostics."""
