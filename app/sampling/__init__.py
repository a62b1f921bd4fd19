"""Sampling: the sampler chain's parameters (checked) and the engine-side sampler."""
from .params import SAMPLING_OPTIONS, OptionError, SamplingParams, check_vocab
from .sampler import Sampler, fresh_seed

__all__ = ["SAMPLING_OPTIONS", "OptionError", "SamplingParams", "Sampler", "check_vocab", "fresh_seed"]
