"""The statistics the engine's sequential and multi-setting runners stream into.

:func:`certify_sequentially` (examples draw chunks until their
:class:`~captum_certified.certify.CertificationTarget` is decided) and
:class:`SettingStatistics` (several transforms accumulated from one sampling pass) are what
:mod:`captum_certified.attr` drives; users reach them through ``attribute(..., stop_when=...)``
and ``attribute_settings``. This module is their one import path outside ``certify`` (no
module imports another subpackage's ``_core``).
"""

from captum_certified.certify._core.sequential import certify_sequentially
from captum_certified.certify._core.settings import SettingStatistics

__all__ = ["SettingStatistics", "certify_sequentially"]
