"""Evaluation: pairs, verification, identification, commands, wake, liveness, benchmarks, floors."""
