"""Training: the data split, the trainers (model protocol and table: XGBoost, Horovod PyTorch),
evaluation, the model registry and the promotion decision. The flow is tasks/flows/training.py."""
