"""The Kafka side: catalog, codecs, admin, the local broker, Faust plumbing."""
