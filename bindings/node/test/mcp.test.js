// mcp.test.js -- warden-mcp as a real child process on 127.0.0.1, driven by
// the MCP SDK's own client, with tokens signed by a test key (jose
// generateKeyPair; the JWKS file is written here): different users and
// agents get different answers from one collection; expired, wrongly
// signed, wrong-audience, wrong-issuer and missing tokens are refused with
// 401 and WWW-Authenticate; an agent whose own permissions exclude a
// document never returns it, even for a user who may read it; a revoke
// with `warden acl set` (the real CLI) is visible to the next tool call;
// arguments the schemas do not declare (a principal, say) are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Collection } from '../lib/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, '../bin/warden-mcp.js');
const WARDEN = process.env.WARDEN_CLI ?? resolve(here, '../../../build/warden');
const ISS = 'https://idp.example.test';
const AUD = 'warden-mcp-test';

let tmp, dir, url, child, key, otherKey, stderr = '';

const DOCS = [
  { doc_id: 'payroll', source: 's3://corp/hr/payroll.md', namespace: '/hr', metadata: { year: 2025 },
    acl: { allow: ['group:hr'] }, chunks: ['Payroll runs on the 25th; salaries are confidential.'] },
  { doc_id: 'handbook', source: 's3://corp/handbook.md', namespace: '/pub', metadata: { year: 2024 },
    acl: { allow: ['*'] }, chunks: ['The employee handbook: holidays, payroll dates and office hours.', 'Second chunk of the handbook.'] },
  { doc_id: 'roadmap', source: 's3://corp/eng/roadmap.md', namespace: '/eng', metadata: { year: 2025 },
    acl: { allow: ['group:eng'], deny: ['user:intern-bot'] }, chunks: ['The engineering roadmap: payroll service rewrite in Q3.'] },
];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'warden-mcp-'));
  dir = join(tmp, 'c');
  writeFileSync(join(tmp, 'warden.yaml'), 'dimension: 64\nmetric: cosine\nembedder:\n  type: hash\naudit:\n  path: audit.jsonl\n');
  const c = await Collection.create(dir, { config: join(tmp, 'warden.yaml') });
  await c.upsert(DOCS, null);
  await c.setGroups('user:hr-bot', ['group:hr']); // an agent with HR access of its own
  await c.close();
  key = await generateKeyPair('ES256');
  otherKey = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(key.publicKey)), kid: 'test-1', alg: 'ES256', use: 'sig' };
  writeFileSync(join(tmp, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  child = spawn(process.execPath, [BIN, '--collection', dir, '--jwks', join(tmp, 'jwks.json'),
    '--issuer', ISS, '--audience', AUD, '--http', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  url = await new Promise((res, rej) => {
    const to = setTimeout(() => rej(new Error(`warden-mcp did not start: ${stderr}`)), 20000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stderr);
      if (m) { clearTimeout(to); res(m[1]); }
    });
    child.on('exit', (code) => rej(new Error(`warden-mcp exited ${code}: ${stderr}`)));
  });
});

after(() => {
  child?.kill('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
});

async function token(claims, { signer = key.privateKey, kid = 'test-1', aud = AUD, iss = ISS, exp = '5m', nbf } = {}) {
  let j = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(iss).setAudience(aud).setIssuedAt();
  if (exp !== null) j = j.setExpirationTime(exp);
  if (nbf) j = j.setNotBefore(nbf);
  return j.sign(signer);
}

async function client(tok) {
  const c = new Client({ name: 'warden-mcp-test', version: '1.0.0' });
  const headers = tok ? { Authorization: `Bearer ${tok}` } : {};
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return c;
}

async function as(claims, fn) {
  const c = await client(await token(claims));
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

const searchIds = async (c, query, extra = {}) => {
  const r = await c.callTool({ name: 'search', arguments: { query, k: 10, ...extra } });
  assert.ok(!r.isError, JSON.stringify(r.content));
  return [...new Set(r.structuredContent.results.map((h) => h.doc_id))].sort();
};

test('the tools, and schemas that cannot carry identity', async () => {
  await as({ sub: 'alice' }, async (c) => {
    const { tools } = await c.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['fetch', 'recall', 'remember', 'search']);
    for (const t of tools) {
      const props = Object.keys(t.inputSchema.properties ?? {});
      for (const p of props) assert.doesNotMatch(p, /principal|user|group|agent|identity|sub/i, `${t.name}.${p}`);
      assert.equal(t.inputSchema.additionalProperties, false, `${t.name} refuses undeclared arguments`);
    }
    // an argument the schema does not declare is refused, not ignored
    const r = await c.callTool({ name: 'search', arguments: { query: 'payroll', principal: 'group:hr' } })
      .catch((e) => ({ isError: true, content: [{ text: e.message }] }));
    assert.equal(r.isError, true);
    assert.match(r.content[0].text, /principal|Unrecognized|unrecognized/);
  });
});

test('tokens for different users get different answers from the same collection', async () => {
  const hr = await as({ sub: 'hanna', groups: ['hr'] }, (c) => searchIds(c, 'payroll'));
  const eng = await as({ sub: 'erik', groups: ['eng'] }, (c) => searchIds(c, 'payroll'));
  const none = await as({ sub: 'nobody' }, (c) => searchIds(c, 'payroll'));
  assert.deepEqual(hr, ['handbook', 'payroll']);
  assert.deepEqual(eng, ['handbook', 'roadmap']);
  assert.deepEqual(none, ['handbook']);
  // filter and namespaces apply within what the caller may read
  await as({ sub: 'hanna', groups: ['hr', 'eng'] }, async (c) => {
    assert.deepEqual(await searchIds(c, 'payroll', { filter: { year: { $gte: 2025 } } }), ['payroll', 'roadmap']);
    assert.deepEqual(await searchIds(c, 'payroll', { namespaces: ['/eng'] }), ['roadmap']);
    const r = await c.callTool({ name: 'search', arguments: { query: 'payroll', k: 1 } });
    assert.equal(r.content[0].type, 'text');
    assert.match(r.content[0].text, /source s3:\/\/corp\//);
    const hit = r.structuredContent.results[0];
    assert.deepEqual(Object.keys(hit), ['doc_id', 'chunk', 'score', 'text', 'source', 'namespace', 'metadata']);
  });
});

test('expired, wrongly signed, wrong-audience, wrong-issuer, not-yet-valid and missing tokens are refused with 401', async () => {
  const cases = {
    expired: await token({ sub: 'hanna', groups: ['hr'] }, { exp: Math.floor(Date.now() / 1000) - 120 }),
    'wrong key': await token({ sub: 'hanna', groups: ['hr'] }, { signer: otherKey.privateKey }),
    'wrong audience': await token({ sub: 'hanna', groups: ['hr'] }, { aud: 'some-other-api' }),
    'wrong issuer': await token({ sub: 'hanna', groups: ['hr'] }, { iss: 'https://evil.example' }),
    'no exp': await token({ sub: 'hanna' }, { exp: null }),
    'not yet valid': await token({ sub: 'hanna' }, { nbf: Math.floor(Date.now() / 1000) + 3600 }),
    garbage: 'not.a.jwt',
    missing: null,
  };
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  for (const [what, tok] of Object.entries(cases)) {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (tok) headers.authorization = `Bearer ${tok}`;
    const res = await fetch(url, { method: 'POST', headers, body });
    assert.equal(res.status, 401, what);
    const wa = res.headers.get('www-authenticate');
    assert.match(wa ?? '', /^Bearer error="invalid_token"/, what);
    assert.match(wa, /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/, what);
    await assert.rejects(client(tok), undefined, `${what}: the SDK client cannot connect`);
  }
  // the metadata the header points at names the authorization server
  const meta = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', url))).json();
  assert.deepEqual(meta.authorization_servers, [ISS]);
  assert.equal(meta.resource, url);
});

test("an agent whose own permissions exclude a document never returns it, even for a user who may read it", async () => {
  const user = { sub: 'hanna', groups: ['hr'] };
  assert.deepEqual(await as(user, (c) => searchIds(c, 'payroll')), ['handbook', 'payroll']);
  // the same user through an OAuth client (azp) that is not in group:hr
  await as({ ...user, azp: 'summarizer-bot' }, async (c) => {
    assert.deepEqual(await searchIds(c, 'payroll'), ['handbook']);
    const f = await c.callTool({ name: 'fetch', arguments: { doc_id: 'payroll' } });
    assert.equal(f.isError, true);
    assert.match(f.content[0].text, /not readable by you/);
  });
  // an agent with HR permissions of its own may return it for this user...
  assert.deepEqual(await as({ ...user, azp: 'hr-bot' }, (c) => searchIds(c, 'payroll')), ['handbook', 'payroll']);
  // ...but not for a user who may not read it
  assert.deepEqual(await as({ sub: 'nobody', azp: 'hr-bot' }, (c) => searchIds(c, 'payroll')), ['handbook']);
  // deny for the agent wins over the user's allow
  assert.deepEqual(await as({ sub: 'erik', groups: ['eng'], azp: 'intern-bot' }, (c) => searchIds(c, 'roadmap')), ['handbook']);
  // the audit log records both identities and the evidence for each
  const lines = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const rec = lines.find((r) => r.principal === 'user:hanna' && r.agent === 'user:hr-bot' &&
    r.results.some((h) => h.doc_id === 'payroll'));
  assert.ok(rec, 'an audit line for hanna via hr-bot');
  assert.deepEqual(rec.groups, ['group:hr']);
  assert.deepEqual(rec.agent_groups, ['group:hr']);
  const h = rec.results.find((x) => x.doc_id === 'payroll');
  assert.equal(h.acl, 'group:hr');
  assert.equal(h.agent_acl, 'group:hr via user:hr-bot');
});

test('fetch returns a whole document under the same two checks', async () => {
  await as({ sub: 'hanna', groups: ['hr'], azp: 'hr-bot' }, async (c) => {
    const f = await c.callTool({ name: 'fetch', arguments: { doc_id: 'handbook' } });
    assert.ok(!f.isError);
    assert.deepEqual(f.structuredContent.chunks.map((x) => x.chunk), [0, 1]);
    assert.match(f.content[0].text, /employee handbook[\s\S]*Second chunk/);
    const g = await c.callTool({ name: 'fetch', arguments: { doc_id: 'no-such-doc' } });
    assert.equal(g.isError, true);
    assert.match(g.content[0].text, /no such document, or not readable by you/);
    const h = await c.callTool({ name: 'fetch', arguments: { doc_id: 'payroll', user: 'x' } })
      .catch((e) => ({ isError: true, content: [{ text: e.message }] }));
    assert.equal(h.isError, true, 'undeclared argument refused');
  });
});

test('a revoke with `warden acl set` is visible to the next tool call', async () => {
  await as({ sub: 'erik', groups: ['eng'] }, async (c) => {
    assert.deepEqual(await searchIds(c, 'roadmap'), ['handbook', 'roadmap']);
    execFileSync(WARDEN, ['acl', 'set', dir, 'roadmap', '--allow', 'group:leads']);
    assert.deepEqual(await searchIds(c, 'roadmap'), ['handbook']);
    const f = await c.callTool({ name: 'fetch', arguments: { doc_id: 'roadmap' } });
    assert.equal(f.isError, true);
    execFileSync(WARDEN, ['acl', 'set', dir, 'roadmap', '--allow', 'group:eng']);
    assert.deepEqual(await searchIds(c, 'roadmap'), ['handbook', 'roadmap']);
  });
});

test("remember and recall stay in the caller's own namespace", async () => {
  await as({ sub: 'alice', azp: 'notes-bot' }, async (c) => {
    const r = await c.callTool({ name: 'remember', arguments: { text: 'Alice prefers tea over coffee', topic: 'preferences' } });
    assert.ok(!r.isError, JSON.stringify(r.content));
    assert.equal(r.structuredContent.namespace, '/users/alice/preferences');
    const back = await c.callTool({ name: 'recall', arguments: { query: 'tea or coffee' } });
    assert.deepEqual(back.structuredContent.results.map((h) => h.text), ['Alice prefers tea over coffee']);
  });
  await as({ sub: 'bob', groups: ['hr', 'eng'], azp: 'notes-bot' }, async (c) => {
    const back = await c.callTool({ name: 'recall', arguments: { query: 'tea or coffee' } });
    assert.deepEqual(back.structuredContent.results, [], "bob cannot recall alice's notes");
    assert.ok(!(await searchIds(c, 'Alice prefers tea')).some((id) => id.startsWith('memory:')));
  });
  // another agent acting for alice cannot read what notes-bot wrote for her
  await as({ sub: 'alice', azp: 'other-bot' }, async (c) => {
    const back = await c.callTool({ name: 'recall', arguments: { query: 'tea or coffee' } });
    assert.deepEqual(back.structuredContent.results, []);
  });
});

test('stdio: one local user fixed at start', async () => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, '--collection', dir, '--stdio', '--user', 'hanna', '--groups', 'hr'],
    stderr: 'ignore',
  });
  const c = new Client({ name: 'stdio-test', version: '1.0.0' });
  await c.connect(transport);
  try {
    assert.deepEqual(await searchIds(c, 'payroll'), ['handbook', 'payroll']);
  } finally {
    await c.close();
  }
});

test('concurrent tool calls from different users each get their own answer', async () => {
  const users = [
    [{ sub: 'hanna', groups: ['hr'] }, ['handbook', 'payroll']],
    [{ sub: 'erik', groups: ['eng'] }, ['handbook', 'roadmap']],
    [{ sub: 'hanna', groups: ['hr'], azp: 'summarizer-bot' }, ['handbook']],
    [{ sub: 'nobody' }, ['handbook']],
  ];
  const clients = await Promise.all(users.map(async ([claims]) => client(await token(claims))));
  try {
    const calls = [];
    for (let round = 0; round < 10; round++)
      clients.forEach((c, i) => calls.push(searchIds(c, 'payroll roadmap handbook').then((ids) => [i, ids])));
    for (const [i, ids] of await Promise.all(calls)) assert.deepEqual(ids, users[i][1], JSON.stringify(users[i][0]));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

test('--no-memory: no memory tools, and the collection is opened read-only', async () => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, '--collection', dir, '--stdio', '--user', 'erik', '--groups', 'eng', '--no-memory'],
    stderr: 'ignore',
  });
  const c = new Client({ name: 'stdio-test', version: '1.0.0' });
  await c.connect(transport);
  try {
    assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), ['fetch', 'search']);
    assert.deepEqual(await searchIds(c, 'roadmap'), ['handbook', 'roadmap']);
  } finally {
    await c.close();
  }
});

test('bad command lines and a collection without an embedder are refused at start', () => {
  const run = (args) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  let r = run(['--collection', dir, '--http', '127.0.0.1:0']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--jwks is required/);
  r = run(['--collection', dir, '--stdio']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--user/);
  r = run(['--collection', dir, '--stdio', '--user', 'a', '--principal', 'user:b']);
  assert.equal(r.status, 2, 'an unknown option is refused');
  const plain = join(tmp, 'plain');
  execFileSync(WARDEN, ['init', plain, '--dim', '4']);
  r = run(['--collection', plain, '--stdio', '--user', 'a']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /embedder/);
});

// F2: a note's stored ACL is allow [user:<sub>, user:<azp>], an OR, so the
// agent's identity alone passes it.  The memory area must still answer only
// its owner (and that owner through the agent that wrote the note).
test("memory notes answer only their owner: the agent's identity alone reads nothing", async () => {
  const NOTE = 'kiwi allergy, home address 12 Elm St';
  const Q = 'kiwi allergy home address';
  const noteId = await as({ sub: 'alice', azp: 'botA' }, async (c) => {
    const r = await c.callTool({ name: 'remember', arguments: { text: NOTE } });
    assert.ok(!r.isError, JSON.stringify(r.content));
    assert.equal(r.structuredContent.namespace, '/users/alice');
    return r.structuredContent.doc_id;
  });
  const leaks = (r) => (r.structuredContent?.results ?? []).filter((h) => h.namespace.startsWith('/users/alice') ||
    h.doc_id === noteId || /kiwi|Elm St/.test(h.text));
  const nothingOfAlice = async (claims) => {
    await as(claims, async (c) => {
      const who = JSON.stringify(claims);
      for (const extra of [{}, { namespaces: ['/users'] }, { namespaces: ['/users/alice'] }, { namespaces: ['/'] },
        { namespaces: ['/users/', '/pub'] }, { k: 1 }]) {
        const r = await c.callTool({ name: 'search', arguments: { query: Q, k: 10, ...extra } });
        assert.ok(!r.isError, JSON.stringify(r.content));
        assert.deepEqual(leaks(r), [], `${who} search ${JSON.stringify(extra)}`);
        assert.ok(r.content.every((x) => !/kiwi|Elm St/.test(x.text)), `${who} search text ${JSON.stringify(extra)}`);
      }
      // the post-filter over-fetches: k=1 still gets the one public chunk
      const one = await c.callTool({ name: 'search', arguments: { query: Q, k: 1 } });
      assert.equal(one.structuredContent.results.length, 1, `${who}: k is still met`);
      const rc = await c.callTool({ name: 'recall', arguments: { query: Q, k: 10 } });
      assert.ok(!rc.isError, JSON.stringify(rc.content));
      assert.deepEqual(leaks(rc), [], `${who} recall`);
      const f = await c.callTool({ name: 'fetch', arguments: { doc_id: noteId } });
      assert.equal(f.isError, true, `${who} fetch`);
      assert.match(f.content[0].text, /no such document, or not readable by you/);
      assert.doesNotMatch(f.content[0].text, /kiwi|Elm St/);
    });
  };
  await nothingOfAlice({ sub: 'botA' }); // a client-credentials token of the agent
  await nothingOfAlice({ sub: 'botA', azp: 'other-bot' });
  await nothingOfAlice({ sub: 'botA', groups: ['hr', 'eng'], azp: 'hr-bot' });
  await nothingOfAlice({ sub: 'bob' });
  await nothingOfAlice({ sub: 'bob', azp: 'botA' });
  await nothingOfAlice({ sub: 'alice', azp: 'other-bot' }); // another agent acting for alice
  // alice through botA, and alice herself, still recall (and fetch) the note
  for (const claims of [{ sub: 'alice', azp: 'botA' }, { sub: 'alice' }]) {
    await as(claims, async (c) => {
      const rc = await c.callTool({ name: 'recall', arguments: { query: Q } });
      assert.ok(rc.structuredContent.results.some((h) => h.doc_id === noteId && h.text === NOTE), JSON.stringify(claims));
      const s = await c.callTool({ name: 'search', arguments: { query: Q, namespaces: ['/users'] } });
      assert.ok(s.structuredContent.results.some((h) => h.doc_id === noteId), JSON.stringify(claims));
      const f = await c.callTool({ name: 'fetch', arguments: { doc_id: noteId } });
      assert.ok(!f.isError, JSON.stringify(f.content));
      assert.equal(f.structuredContent.chunks[0].text, NOTE);
    });
  }
});

test('a token whose sub equals its azp (ambiguous identity) is refused', async () => {
  const tok = await token({ sub: 'botA', azp: 'botA' });
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  const res = await fetch(url, { method: 'POST', body,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${tok}` } });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /invalid_token.*ambiguous identity/);
  assert.match(await res.text(), /ambiguous identity: the token's sub and azp claims are both 'botA'/);
  await assert.rejects(client(tok), undefined, 'the SDK client cannot connect');
  // stdio: the same refusal on the command line
  const r = spawnSync(process.execPath, [BIN, '--collection', dir, '--stdio', '--user', 'botA', '--agent', 'botA'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ambiguous identity/);
});

test("stdio: --user botA (the agent's name) reads no user's notes under /users", async () => {
  const noteId = await as({ sub: 'carol', azp: 'botA' }, async (c) =>
    (await c.callTool({ name: 'remember', arguments: { text: 'carol kiwi allergy 7 Oak Road' } })).structuredContent.doc_id);
  const transport = new StdioClientTransport({
    command: process.execPath, args: [BIN, '--collection', dir, '--stdio', '--user', 'botA'], stderr: 'ignore',
  });
  const c = new Client({ name: 'stdio-test', version: '1.0.0' });
  await c.connect(transport);
  try {
    for (const namespaces of [['/users'], ['/users/carol'], undefined]) {
      const r = await c.callTool({ name: 'search', arguments: { query: 'carol kiwi allergy', k: 10, ...(namespaces ? { namespaces } : {}) } });
      assert.ok(!r.isError, JSON.stringify(r.content));
      assert.deepEqual(r.structuredContent.results.filter((h) => h.namespace.startsWith('/users/')), [], JSON.stringify(namespaces));
    }
    assert.equal((await c.callTool({ name: 'fetch', arguments: { doc_id: noteId } })).isError, true);
  } finally {
    await c.close();
  }
});
