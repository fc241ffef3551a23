"""Keras 3 layers of the DeepFill family. Each module holds one layer (or one layer pair)."""
