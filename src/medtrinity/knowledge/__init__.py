"""Medical knowledge retrieval: a bundled core corpus, a BM25 index over it (or over any saved corpus), and the
query built from a record's metadata. `index.KnowledgeIndex`, `index.default_index`, `index.load_index` and
`query.build_query` are the entry points; corpus loaders and dense/hybrid retrievers sit beside them.
"""
