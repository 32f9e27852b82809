"""The values that flow between the pipeline stages (inventory -> rules -> render -> plan -> apply): frozen
dataclasses and enums only, no I/O and no third-party imports. Not to be confused with `inventory/model.py`,
which is the parsed inventory itself."""
