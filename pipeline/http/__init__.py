"""The HTTP side: the API, its authentication, the provider webhook receivers."""
