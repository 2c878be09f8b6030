"""Credential sources: where tokens come from (environment, files, the OS keyring), and asking a site about them."""
