// mcp.js -- warden-mcp: an MCP server (the official @modelcontextprotocol/sdk)
// whose retrieval tools take identity from the OAuth access token, never
// from the model.
//
// Over Streamable HTTP it is an OAuth 2.1 resource server: every request
// carries `Authorization: Bearer <JWT>`, verified against a JWKS (signature,
// iss, aud, exp/nbf) with jose, else 401 with a WWW-Authenticate header that
// points at the protected-resource metadata (RFC 9728).  The human is
// user:<sub> with group:<g> for each entry of the groups claim; the agent
// is user:<azp> (the OAuth client) when the token names one: every search
// is then on behalf of the human by the agent, and a chunk comes back only
// if both may read it.  Over stdio the identity is fixed when the server
// starts (a local single-user setup).
//
// The tools' input schemas have no principal, group or agent field, and
// arguments a schema does not declare are refused.  The memory area
// (/users/<sub>/...) answers only its owner: see memoryGuard().
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, errors as joseErrors } from 'jose';
import { readFileSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { WardenError } from './errors.js';

export const DEFAULT_CLAIMS = Object.freeze({ user: 'sub', groups: 'groups', agent: 'azp' });
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const NAME_RE = /^[^\s\x00-\x1f\x7f]{1,256}$/u;

/** A JWKS from a file (re-read when the file changes) or an https URL. */
function jwksSource(jwks) {
  if (typeof jwks === 'object' && jwks && Array.isArray(jwks.keys)) return createLocalJWKSet(jwks);
  if (typeof jwks === 'string' && /^https?:\/\//.test(jwks)) return createRemoteJWKSet(new URL(jwks));
  let mtime = -1, set = null;
  return (header, token) => {
    const m = statSync(jwks).mtimeMs;
    if (m !== mtime) {
      set = createLocalJWKSet(JSON.parse(readFileSync(jwks, 'utf8')));
      mtime = m;
    }
    return set(header, token);
  };
}

/** The warden identity a verified token's claims name. Throws InvalidTokenError. */
export function identityFromClaims(payload, claims = DEFAULT_CLAIMS) {
  const c = { ...DEFAULT_CLAIMS, ...claims };
  const sub = payload[c.user];
  if (typeof sub !== 'string' || !NAME_RE.test(sub))
    throw new InvalidTokenError(`the token's ${c.user} claim is not a usable user name`);
  let groups = payload[c.groups] ?? [];
  if (typeof groups === 'string') groups = groups.split(/\s+/).filter(Boolean);
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string' && NAME_RE.test(g)))
    throw new InvalidTokenError(`the token's ${c.groups} claim must be a list of group names`);
  const azp = payload[c.agent];
  if (azp !== undefined && (typeof azp !== 'string' || !NAME_RE.test(azp)))
    throw new InvalidTokenError(`the token's ${c.agent} claim is not a usable client name`);
  // user:<sub> and the agent user:<azp> would be one warden principal: the
  // human and the agent could not be told apart (and the agent's own
  // identity could read the human's memory notes), so such a token is refused.
  if (azp === sub)
    throw new InvalidTokenError(`ambiguous identity: the token's ${c.user} and ${c.agent} claims are both '${sub}' ` +
      '(a user and an agent must be different principals)');
  return {
    sub,
    principal: `user:${sub}`,
    groups: groups.map((g) => `group:${g}`),
    agent: azp !== undefined ? `user:${azp}` : undefined,
  };
}

/**
 * An OAuthTokenVerifier (the SDK's interface) over jose: signature against
 * the JWKS, iss, aud, exp (required) and nbf, asymmetric algorithms only.
 */
export function createVerifier({ jwks, issuer, audience, claims = DEFAULT_CLAIMS, clockTolerance = 5 }) {
  if (!jwks || !issuer || !audience) throw new Error('createVerifier: jwks, issuer and audience are required');
  const keys = jwksSource(jwks);
  return {
    async verifyAccessToken(token) {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer, audience, algorithms: ALGORITHMS, clockTolerance, requiredClaims: ['exp'],
        }));
      } catch (e) {
        const why = e instanceof joseErrors.JWTExpired ? 'the token has expired'
          : e instanceof joseErrors.JWTClaimValidationFailed ? `the token's ${e.claim} claim is not accepted`
          : e instanceof joseErrors.JWSSignatureVerificationFailed || e instanceof joseErrors.JWKSNoMatchingKey ? 'the token signature does not verify'
          : 'the token is not a valid JWT for this server';
        throw new InvalidTokenError(why);
      }
      const id = identityFromClaims(payload, claims);
      return {
        token,
        clientId: payload[claims.agent ?? 'azp'] ?? payload.client_id ?? '',
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
        expiresAt: payload.exp,
        extra: { identity: id },
      };
    },
  };
}

const Filter = z.record(z.string(), z.any()).describe(
  'metadata filter, Mongo dialect ({"year": {"$gte": 2024}}) or Bedrock dialect ({"equals": {"key": "k", "value": "v"}})');

function hitView(h) {
  return { doc_id: h.doc_id, chunk: h.chunk, score: h.score, text: h.text, source: h.source, namespace: h.namespace, metadata: h.metadata };
}

function hitText(h) {
  return `[${h.doc_id}#${h.chunk}] score ${h.score.toFixed(4)} source ${h.source}\n${h.text}`;
}

function toolError(e) {
  const msg = e instanceof WardenError ? `${e.codeName}: ${e.message}` : String(e?.message ?? e);
  return { isError: true, content: [{ type: 'text', text: msg }] };
}

export const DEFAULT_MEMORY_ROOT = '/users';

/** The memory namespace of a user: /users/<sub> (sub percent-encoded). */
export function memoryNamespace(sub, root = DEFAULT_MEMORY_ROOT) {
  return `${root}/${encodeURIComponent(sub).replace(/\./g, '%2E')}`;
}

/** ns equals prefix or lies below it, by path segment (as warden matches). */
function under(ns, prefix) {
  if (typeof ns !== 'string') return false;
  const n = ns.replace(/\/+$/, '') || '/', p = prefix.replace(/\/+$/, '') || '/';
  return p === '/' ? n.startsWith('/') : n === p || n.startsWith(`${p}/`);
}

/**
 * The memory guard (a post-filter inside the server, on top of warden's own
 * ACL checks).  A note's stored ACL is `allow: [user:<sub>, user:<azp>]`, an
 * OR, so the agent's identity alone would pass it; the guard makes the
 * memory area answer only its owner:
 *  - nothing under the memory root unless under the caller's own
 *    <root>/<encoded sub> subtree;
 *  - for a caller acting through an agent, only the notes that agent wrote
 *    (metadata.agent equal to the caller's azp);
 *  - the human alone (no agent) reads all of their own notes.
 */
export function memoryGuard(id, root = DEFAULT_MEMORY_ROOT) {
  const own = memoryNamespace(id.sub, root);
  const agentName = id.agent ? id.agent.replace(/^user:/, '') : undefined;
  const visible = (h) => {
    if (!under(h.namespace, root)) return true;
    if (!under(h.namespace, own)) return false;
    if (agentName === undefined) return true;
    return h.metadata?.kind === 'memory' && h.metadata?.agent === agentName;
  };
  // The namespaces to ask warden for: a prefix inside another user's memory
  // is dropped, the memory root itself (or a prefix between it and the
  // caller's own subtree) becomes the caller's own subtree; a prefix above
  // the root (e.g. "/") stays and is left to the post-filter.
  const narrow = (namespaces) => {
    if (!namespaces) return namespaces;
    const out = [];
    for (const p of namespaces) {
      if (!under(p, root)) out.push(p);
      else if (under(p, own)) out.push(p);
      else if (under(own, p)) out.push(own);
    }
    return [...new Set(out)];
  };
  return { own, visible, narrow };
}

/**
 * An McpServer with warden's tools.  identityOf(extra) returns the caller's
 * identity ({sub, principal, groups, agent}) for one tool call -- from the
 * verified token (HTTP) or fixed at start (stdio); never from arguments.
 * embed(text) -> number[] (optional): query embeddings; without it the
 * collection's own embedder is used (embedder.type in warden.yaml).
 */
export function createWardenMcpServer({ collection, identityOf, embed, memory = true, name = 'warden',
  memoryRoot = DEFAULT_MEMORY_ROOT }) {
  if (typeof memoryRoot !== 'string' || !/^\/[^\s]*[^\s/]$/.test(memoryRoot))
    throw new Error(`memoryRoot: expected an absolute namespace such as "/users", got ${JSON.stringify(memoryRoot)}`);
  const server = new McpServer({ name, version: '0.1.0' }, { capabilities: { tools: {} } });
  const who = (extra) => {
    const id = identityOf(extra);
    if (!id || !id.principal) throw new Error('no authenticated identity for this request');
    return id;
  };
  const rawSearch = async (id, text, opts) => {
    const o = { principal: id.principal, groups: id.groups, agent: id.agent, ...opts };
    return embed ? collection.query(await embed(text), o) : collection.queryText(text, o);
  };
  const MAX_FETCH = 10000; // WARDEN_MAX_K
  // warden's answer, minus what the memory guard hides; over-fetches (k*4,
  // k*16, ...) so that k hits still come back when enough visible ones exist.
  const search = async (id, text, { k, filter, namespaces }) => {
    const g = memoryGuard(id, memoryRoot);
    const ns = g.narrow(namespaces);
    if (ns && ns.length === 0) {
      // every prefix asked for is someone else's memory: nothing, at the
      // revision of a (guarded) query of the caller's own subtree
      const r = await rawSearch(id, text, { k: 1, filter, namespaces: [g.own] });
      return Object.assign([], { revision: r.revision, degraded: r.degraded });
    }
    let kq = k, raw, kept;
    for (;;) {
      raw = await rawSearch(id, text, { k: kq, filter, namespaces: ns });
      kept = raw.filter(g.visible);
      if (kept.length >= k || raw.length < kq || kq >= MAX_FETCH) break;
      kq = Math.min(MAX_FETCH, kq * 4);
    }
    return Object.assign(kept.slice(0, k), { revision: raw.revision, degraded: raw.degraded });
  };

  server.registerTool('search', {
    title: 'Search the knowledge base',
    description: 'Semantic search over the documents the signed-in user (and this agent) may read. ' +
      'Returns the best-matching chunks with their text, source, score and metadata.',
    inputSchema: z.object({
      query: z.string().min(1).max(8192).describe('what to look for, in natural language'),
      k: z.number().int().min(1).max(50).optional().describe('how many chunks (default 5)'),
      filter: Filter.optional(),
      namespaces: z.array(z.string().min(1).max(256)).max(16).optional()
        .describe('namespace prefixes to search under, e.g. ["/eng"]'),
    }).strict(),
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, async (args, extra) => {
    try {
      const hits = await search(who(extra), args.query, { k: args.k ?? 5, filter: args.filter, namespaces: args.namespaces });
      return {
        content: hits.length ? hits.map((h) => ({ type: 'text', text: hitText(h) })) : [{ type: 'text', text: 'no results' }],
        structuredContent: { results: hits.map(hitView), revision: hits.revision, degraded: hits.degraded },
      };
    } catch (e) {
      return toolError(e);
    }
  });

  server.registerTool('fetch', {
    title: 'Fetch one document',
    description: 'The full text of one document by doc_id (as returned by search), if the signed-in user ' +
      '(and this agent) may read it.',
    inputSchema: z.object({ doc_id: z.string().min(1).max(1024).describe('the doc_id of a search result') }).strict(),
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, async (args, extra) => {
    try {
      const id = who(extra);
      const all = await collection.fetch(args.doc_id, { principal: id.principal, groups: id.groups, agent: id.agent });
      const hits = Object.assign(all.filter(memoryGuard(id, memoryRoot).visible), { revision: all.revision });
      if (!hits.length)
        return { isError: true, content: [{ type: 'text', text: `${args.doc_id}: no such document, or not readable by you` }] };
      const h = hits[0];
      return {
        content: [{ type: 'text', text: `${h.doc_id} (${h.source})\n\n${hits.map((x) => x.text).join('\n\n')}` }],
        structuredContent: {
          doc_id: h.doc_id, source: h.source, namespace: h.namespace, metadata: h.metadata,
          chunks: hits.map((x) => ({ chunk: x.chunk, text: x.text })), revision: hits.revision,
        },
      };
    } catch (e) {
      return toolError(e);
    }
  });

  if (memory) {
    server.registerTool('remember', {
      title: 'Remember a note',
      description: "Store a note in the signed-in user's own memory namespace (/users/<user>), " +
        'readable by that user and by the agent that wrote it.',
      inputSchema: z.object({
        text: z.string().min(1).max(16384).describe('the note'),
        topic: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/).optional()
          .describe('optional sub-namespace, e.g. "preferences"'),
      }).strict(),
    }, async (args, extra) => {
      try {
        const id = who(extra);
        const ns = memoryNamespace(id.sub, memoryRoot) + (args.topic ? `/${args.topic}` : '');
        const docId = `memory:${id.sub}:${randomUUID()}`;
        const allow = [id.principal, ...(id.agent ? [id.agent] : [])];
        const doc = { doc_id: docId, source: `mcp://memory/${encodeURIComponent(id.sub)}/${docId.split(':').pop()}`,
          namespace: ns, metadata: { kind: 'memory', ...(id.agent ? { agent: id.agent.replace(/^user:/, '') } : {}) }, acl: { allow, deny: [] }, chunks: [args.text] };
        const rev = await collection.upsert([doc], embed ? [await embed(args.text)] : null);
        return { content: [{ type: 'text', text: `remembered as ${docId}` }], structuredContent: { doc_id: docId, namespace: ns, revision: rev } };
      } catch (e) {
        return toolError(e);
      }
    });

    server.registerTool('recall', {
      title: 'Recall notes',
      description: "Search the signed-in user's own memory namespace.",
      inputSchema: z.object({
        query: z.string().min(1).max(8192),
        k: z.number().int().min(1).max(50).optional(),
        topic: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/).optional(),
      }).strict(),
      annotations: { readOnlyHint: true, openWorldHint: false },
    }, async (args, extra) => {
      try {
        const id = who(extra);
        const ns = memoryNamespace(id.sub, memoryRoot) + (args.topic ? `/${args.topic}` : '');
        const hits = await search(id, args.query, { k: args.k ?? 5, namespaces: [ns] });
        return {
          content: hits.length ? hits.map((h) => ({ type: 'text', text: h.text })) : [{ type: 'text', text: 'nothing remembered' }],
          structuredContent: { results: hits.map(hitView), revision: hits.revision },
        };
      } catch (e) {
        return toolError(e);
      }
    });
  }
  return server;
}

/**
 * The Streamable HTTP app (express): POST /mcp behind bearer auth,
 * stateless (a fresh server and transport per request, so no session
 * outlives the token that opened it), and the protected-resource metadata
 * at /.well-known/oauth-protected-resource.
 */
export function createHttpApp({ collection, verifier, issuer, host = '127.0.0.1', port, publicUrl, embed, memory, allowedHosts,
  memoryRoot }) {
  const app = createMcpExpressApp({ host, allowedHosts });
  const base = () => publicUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port()}`;
  const metadataPath = '/.well-known/oauth-protected-resource';
  app.get([metadataPath, `${metadataPath}/mcp`], (_req, res) => {
    res.json({ resource: `${base()}/mcp`, authorization_servers: [issuer], bearer_methods_supported: ['header'],
      resource_name: 'warden' });
  });
  const auth = (req, res, next) =>
    requireBearerAuth({ verifier, resourceMetadataUrl: `${base()}${metadataPath}/mcp` })(req, res, next);
  app.all('/mcp', auth, async (req, res) => {
    if (req.method !== 'POST') {
      res.status(405).set('Allow', 'POST').json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed (stateless server: POST only)' }, id: null });
      return;
    }
    const server = createWardenMcpServer({ collection, identityOf: (extra) => extra?.authInfo?.extra?.identity, embed, memory,
      ...(memoryRoot !== undefined ? { memoryRoot } : {}) });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (e) {
      if (!res.headersSent) res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: String(e?.message ?? e) }, id: null });
    }
  });
  return app;
}
