import sys
from pathlib import Path

# Make the tests' shared helpers (tests/_digits.py, ...) importable as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))
