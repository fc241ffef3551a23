"""Shared test harness for layers and models (used by tests/ and by downstream ports)."""

from deepfill_tf.testing.harness import run_layer_test, run_model_test

__all__ = ["run_layer_test", "run_model_test"]
