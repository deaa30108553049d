"""What the JSON API and the pages share over HTTP: transactions in one thread, the caller, limits."""
