"""Rollout playbooks shipped with the tool; default.yaml is the one `apply` uses without --playbook."""
