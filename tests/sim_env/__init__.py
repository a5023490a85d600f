"""Tests of the generative world runtime (sim_env)."""
