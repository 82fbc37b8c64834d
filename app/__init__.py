"""The composition root: the `watchkeeper` command, the role table and `run` wire the spine
(watchkeeper/) and the feature packages together. Nothing imports app/."""
