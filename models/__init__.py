"""rankkit.models: ARM and RAD reward models on HF causal-LM backbones, their training and guided decoding."""
