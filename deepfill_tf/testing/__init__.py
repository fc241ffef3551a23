"""Shared test harness for layers, models and model families (used by tests/ and by
downstream ports)."""

from deepfill_tf.testing.family import run_family_test
from deepfill_tf.testing.harness import run_layer_test, run_model_test

__all__ = ["run_family_test", "run_layer_test", "run_model_test"]
