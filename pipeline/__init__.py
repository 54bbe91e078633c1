"""Herald: a Kafka-native notification pipeline.

The package is a library: nothing here runs at import time. `herald.cli`
is the entry point, `herald.topology.wire` shows the whole flow.
"""

__version__ = "0.9.0"
