// Bundles frontend/viewer.js (Cornerstone3D core + tools; its modules loader, mount, sync,
// controls, marks; and a copy of static/js/dom.js, the helpers the page scripts share) into
// static/viewer/viewer.js, one ES module, plus the tools' compute worker in static/viewer/workers/.
// Copies plotly.js's cartesian partial bundle (npm plotly.js-cartesian-dist-min: scatter, box, bar,
// heatmap…; the pages draw scatter and box) to static/vendor/plotly/plotly.min.js, 1.3 MB instead of
// the full bundle's 4.8 MB. Then checks that the page scripts (static/js/*.js, served as they are) parse and that every
// name they import exists.
//
//   node frontend/build.mjs          (run by `make install` after `npm ci`)
//
// Cornerstone3D is ESM only and imports many bare @kitware/vtk.js paths, so it needs a
// bundler. Node built-ins that codec glue and vtk.js reach for are aliased to an empty
// stub. No source maps and no sourceMappingURL comments: whitenoise's compressed storage
// (and the manifest storage) fail collectstatic on a comment that names a missing map.
import { copyFileSync, mkdirSync, rmSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "static", "viewer");
const stub = join(root, "frontend", "node-stub.js");
// Reached only by code paths a browser never runs (file writers, Node fallbacks).
const NODE_BUILTINS = ["fs", "path", "url", "crypto", "events", "stream", "util", "buffer", "zlib", "os"];

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

// @cornerstonejs/tools starts its compute worker (segmentation statistics, contours) with
// new Worker(new URL("../workers/computeWorker.js", import.meta.url)); esbuild leaves that
// URL alone. The worker is bundled on its own into static/viewer/workers/ and the URL is
// pointed there, so it is served same-origin next to viewer.js. The worker's own bundle holds the same
// (unused) code, whose URL resolves to the worker itself: there it is `import.meta.url`, so that the
// static storage, which rewrites relative URLs to hashed names (core/staticfiles.py), finds no file
// naming itself (whose hash would change with every rewrite).
const workerUrlPlugin = (replacement) => ({
  name: "compute-worker-url",
  setup(build) {
    build.onLoad({ filter: /registerComputeWorker\.js$/ }, async (args) => {
      const source = readFileSync(args.path, "utf8");
      const patched = source.replace("new URL('../workers/computeWorker.js', import.meta.url)", replacement);
      if (patched === source) throw new Error(`compute worker URL not found in ${args.path}`);
      return { contents: patched, loader: "js" };
    });
  },
});

const common = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  sourcemap: false,
  legalComments: "none",
  splitting: false, // one file per entry: relative worker URLs stay valid
  assetNames: "assets/[name]-[hash]",
  loader: { ".wasm": "file" },
  alias: Object.fromEntries(NODE_BUILTINS.flatMap((name) => [[name, stub], [`node:${name}`, stub]])),
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
  metafile: true,
};
const results = await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: { viewer: join(root, "frontend", "viewer.js") },
    outdir,
    plugins: [workerUrlPlugin("new URL('./workers/computeWorker.js', import.meta.url)")],
  }),
  esbuild.build({
    ...common,
    entryPoints: {
      computeWorker: join(root, "node_modules", "@cornerstonejs", "tools", "dist", "esm", "workers", "computeWorker.js"),
    },
    outdir: join(outdir, "workers"),
    plugins: [workerUrlPlugin("new URL(import.meta.url)")],
  }),
]);

// Guard: nothing in the output may point at a source map.
for (const name of readdirSync(outdir, { recursive: true })) {
  const file = join(outdir, String(name));
  if (file.endsWith(".js") && readFileSync(file, "utf8").includes("sourceMappingURL")) {
    throw new Error(`${name} has a sourceMappingURL comment; collectstatic would fail on it`);
  }
}
// The page scripts are served unbundled (<script type="module">); bundling them in memory is the
// check that each one parses and that what it imports exists.
const pageDir = join(root, "static", "js");
await esbuild.build({
  entryPoints: readdirSync(pageDir).filter((name) => name.endsWith(".js")).map((name) => join(pageDir, name)),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"], // top-level await (case_viewer.js)
  write: false,
  outdir: join(root, "var", "page-check"),
  logLevel: "warning",
  // The viewer bundle is imported at run time from an address the page gives (data-viewer-src).
  logOverride: { "unsupported-dynamic-import": "silent" },
});

// plotly.js: the cartesian partial bundle, as published (already minified).
const plotlyDir = join(root, "static", "vendor", "plotly");
const plotlySource = join(root, "node_modules", "plotly.js-cartesian-dist-min", "plotly-cartesian.min.js");
rmSync(plotlyDir, { recursive: true, force: true });
mkdirSync(plotlyDir, { recursive: true });
copyFileSync(plotlySource, join(plotlyDir, "plotly.min.js"));
if (readFileSync(plotlySource, "utf8").includes("sourceMappingURL")) {
  throw new Error("plotly's bundle has a sourceMappingURL comment; collectstatic would fail on it");
}

const outputs = results.flatMap((result) => Object.values(result.metafile.outputs));
const bytes = outputs.reduce((sum, out) => sum + out.bytes, 0);
console.log(`static/viewer/: ${outputs.length} file(s), ${(bytes / 1e6).toFixed(2)} MB`);
console.log(`static/vendor/plotly/plotly.min.js: ${(statSync(plotlySource).size / 1e6).toFixed(2)} MB`);
