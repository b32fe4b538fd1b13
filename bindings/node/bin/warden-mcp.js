#!/usr/bin/env node
// warden-mcp -- an MCP server over a warden collection whose tools take
// identity from the OAuth token (HTTP) or from the command line (stdio),
// never from the model.  See README.md, "MCP server (warden-mcp)".
import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { Collection } from '../lib/index.js';
import { createVerifier, createHttpApp, createWardenMcpServer, DEFAULT_CLAIMS } from '../lib/mcp.js';

const USAGE = `usage: warden-mcp --collection DIR --jwks FILE|URL --issuer ISS --audience AUD --http HOST:PORT
                  [--user-claim sub] [--groups-claim groups] [--agent-claim azp] [--public-url URL] [--no-memory]
       warden-mcp --collection DIR --stdio --user NAME [--groups G1,G2] [--agent NAME] [--no-memory]

Streamable HTTP (POST /mcp): every request needs Authorization: Bearer <JWT>
signed by a key of the JWKS, with this iss and aud and an exp; the caller is
user:<sub> with group:<g> per entry of the groups claim, acting through the
agent user:<azp> when the token has an azp claim.
stdio: one local user fixed at start (no token).`;

function die(msg, code = 2) {
  process.stderr.write(`warden-mcp: ${msg}\n${code === 2 ? USAGE + '\n' : ''}`);
  process.exit(code);
}

let a;
try {
  ({ values: a } = parseArgs({
    options: {
      collection: { type: 'string' }, jwks: { type: 'string' }, issuer: { type: 'string' },
      audience: { type: 'string' }, http: { type: 'string' }, stdio: { type: 'boolean' },
      'user-claim': { type: 'string' }, 'groups-claim': { type: 'string' }, 'agent-claim': { type: 'string' },
      'public-url': { type: 'string' }, 'no-memory': { type: 'boolean' },
      user: { type: 'string' }, groups: { type: 'string' }, agent: { type: 'string' }, help: { type: 'boolean' },
    },
    strict: true,
  }));
} catch (e) {
  die(e.message);
}
if (a.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
if (!a.collection) die('--collection is required');
if (!!a.http === !!a.stdio) die('give exactly one of --http HOST:PORT and --stdio');

const memory = !a['no-memory'];
let collection;
try {
  // without the memory tools nothing writes: open read-only
  collection = await Collection.open(a.collection, { readOnly: !memory });
} catch (e) {
  die(`${a.collection}: ${e.message}`, 1);
}
if (collection.stats().embedder === 'none')
  die(`${a.collection}: the tools embed query text: set embedder.type (e.g. hash) in its warden.yaml`, 1);

if (a.stdio) {
  if (!a.user) die('--stdio needs --user NAME (the one local user)');
  if (a.agent !== undefined && a.agent === a.user)
    die(`ambiguous identity: --user and --agent are both '${a.user}' (a user and an agent must be different principals)`);
  const identity = Object.freeze({
    sub: a.user,
    principal: `user:${a.user}`,
    groups: (a.groups ? a.groups.split(',') : []).filter(Boolean).map((g) => `group:${g}`),
    agent: a.agent ? `user:${a.agent}` : undefined,
  });
  const server = createWardenMcpServer({ collection, identityOf: () => identity, memory });
  await server.connect(new StdioServerTransport());
  process.stderr.write(`warden-mcp: serving ${a.collection} over stdio as ${identity.principal}\n`);
} else {
  for (const k of ['jwks', 'issuer', 'audience']) if (!a[k]) die(`--${k} is required with --http`);
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(a.http);
  if (!m) die(`--http: expected HOST:PORT, got '${a.http}'`);
  const host = m[1].replace(/^\[|\]$/g, '');
  const claims = {
    user: a['user-claim'] ?? DEFAULT_CLAIMS.user,
    groups: a['groups-claim'] ?? DEFAULT_CLAIMS.groups,
    agent: a['agent-claim'] ?? DEFAULT_CLAIMS.agent,
  };
  const verifier = createVerifier({ jwks: a.jwks, issuer: a.issuer, audience: a.audience, claims });
  let listener;
  const app = createHttpApp({ collection, verifier, issuer: a.issuer, host, port: () => listener.address().port,
    publicUrl: a['public-url'], memory });
  listener = app.listen(Number(m[2]), host, () => {
    const { address, port } = listener.address();
    const h = address.includes(':') ? `[${address}]` : address;
    process.stderr.write(`warden-mcp: listening on http://${h}:${port}/mcp (collection ${a.collection})\n`);
  });
  listener.on('error', (e) => die(`--http ${a.http}: ${e.message}`, 1));
  const stop = () => listener.close(() => collection.close().then(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
