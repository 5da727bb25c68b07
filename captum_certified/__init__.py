"""captum-certified: certified-robust attributions for Captum."""

__version__ = "0.1.0"
