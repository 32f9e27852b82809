"""The project's test lab: real SSH hosts and real systemd hosts in namespaces on one machine."""

from .config import LabConfig
from .harness import Lab, LabError
from .hosts import HostCommandError, LabHost

__all__ = ["HostCommandError", "Lab", "LabConfig", "LabError", "LabHost"]
