"""The generative world model, its runtime, training loops and the Gymnasium envs."""
