"""`groundwork lab`: each backend fundamental as an experiment on the running mesh.

An experiment compares its variants side by side in one run (the machine is noisy),
bounds its own load and time, cleans up what it changed, and returns an Outcome: a
table, figures, a plot and a short text on what the result shows and why."""
