"""Runtime: the model pack, the inference backends and which of them this machine has."""
