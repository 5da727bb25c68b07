"""captum-certified: certified-robust attributions for Captum."""

from captum_certified._utils.deprecation import CaptumCertifiedDeprecationWarning

__version__ = "0.1.0"

__all__ = ["CaptumCertifiedDeprecationWarning", "__version__"]
