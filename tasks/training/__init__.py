"""Training: data windows, trainers (XGBoost, Horovod PyTorch), evaluation, registry, gate."""
