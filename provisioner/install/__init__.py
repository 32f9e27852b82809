"""Installing and upgrading OpenClaw itself at a pinned version: the controller cache and the host layout."""
