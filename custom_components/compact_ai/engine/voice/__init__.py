"""Voice: audio, speech features, command sets, wake phrases and training them from speech."""
