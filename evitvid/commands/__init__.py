"""The command line's commands, one module each (`python -m evitvid COMMAND`, see `evitvid.cli`).

A command module declares its arguments (`configure(parser)`) and runs them (`run(args) -> int`):
it parses, calls the library and prints. Work that a notebook or another command could want
lives in the library, not here.
"""
