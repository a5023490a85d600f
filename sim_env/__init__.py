"""The generative world model, its runtime, training loops and the Gymnasium envs.

Importing the package registers GenWorld/Navigate-v0, GenWorld/NavigateContinuous-v0 and
GenWorld/Manipulate-v0 (entry-point strings only: torch and MuJoCo load when an env is made).
"""

from sim_env.envs.registration import register_envs

register_envs()
