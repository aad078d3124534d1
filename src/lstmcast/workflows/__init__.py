"""What a user runs, built on the layers below: the `Forecaster`, its model files, a run
directory (`runs`), the benchmark protocol and hyperparameter tuning."""
