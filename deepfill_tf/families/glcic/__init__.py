"""GLCIC (Iizuka, Simo-Serra & Ishikawa, SIGGRAPH 2017) family: host-side pre/post-processing
of satoshiiizuka/siggraph2017_inpainting `inpaint.lua`."""
