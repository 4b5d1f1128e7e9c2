"""Makes `adversarial_helpers` (next to this file) importable by the adversarial tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
