"""minsheng (民声): a platform for citizen-request hotlines."""
