"""The `minsheng` command line (Typer): database, server, demo city, imports, users, live simulation."""
