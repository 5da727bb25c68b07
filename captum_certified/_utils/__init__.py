"""Private helpers shared across subpackages (not part of the public API)."""
