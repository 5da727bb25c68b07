"""Print the requirements of the named installed distributions that this interpreter's
environment does not meet, space-separated (nothing when all are met).

Usage: python .ci/unmet_requirements.py DIST [DIST ...]
"""

import sys
from importlib import metadata

from packaging.requirements import Requirement


def unmet(dist: str) -> list[str]:
    out = []
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra's requirement, or one for another platform
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            out.append(str(req))
            continue
        if not req.specifier.contains(version, prereleases=True):
            out.append(str(req))
    return out


if __name__ == "__main__":
    print(" ".join(sorted({r for d in sys.argv[1:] for r in unmet(d)})))
