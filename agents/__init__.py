"""Policies, PPO, policy evaluation and ONNX export."""
