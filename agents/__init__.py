"""One module per topology stage: thin agents that decode, call `pipeline`, emit.

Agents are plain async functions taking their dependencies as arguments;
`herald.topology.wire` binds them to the app. Nothing is registered here.
"""
