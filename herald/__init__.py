"""The composition root: the wiring, the worker, `herald up` and the command line.

The one place that knows every part: it imports the agents and the library (`pipeline`);
nothing imports it back.
"""
