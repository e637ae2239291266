"""`slimage minify`: shrink an image to what its application uses, traced while it runs
and verified by running it again. `api.minify` is the entry point; the modules are the
steps (session + trace + probe, closure + packages, write, verify, report)."""
