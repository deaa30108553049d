"""The trade's rules as plain Python: states, transitions, roles, masking. No web or database imports."""
