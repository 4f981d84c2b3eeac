"""The door: the unlock policy over recognized frames, liveness and back-off after denials."""
