"""Running a study: the launch, what `--resume` needs, probes, seeds per trial."""
