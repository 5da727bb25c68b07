"""The package's deprecations raise one warning class, attributed to the caller's line.

Only the attribution engine still has deprecated spellings; this file goes when they do.
"""

import warnings

import pytest

import captum_certified
from captum_certified import CaptumCertifiedDeprecationWarning
from captum_certified._utils.validation import warn_deprecated


def test_one_public_class_subclassing_deprecation_warning():
    assert captum_certified.CaptumCertifiedDeprecationWarning is CaptumCertifiedDeprecationWarning
    assert issubclass(CaptumCertifiedDeprecationWarning, DeprecationWarning)


def test_deprecation_warns_with_the_class_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_deprecated("`old` is deprecated; use `new`")
    (warning,) = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert warning.category is CaptumCertifiedDeprecationWarning
    assert "use `new`" in str(warning.message)
    assert warning.filename == __file__  # not a line inside the package


def test_the_suite_turns_unexpected_deprecations_into_errors():
    # pyproject's filterwarnings makes the package's own deprecations errors outside pytest.warns
    with pytest.raises(CaptumCertifiedDeprecationWarning):
        warn_deprecated("`old` is deprecated")
    with pytest.warns(CaptumCertifiedDeprecationWarning, match="old"):
        warn_deprecated("`old` is deprecated")
