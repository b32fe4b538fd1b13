import { VectorStore, VectorStoreRetriever, type VectorStoreRetrieverInput } from '@langchain/core/vectorstores';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import type { DocumentInterface } from '@langchain/core/documents';
import type { Callbacks } from '@langchain/core/callbacks/manager';
import type { Collection, Filter } from './index.js';

export interface WardenIdentity {
  /** user:NAME | group:NAME -- from your authentication, never from a prompt */
  principal: string;
  groups?: string[];
  /** on-behalf-of: an agent acting for the principal; both must be allowed */
  agent?: string;
  agentGroups?: string[];
  /** namespace prefixes every search of the view is scoped to */
  namespaces?: string[];
}

export class WardenVectorStore extends VectorStore {
  FilterType: Filter;
  constructor(embeddings: EmbeddingsInterface, fields: { collection: Collection });
  readonly collection: Collection;
  readonly identity: Readonly<WardenIdentity> | null;
  _vectorstoreType(): string;
  withPrincipal(identity: WardenIdentity): WardenVectorStore;
  addVectors(vectors: number[][], documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]>;
  addDocuments(documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]>;
  delete(params?: { ids?: string[] }): Promise<void>;
  similaritySearchVectorWithScore(query: number[], k: number, filter?: Filter): Promise<[DocumentInterface, number][]>;
  /** A retriever bound to fields.principal (refused without one, or a number k on an unbound store). */
  asRetriever(kOrFields?: number | (Partial<VectorStoreRetrieverInput<this>> & Partial<WardenIdentity>),
    filter?: this['FilterType'], callbacks?: Callbacks, tags?: string[], metadata?: Record<string, unknown>,
    verbose?: boolean): VectorStoreRetriever<this>;
  /** dbConfig: { collection } */
  static fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface,
    dbConfig: Record<string, any>): Promise<WardenVectorStore>;
  /** dbConfig: { collection } */
  static fromDocuments(docs: DocumentInterface[], embeddings: EmbeddingsInterface,
    dbConfig: Record<string, any>): Promise<WardenVectorStore>;
}

export function toWardenDocs(documents: DocumentInterface[], vectors: number[][], opts?: { ids?: string[] }):
  { docs: unknown[]; rows: number[][]; ids: string[] };
