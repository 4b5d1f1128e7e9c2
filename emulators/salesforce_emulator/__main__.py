"""`python -m emulators.salesforce_emulator …` = `paysync emulate salesforce …`."""

import sys

from emulators.salesforce_emulator.cli import main

sys.exit(main(sys.argv[1:]))
