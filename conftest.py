"""Repository-wide pytest setup: the names the package's doctests use (tests/_doctest_namespace.py).

It lives at the root because ``--doctest-modules`` collects ``captum_certified/``, outside
``tests/``; ``tests`` is on ``sys.path`` through pytest's ``pythonpath`` setting.
"""

pytest_plugins = ["_doctest_namespace"]
