"""Command-line interface: ``deepfill-tf <subcommand>``. Each subcommand is a thin module."""
