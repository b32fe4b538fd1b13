import { BaseVectorStore } from 'llamaindex';
import type { BaseNode, BaseEmbedding, MetadataFilters, VectorStoreQuery, VectorStoreQueryResult } from 'llamaindex';
import type { Collection } from './index.js';
import type { WardenIdentity } from './langchain.js';

export class WardenLlamaIndexStore extends BaseVectorStore<Collection, WardenIdentity> {
  storesText: boolean;
  constructor(params: { collection: Collection; embedModel?: BaseEmbedding });
  readonly collection: Collection;
  client(): Collection;
  withPrincipal(identity: WardenIdentity): WardenLlamaIndexStore;
  add(nodes: BaseNode[]): Promise<string[]>;
  delete(refDocId: string): Promise<void>;
  /** customParams: { principal, groups, agent, agentGroups } (or a withPrincipal view) */
  query(query: VectorStoreQuery<WardenIdentity>, options?: object): Promise<VectorStoreQueryResult>;
}

export function toWardenFilter(filters?: MetadataFilters): Record<string, unknown> | null;
