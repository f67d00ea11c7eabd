"""The method, no Ray: one run's `RunConfig`, the models and bottlenecks (each equation of the
paper one named function), rank measures, data, the `Trainer` (a plain iterator of epoch
records) and its vectorised form, downstream evaluation and FID. Of this project it
imports only `tools.fid_weights` (FID's Inception weights, built offline); the trainables,
the study service and the analysis build on it."""
