"""GenWorld's Gymnasium, vector and PettingZoo environments (docs/envs.md).

Importing this package stays light: env classes are loaded by Gymnasium from entry-point strings.
"""
