"""Ray Tune trainables: thin wrappers around `rankae`'s training engine.

`contract.py` says what a trial receives and reports (the study service imports it, and it
imports no Ray, so the CLI can plan a study before Ray's import-time settings are made);
`autoencoder.py` is the one trainable (a trial trains a group of >= 1 seeds); `faults.py`
holds the faults the reliability tests inject. Imports point one way: `trainables -> rankae`.
"""
