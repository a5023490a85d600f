"""Evaluation of generative worlds against MuJoCo ground truth at the same poses (issue 6)."""
