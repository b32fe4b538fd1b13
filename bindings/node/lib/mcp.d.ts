import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestListener, Server } from 'node:http';

/** The express application (a request listener with listen()). */
export type HttpApp = RequestListener & { listen(port: number, host: string, cb?: () => void): Server };
import type { Collection } from './index.js';

export interface ClaimNames { user?: string; groups?: string; agent?: string }
export const DEFAULT_CLAIMS: Readonly<Required<ClaimNames>>;

export interface McpIdentity {
  sub: string;
  principal: string;
  groups: string[];
  agent?: string;
}

export interface AuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  expiresAt: number;
  extra: { identity: McpIdentity };
}

export function identityFromClaims(payload: Record<string, unknown>, claims?: ClaimNames): McpIdentity;
export function createVerifier(opts: {
  /** a JWKS file path, an https URL, or a JWKS object */
  jwks: string | { keys: object[] };
  issuer: string;
  audience: string;
  claims?: ClaimNames;
  clockTolerance?: number;
}): { verifyAccessToken(token: string): Promise<AuthInfo> };

export const DEFAULT_MEMORY_ROOT: string;
export function memoryNamespace(sub: string, root?: string): string;
/** The memory post-filter of one caller (see README, warden-mcp threat model). */
export function memoryGuard(id: McpIdentity, root?: string): {
  own: string;
  visible(hit: { namespace: string; metadata?: Record<string, unknown> }): boolean;
  narrow(namespaces?: string[]): string[] | undefined;
};

export function createWardenMcpServer(opts: {
  collection: Collection;
  identityOf: (extra: any) => McpIdentity | undefined;
  embed?: (text: string) => Promise<number[]> | number[];
  memory?: boolean;
  name?: string;
  /** the memory area's root namespace (default "/users") */
  memoryRoot?: string;
}): McpServer;

export function createHttpApp(opts: {
  collection: Collection;
  verifier: { verifyAccessToken(token: string): Promise<AuthInfo> };
  issuer: string;
  host?: string;
  port: () => number;
  publicUrl?: string;
  embed?: (text: string) => Promise<number[]> | number[];
  memory?: boolean;
  allowedHosts?: string[];
  memoryRoot?: string;
}): HttpApp;
