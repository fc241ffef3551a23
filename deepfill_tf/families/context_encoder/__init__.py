"""Context Encoders (Pathak et al., CVPR 2016) family: pathak22/context-encoder."""
