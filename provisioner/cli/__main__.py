"""`python -m provisioner.cli ...`: the `provision` program."""

import sys

from provisioner.cli.main import main

sys.exit(main())
