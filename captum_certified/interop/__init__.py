"""Interoperability with other explanation toolkits (Quantus)."""

from captum_certified.interop._core.quantus_adapter import quantus_explain_func

__all__ = ["quantus_explain_func"]
