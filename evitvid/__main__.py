"""`python -m evitvid COMMAND ...`: see `evitvid.cli`."""
from evitvid.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
