"""Model families, one home each: ``deepfill_tf/families/<family>/`` declares everything the
rest of the package needs to know about a family (``deepfill_tf.registry.Family``).

A family's module registers it on import; ``deepfill_tf.registry.FAMILY_MODULES`` lists the
built-in ones. See docs/families.md.
"""
