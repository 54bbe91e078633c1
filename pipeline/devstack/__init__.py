"""Local processes (simulator and workers as children) and the kill drill."""
