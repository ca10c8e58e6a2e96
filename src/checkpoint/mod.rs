//! Reading and writing `torch.save` checkpoints and safetensors files.
