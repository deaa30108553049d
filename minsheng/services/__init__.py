"""Use cases: one transaction each; they load rows, ask the domain, and write rows with their timeline."""
