"""``python -m captum_certified`` (used with ``torchrun -m captum_certified ...``)."""

from captum_certified.cli._main import console_main

if __name__ == "__main__":
    console_main()
