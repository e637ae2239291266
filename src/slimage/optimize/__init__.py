"""`slimage optimize`: the article's experiment on the user's own app.

Build every variant of an app (as written, fixed, multi-stage, distroless, musl,
minified), run each under slimage's runtime with the same probes, measure it, recommend
one and write its Dockerfile. `api.optimize` is the entry point; the modules are the
steps:

- `appfiles`: what the app needs at run time, found from the files its own layers added;
- `variants`: the Dockerfiles generated from that;
- `measure`: size, layers, files, surface, compat, and a probed run of one variant;
- `advise`: the recommendation and the table;
- `report_html`: one self-contained page (also `slimage analyze --html`).
"""
