// warden -- Node.js bindings for libwarden, a permission-aware vector
// retrieval engine.  The LangChain.js and LlamaIndex.TS stores are in
// 'warden/langchain' and 'warden/llamaindex' (they import those
// frameworks); the MCP server is bin/warden-mcp.js ('warden/mcp').
export { Collection, Hits, sourceUri } from './collection.js';
export * from './errors.js';
export { libraryPath } from './ffi.js';
