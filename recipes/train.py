"""Train, evaluate or sweep a preference-conditioned policy.

python recipes/train.py fit --config recipes/weighted_meta.yaml
python recipes/train.py validate --config recipes/weighted_meta.yaml --ckpt_path <checkpoint>
python recipes/train.py predict --config recipes/weighted_meta.yaml --ckpt_path <checkpoint>
"""

from pareto_lightning.cli import main

if __name__ == "__main__":
    main()
