"""The provider simulator: the providers' endpoints, faults, the SMTP sink."""
