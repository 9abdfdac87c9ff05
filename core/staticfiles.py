"""The static files storage outside DEBUG: whitenoise's compressed manifest storage (content-hashed names,
served with year-long immutable caching; gzip copies beside them), with the module references of the
page scripts and the viewer bundle rewritten to hashed names as well, so that no file a page loads is
fetched by a plain (short-cached) name.

Django's `support_js_module_import_aggregation` rewrites `import … from "./x.js";`, `export … from`,
`import "./x.js";` and `import("./x.js")`; this adds the bundle's worker address,
`new URL("./workers/computeWorker.js", import.meta.url)`, which esbuild writes for `new Worker(...)`.
A dynamic `import(name)` of a variable (the viewer bundle's address from the page's data-viewer-src,
itself written by `{% static %}`) is left as it is.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage

_WORKER_URL = (
    r"""(?P<matched>new\s+URL\(\s*["'](?P<url>\./[^"']+?\.js)["']\s*,\s*import\.meta\.url\s*\))""",
    """new URL("%(url)s", import.meta.url)""",
)


class HashedModulesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
    patterns = (*CompressedManifestStaticFilesStorage.patterns, ("*.js", (_WORKER_URL,)))
