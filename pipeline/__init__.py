"""Herald: a Kafka-native notification pipeline.

The package is a library: nothing here runs at import time. `pipeline.cli`
is the entry point, `pipeline.topology.wire` shows the whole flow.
"""

__version__ = "0.1.0"
