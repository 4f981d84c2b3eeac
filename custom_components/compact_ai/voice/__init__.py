"""Voice commands in Home Assistant: manager, phrases store, host training and services."""
