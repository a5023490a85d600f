"""Training of the causal world model: diffusion forcing, then ground-truth forcing (issue 6)."""
