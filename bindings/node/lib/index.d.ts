// Type declarations of the warden Node.js package (lib/index.js).
export * from './errors.js';

export type Metric = 'cosine' | 'l2' | 'ip';
export type MetadataValue = string | number | bigint | boolean | string[];
export type Filter = Record<string, unknown> | string;

export interface Acl {
  allow?: string[];
  deny?: string[];
}

export interface DocumentInput {
  doc_id: string;
  /** a URI: s3://bucket/key, file:///path, https://... */
  source: string;
  namespace?: string;
  metadata?: Record<string, MetadataValue>;
  /** without it the collection's default_acl applies, or the upsert is refused */
  acl?: Acl;
  chunks: Array<string | { text: string; embedding?: ArrayLike<number> }>;
}

export interface Hit {
  doc_id: string;
  chunk: number;
  score: number;
  text: string;
  source: string;
  namespace: string;
  metadata: Record<string, MetadataValue>;
  semantic_rank: number;
  lexical_rank: number;
}

/** The hits of one query, best first. */
export interface Hits extends Array<Hit> {
  /** the revision of the snapshot the query read */
  revision: number;
  /** a candidate was dropped because the resolver failed (not because it said no) */
  degraded: boolean;
  /** the plan when explain was set */
  plan: Record<string, unknown> | null;
}
export const Hits: { new (): Hits; prototype: Hits };

export interface QueryOptions {
  /** user:NAME | group:NAME -- from your authentication, never from a prompt. Required. */
  principal: string;
  /** groups your identity provider asserted (group:NAME) */
  groups?: string[];
  k?: number;
  /** metadata filter, Mongo or Bedrock dialect, as an object or JSON text */
  filter?: Filter | null;
  /** namespace prefixes; none = all */
  namespaces?: string[];
  /** fail with StaleSnapshot if the snapshot is older */
  minRevision?: number;
  /** on-behalf-of: the agent acting for the principal; both must be allowed */
  agent?: string;
  agentGroups?: string[];
  strategy?: 'auto' | 'exact' | 'ann';
  explain?: boolean;
  targetRecall?: number;
  mode?: 'semantic' | 'lexical' | 'hybrid';
  text?: string;
}

export interface UpsertReport {
  revision: number;
  documents: number;
  replaced: number;
  chunks: number;
  badLines: number;
  errors: string[];
}

export type Embeddings = Float32Array | ArrayLike<number>[] | null;

export class Collection {
  private constructor();
  readonly path: string;
  readonly dimension: number;
  readonly metric: Metric;
  readonly closed: boolean;
  static create(path: string, opts?: { dim?: number; metric?: Metric; config?: string }): Promise<Collection>;
  static open(path: string, opts?: { readOnly?: boolean }): Promise<Collection>;
  /** Resolves to the revision committed. */
  upsert(documents: DocumentInput[], embeddings?: Embeddings, opts?: { keepGoing?: boolean }): Promise<number>;
  upsertReport(documents: DocumentInput[], embeddings?: Embeddings, opts?: { keepGoing?: boolean }): Promise<UpsertReport>;
  query(vector: Float32Array | number[], options: QueryOptions): Promise<Hits>;
  query(vectors: number[][], options: QueryOptions): Promise<Hits[]>;
  queryText(text: string, options: QueryOptions): Promise<Hits>;
  /** Every chunk of one document the principal (and agent) may read; [] when unknown or unreadable. */
  fetch(docId: string, options: Omit<QueryOptions, 'k' | 'strategy'>): Promise<Hits>;
  /** An omitted list is kept; [] sets it empty.  Resolves to the revision. */
  setAcl(docId: string, acl: Acl): Promise<number>;
  getAcl(docId: string): { doc_id: string; allow: string[]; deny: string[]; revision: number };
  delete(docIds: string | string[]): Promise<number>;
  setGroups(principal: string, groups: string[]): Promise<number>;
  getGroups(principal: string): { principal: string; groups: string[]; expanded: string[]; revision: number };
  revision(): number;
  stats(): Record<string, unknown>;
  /** Resolves once the calls in flight have finished and the handle is closed. */
  close(): Promise<void>;
}

export function sourceUri(source: string | undefined | null, docId: string): string;
export function libraryPath(): string;
