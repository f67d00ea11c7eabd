"""Where the study service meets Ray Tune and MLflow."""
