"""JSON Schemas shipped with the tool: the inventory schema and OpenClaw config schemas per version."""
